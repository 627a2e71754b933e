"""`admin export [YYYY-MM-DD] [YYYY-MM-DD]`: the cases and the ledger of a range, as two CSV files.

RFC 4180 (the csv module, CRLF line ends, quoted where needed), UTF-8, one header row, amounts in the
currency's units ("12.50", never a float). A cell that a spreadsheet would run as a formula (one that
begins with = + - @, a tab or a carriage return) gets a leading apostrophe, so a customer reference like
`=HYPERLINK(...)` is shown, not run.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from bot.errors import BadCommand
from bot.money import decimals

DEFAULT_DAYS = 30
LONGEST = timedelta(days=366 * 3)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CASE_COLUMNS = ("case", "opened_at", "closed_at", "owner", "owner_name", "customer", "what_happened",
                "given_kind", "given_amount", "currency", "time_to_recover_minutes", "follow_up_on",
                "root_cause", "change_note", "recognitions", "source")
LEDGER_COLUMNS = ("at", "case", "employee", "role", "kind", "amount", "currency", "approved_by")


@dataclass(frozen=True)
class Range:
    first: date  # inclusive, local days
    last: date  # inclusive
    since: datetime  # UTC: the start of `first` in the workspace's time zone
    until: datetime  # UTC: the end of `last`

    @property
    def name(self) -> str:
        return f"{self.first.isoformat()}_{self.last.isoformat()}"


def _day(word: str) -> date:
    if not DATE.match(word):
        raise BadCommand(f"{word!r} isn't a date. Write it as YYYY-MM-DD, e.g. 2026-11-01.")
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise BadCommand(f"{word} isn't a date on the calendar; check the month and the day.") from None


def parse_range(words: list[str], *, today: date, tz) -> Range:
    """No dates: the last 30 days up to today; one: from it to today; two: from the first to the second."""
    if len(words) > 2:
        raise BadCommand("Give at most two dates: `/recover admin export [YYYY-MM-DD] [YYYY-MM-DD]`.")
    first = _day(words[0]) if words else today - timedelta(days=DEFAULT_DAYS - 1)
    last = _day(words[1]) if len(words) == 2 else today
    if last < first:
        raise BadCommand(f"The end ({last.isoformat()}) is before the start ({first.isoformat()}); "
                         "put the earlier date first.")
    if first.year < 1970 or last.year > 9998:  # also keeps local midnights inside what datetime can hold
        raise BadCommand("Give dates between the years 1970 and 9998, e.g. `/recover admin export 2026-11-01 "
                         "2026-11-30`.")
    if last - first > LONGEST:
        raise BadCommand("Export at most three years at a time.")

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)
    return Range(first=first, last=last, since=midnight(first), until=midnight(last + timedelta(days=1)))


def cell(value) -> str:
    """A value as a CSV cell a spreadsheet shows and never runs."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _amount(amount, currency: str) -> str:
    return f"{amount:.{decimals(currency)}f}"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds") if moment else ""


def _csv(header: tuple[str, ...], rows) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n")  # RFC 4180: CRLF, quotes doubled
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def cases_csv(cases) -> bytes:
    def row(case):
        comp = case.compensation
        took = case.time_to_recover
        return (case.id, _when(case.opened_at), _when(case.closed_at), case.owner, case.owner_name, case.customer,
                case.what_happened, comp.kind if comp else "", _amount(comp.amount, comp.currency) if comp else "",
                comp.currency if comp else "", f"{took.total_seconds() / 60:.1f}" if took else "",
                case.follow_up_on.isoformat() if case.follow_up_on else "", case.root_cause, case.change_note,
                len(case.recognised_by), case.source)
    return _csv(CASE_COLUMNS, (row(c) for c in cases))


def ledger_csv(entries) -> bytes:
    return _csv(LEDGER_COLUMNS, ((_when(e.at), e.case_id, e.employee, e.role, e.kind, _amount(e.amount, e.currency),
                                  e.currency, e.approved_by) for e in entries))


@dataclass(frozen=True)
class Export:
    range: Range
    cases: bytes
    ledger: bytes
    case_count: int
    entry_count: int

    @property
    def files(self) -> list[tuple[str, bytes]]:
        return [(f"amends-cases_{self.range.name}.csv", self.cases),
                (f"amends-ledger_{self.range.name}.csv", self.ledger)]


async def export(store, *, workspace: str, range: Range) -> Export:
    """Cases opened in the range and ledger entries given in it."""
    cases = await store.cases(workspace=workspace, since=range.since, until=range.until)
    entries = await store.ledger(workspace=workspace, since=range.since, until=range.until)
    return Export(range=range, cases=cases_csv(cases), ledger=ledger_csv(entries), case_count=len(cases),
                  entry_count=len(entries))
