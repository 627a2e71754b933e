"""Money as Decimal in a workspace currency: parsing what people type, and showing it back.

Never float: 0.1 + 0.2 is not 0.3, and a ledger must add up to the cent.
"""

import re
from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, get_currency_symbol, is_currency

from bot.errors import InvalidAmount

# Anything above this is a typo, not a recovery (Ritz-Carlton's famous $2,000 is far below it).
LARGEST_AMOUNT = Decimal("1000000")

_NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^\.\d+$")


def check_currency(code: str) -> str:
    """Return the ISO 4217 code upper-cased, or raise ValueError naming it."""
    code = code.strip().upper()
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP, JPY)")
    return code


def decimals(currency: str) -> int:
    """How many minor-unit digits the currency has: USD 2, JPY 0, KWD 3."""
    return get_currency_precision(currency)


def parse_amount(text: str, *, currency: str) -> Decimal:
    """Read an amount a person typed ("25", "$25.50", "1,000") or raise InvalidAmount with why."""
    raw = (text or "").strip()
    symbol = get_currency_symbol(currency, locale="en_US")
    cleaned = raw
    for prefix in (currency, currency.lower(), symbol):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix):].strip()
    for suffix in (currency, currency.lower()):
        if cleaned.endswith(suffix):
            cleaned = cleaned[: -len(suffix)].strip()
    if not raw:
        raise InvalidAmount("Type an amount, like 25.")
    if cleaned.startswith("-"):
        raise InvalidAmount(f"An amount can't be negative: {raw!r}.")
    if not _NUMBER.match(cleaned):
        raise InvalidAmount(f"{raw!r} isn't an amount. Type a number, like 25 or 12.50.")
    try:
        amount = Decimal(cleaned.replace(",", ""))
    except InvalidOperation:
        raise InvalidAmount(f"{raw!r} isn't an amount. Type a number, like 25 or 12.50.") from None
    if amount == 0:
        raise InvalidAmount("The amount must be more than zero. If nothing is given, choose “Nothing needed”.")
    if amount > LARGEST_AMOUNT:  # before quantize(): a 30-digit number would overflow its precision
        raise InvalidAmount(f"{raw!r} is far more than any recovery; check the amount.")
    places = decimals(currency)
    if -amount.as_tuple().exponent > places and amount != amount.quantize(Decimal(1).scaleb(-places)):
        if places == 0:
            raise InvalidAmount(f"{currency} amounts are whole numbers; {raw!r} has decimals.")
        raise InvalidAmount(f"{currency} amounts have at most {places} decimals; {raw!r} has more.")
    return amount.quantize(Decimal(1).scaleb(-places))


def format_money(amount: Decimal, currency: str) -> str:
    """Show an amount the way a person writes it: "$25", "$12.50", "¥1,000"."""
    if amount == amount.to_integral_value():
        return format_currency(amount, currency, format="¤#,##0", currency_digits=False, locale="en_US")
    return format_currency(amount, currency, locale="en_US")
