"""The kinds of compensation a person picks from: a per-workspace catalogue admins edit.

An item is a name, an optional default value (given when the person leaves the amount blank), an
optional emoji, or a percentage off the bill ("20% off the bill"): then the person types the bill
and the value recorded is that share of it, rounded to the currency's minor units. Until an admin
changes anything a workspace has DEFAULT_ITEMS. Kept in the store under "config:catalogue" (one
JSON value: two admins editing at the same instant can lose one edit; the last write wins).
"""

import re
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from bot.errors import BadCommand, InvalidAmount, Refusal
from bot.money import decimals, format_money, parse_amount

CATALOGUE = "config:catalogue"
NAME_MAX = 40  # fits a Slack option (75) with an emoji and a value
_SHORTCODE = re.compile(r"^:[a-z0-9_+'-]{1,30}:$")  # Slack's :cake:; or a few code points that are no letters
ITEMS_MAX = 50  # Slack's select takes 100 options; a menu people scan mid-recovery should be short
_PERCENT = re.compile(r"^(\d{1,3}(?:\.\d{1,2})?)\s*%$")

DEFAULT_CATALOGUE: tuple[str, ...] = ("comp item", "discount", "voucher", "refund", "other")


class CatalogueRefusal(BadCommand):
    """A catalogue edit that can't be saved (an empty or duplicate name, a bad value)."""


@dataclass(frozen=True)
class CatalogueItem:
    name: str
    default_amount: Decimal | None = None
    emoji: str = ""
    percent: Decimal | None = None

    def label(self, currency: str) -> str:
        """"🍰 Free dessert · $8", "Birthday · 10% off", "voucher"."""
        text = f"{self.emoji} {self.name}" if self.emoji else self.name
        if self.percent is not None:
            share = f"{_percent(self.percent)}%"
            named = re.search(rf"(?<![\d.]){re.escape(share)}", self.name)  # "20% off", but not 2% in "Happy 20%"
            return text if named else f"{text} · {share} off"
        if self.default_amount is not None:
            return f"{text} · {format_money(self.default_amount, currency)}"
        return text

    def value(self, typed: str, *, currency: str) -> Decimal:
        """The value to record from what the person typed: the amount itself, the item's default when
        left blank, or for a percent item that share of the bill typed (rounded to minor units)."""
        typed = (typed or "").strip()
        if self.percent is not None:
            if not typed:
                raise InvalidAmount(f"Type the bill: {_percent(self.percent)}% of it is recorded as “{self.name}”.")
            bill = parse_amount(typed, currency=currency)
            value = (bill * self.percent / 100).quantize(Decimal(1).scaleb(-decimals(currency)), ROUND_HALF_UP)
            if value == 0:
                raise InvalidAmount(f"{_percent(self.percent)}% of {format_money(bill, currency)} rounds to nothing; "
                                    "check the bill.")
            return value
        if not typed and self.default_amount is not None:
            return self.default_amount
        return parse_amount(typed, currency=currency)


DEFAULT_ITEMS: tuple[CatalogueItem, ...] = tuple(CatalogueItem(name) for name in DEFAULT_CATALOGUE)


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")


def as_items(kinds) -> list[CatalogueItem]:
    """Items from items or plain names (older callers pass names)."""
    return [kind if isinstance(kind, CatalogueItem) else CatalogueItem(str(kind)) for kind in kinds]


def clean_name(name: str) -> str:
    return " ".join((name or "").split())


def find(items, name: str) -> CatalogueItem | None:
    """The item with that name (trimmed, case-insensitive), or None."""
    wanted = clean_name(name).lower()
    return next((item for item in as_items(items) if item.name.lower() == wanted), None)


def parse_value(text: str | None, *, currency: str) -> tuple[Decimal | None, Decimal | None]:
    """An admin's "8", "$8.50", "20%" or nothing: (default amount, percent)."""
    text = (text or "").strip()
    if not text:
        return None, None
    found = _PERCENT.match(text)
    if found:
        percent = Decimal(found.group(1))
        if not 0 < percent <= 100:
            raise CatalogueRefusal(f"A discount is more than 0% and at most 100%; {text!r} isn't.")
        return None, percent
    if text.endswith("%"):
        raise CatalogueRefusal(f"{text!r} isn't a percentage. Write it like 20%.")
    try:
        return parse_amount(text, currency=currency), None
    except InvalidAmount as why:
        raise CatalogueRefusal(why.sentence) from None


def item(name: str, value: str | None = None, emoji: str = "", *, currency: str) -> CatalogueItem:
    """An item from what an admin typed (a command or a form), checked: raises CatalogueRefusal."""
    default_amount, percent = parse_value(value, currency=currency)
    return _checked(CatalogueItem(name=name, default_amount=default_amount, emoji=emoji, percent=percent),
                    currency=currency)


