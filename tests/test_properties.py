"""Properties that must hold for any input (hypothesis): budgets under any interleaving, period
boundaries in any time zone, money in 0/2/3-decimal currencies, and the command parser."""

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st

from bot.commands import parse
from bot.errors import BadCommand, InvalidAmount, Refusal
from bot.money import LARGEST_AMOUNT, decimals, parse_amount
from bot.periods import Period
from bot.recovery import Recovery
from bot.store.tiny import TinyStore
from tests.test_store import W1, FakeClock, _give, _to_compensate

ZONES = [ZoneInfo(name) for name in ("Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                                     "Pacific/Chatham", "America/Sao_Paulo", "UTC")]
QUICKLY = settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# --- budgets ---------------------------------------------------------------------------------
@QUICKLY
@given(amounts=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=8),
       batches=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=8))
def test_no_interleaving_of_gifts_exceeds_the_budget(amounts, batches):
    """One person's gifts (in cents, up to $30: some over the $25 per-case limit), sent in concurrent
    batches of any sizes: what the ledger holds never exceeds $100 a week, and is exactly what was accepted."""
    async def run():
        store = TinyStore(path=None)
        recovery = Recovery(store=store, clock=FakeClock(), currency="USD", tz=ZoneInfo("Europe/London"))
        cases = [await _to_compensate(recovery) for _ in amounts]
        accepted, pending = Decimal(0), list(zip(cases, amounts))
        sizes = iter(batches * len(amounts))  # more batch sizes than gifts
        while pending:
            size = next(sizes)
            batch, pending = pending[:size], pending[size:]
            results = await asyncio.gather(*(_give(recovery, case, f"{cents / 100:.2f}") for case, cents in batch),
                                           return_exceptions=True)
            for (case, cents), result in zip(batch, results):
                if isinstance(result, Refusal):
                    continue
                assert not isinstance(result, BaseException), result
                accepted += Decimal(cents) / 100
        ledger = await store.ledger(workspace=W1)
        await store.close()
        total = sum((entry.amount for entry in ledger), Decimal(0))
        assert total == accepted and total <= Decimal(100)
        assert all(entry.amount <= Decimal(25) for entry in ledger)
        assert len({entry.case_id for entry in ledger}) == len(ledger)  # one gift per case
    asyncio.run(run())


# --- periods ---------------------------------------------------------------------------------
INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31),
                        timezones=st.just(timezone.utc))


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(at=INSTANTS, tz=st.sampled_from(ZONES), period=st.sampled_from(list(Period)))
def test_a_period_holds_its_instant_starts_at_local_midnight_and_meets_the_next(at, tz, period):
    start, end = period.window(at=at, tz=tz)
    assert start <= at < end
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    for edge in (local_start, local_end):
        assert (edge.hour, edge.minute, edge.second, edge.microsecond) == (0, 0, 0, 0)
        if period is Period.WEEK:
            assert edge.weekday() == 0  # Monday
        if period is Period.MONTH:
            assert edge.day == 1
    assert period.window(at=end, tz=tz)[0] == end  # the next period starts where this one ends: no gap, no overlap
    assert period.window(at=start - timedelta(microseconds=1), tz=tz)[1] == start
    hours = (end - start) / timedelta(hours=1)
    expected = {Period.DAY: (23, 25), Period.WEEK: (167, 169), Period.MONTH: (28 * 24 - 1, 31 * 24 + 1)}[period]
    assert expected[0] <= hours <= expected[1]  # a DST change moves it by at most an hour


# --- money -----------------------------------------------------------------------------------
CURRENCIES = st.sampled_from(["JPY", "USD", "EUR", "KWD", "BHD"])  # 0, 2, 2, 3, 3 decimals


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(currency=CURRENCIES, minor=st.integers(min_value=1, max_value=10**9), grouped=st.booleans())
def test_an_amount_written_with_the_currencys_decimals_reads_back_exactly(currency, minor, grouped):
    places = decimals(currency)
    amount = Decimal(minor).scaleb(-places)
    text = f"{amount:,.{places}f}" if grouped else f"{amount:.{places}f}"
    if amount > LARGEST_AMOUNT:
        try:
            parse_amount(text, currency=currency)
        except InvalidAmount:
            return
        raise AssertionError(f"{text} {currency} was accepted though over the largest amount")
    parsed = parse_amount(text, currency=currency)
    assert parsed == amount and -parsed.as_tuple().exponent == places


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(currency=CURRENCIES, whole=st.integers(min_value=0, max_value=9999), extra=st.integers(min_value=1, max_value=9))
def test_more_decimals_than_the_currency_has_are_refused(currency, whole, extra):
    places = decimals(currency)
    text = f"{whole}." + "0" * places + str(extra)  # one digit past the currency's last
    try:
        parse_amount(text, currency=currency)
    except InvalidAmount:
        return
    raise AssertionError(f"{text} {currency} was accepted")


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(text=st.text(max_size=40), currency=CURRENCIES)
def test_any_text_is_an_amount_within_bounds_or_a_sentence(text, currency):
    try:
        amount = parse_amount(text, currency=currency)
    except InvalidAmount as refusal:
        assert refusal.sentence
        return
    assert Decimal(0) < amount <= LARGEST_AMOUNT and -amount.as_tuple().exponent == decimals(currency)


# --- the command parser ----------------------------------------------------------------------
WORDS = st.sampled_from(["admin", "limit", "limits", "role", "channel", "list", "help", "here", "grant", "server",
                         "25", "100/week", "10/fortnight", "none", "<@U1>", "<#C1|x>", "-5", "1e9", "", " "])


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(text=st.one_of(st.text(max_size=80), st.lists(WORDS, max_size=6).map(" ".join)),
       prefix=st.sampled_from(["/recover", "recover"]))
def test_the_command_parser_answers_any_text_with_a_command_or_bad_command(text, prefix):
    try:
        command = parse(text, prefix=prefix)
    except BadCommand as refusal:
        assert refusal.sentence
        return
    assert command is not None