def _checked(new: CatalogueItem, *, currency: str) -> CatalogueItem:
    name = clean_name(new.name)
    if not name:
        raise CatalogueRefusal("Give the item a name, e.g. Free dessert.")
    if len(name) > NAME_MAX:
        raise CatalogueRefusal(f"Keep the name under {NAME_MAX} characters.")
    emoji = (new.emoji or "").strip()
    if emoji and not (_SHORTCODE.match(emoji) or (len(emoji) <= 8 and not any(c.isalnum() or c.isspace()
                                                                               for c in emoji))):
        raise CatalogueRefusal(f"{emoji!r} isn't an emoji. Use one emoji, like 🍰 or :cake:.")
    default_amount = new.default_amount
    if default_amount is not None and not isinstance(default_amount, Decimal):  # typed text from a form
        default_amount, percent = parse_value(str(default_amount), currency=currency)
        if percent is not None:
            return _checked(replace(new, name=name, emoji=emoji, default_amount=None, percent=percent),
                            currency=currency)
    if default_amount is not None:
        if default_amount < 0:
            raise CatalogueRefusal("A default value can't be negative.")
        # One rule for every way an amount arrives: what a person could type as an amount.
        default_amount, _ = parse_value(format(default_amount, "f"), currency=currency)
    percent = new.percent
    if percent is not None:
        try:
            percent = Decimal(str(percent))
        except InvalidOperation:
            raise CatalogueRefusal(f"{new.percent!r} isn't a percentage. Write it like 20%.") from None
        if default_amount is not None:
            raise CatalogueRefusal("An item is either a value or a percentage of the bill, not both.")
        _, percent = parse_value(f"{_percent(percent)}%", currency=currency)
    return CatalogueItem(name=name, default_amount=default_amount, emoji=emoji, percent=percent)


def _encode(items: list[CatalogueItem]) -> dict:
    return {"items": [{"name": i.name, "amount": None if i.default_amount is None else str(i.default_amount),
                       "emoji": i.emoji, "percent": None if i.percent is None else str(i.percent)} for i in items]}


def _decode(stored: dict) -> list[CatalogueItem]:
    return [CatalogueItem(name=doc["name"], emoji=doc.get("emoji") or "",
                          default_amount=None if doc.get("amount") is None else Decimal(doc["amount"]),
                          percent=None if doc.get("percent") is None else Decimal(doc["percent"]))
            for doc in stored.get("items", ())]


async def catalogue(store, workspace: str, *, default=DEFAULT_ITEMS) -> list[CatalogueItem]:
    """The workspace's items, in the order admins added them (the default until one edits it)."""
    stored = await store.reference(workspace=workspace, key=CATALOGUE)
    return _decode(stored) if stored is not None else as_items(default)


async def put_item(store, workspace: str, item: CatalogueItem, *, currency: str,
                   default=DEFAULT_ITEMS, edit: bool = False) -> CatalogueItem:
    """Add an item (checked: raises CatalogueRefusal with the sentence an admin reads). Returns it as saved.
    With `edit` an item of the same name is changed where it stands (the App Home's form edits that way)."""
    new = _checked(item, currency=currency)
    items = await catalogue(store, workspace, default=default)
    old = find(items, new.name)
    if old is not None and edit:
        await store.put_reference(workspace=workspace, key=CATALOGUE,
                                  value=_encode([new if i is old else i for i in items]))
        return new
    if old is not None:
        raise CatalogueRefusal(f"The catalogue already has “{new.name}”. Remove it first to change it.")
    if len(items) >= ITEMS_MAX:
        raise CatalogueRefusal(f"The catalogue holds at most {ITEMS_MAX} items; remove one first.")
    await store.put_reference(workspace=workspace, key=CATALOGUE, value=_encode([*items, new]))
    return new


async def remove_item(store, workspace: str, name: str, *, default=DEFAULT_ITEMS) -> CatalogueItem:
    """Remove an item by name (case-insensitive). Returns what was removed."""
    items = await catalogue(store, workspace, default=default)
    found = find(items, name)
    if found is None:
        names = ", ".join(i.name for i in items)
        raise CatalogueRefusal(f"There is no “{clean_name(name)}” in the catalogue. It has: {names}.")
    if len(items) == 1:
        raise CatalogueRefusal("The catalogue needs at least one item; add another before removing this one.")
    await store.put_reference(workspace=workspace, key=CATALOGUE,
                              value=_encode([i for i in items if i is not found]))
    return found


def kind_or_refuse(items, kind: str) -> CatalogueItem:
    """The item a person picked, or a Refusal listing what they can pick."""
    found = find(items, kind) if clean_name(kind) else None
    if found is None:
        raise Refusal(f"Pick one of: {', '.join(i.name for i in as_items(items))}.")
    return found


async def add_typed(recovery, *, workspace: str, name: str, value: str = "", emoji: str = "",
                    edit: bool = False) -> str:
    """`admin catalogue add …` on any platform: save the item and say how people will see it."""
    currency = recovery.currency
    saved = await put_item(recovery.store, workspace, item(name, value, emoji, currency=currency), currency=currency,
                           default=recovery.catalogue, edit=edit)
    return f"Saved. People can now give “{saved.label(currency)}”."


async def remove_typed(recovery, *, workspace: str, name: str) -> str:
    """`admin catalogue remove …`: cases that gave the item keep it; it is only no longer offered."""
    removed = await remove_item(recovery.store, workspace, name, default=recovery.catalogue)
    return f"Removed “{removed.name}” from the catalogue. Cases that gave it keep it."
