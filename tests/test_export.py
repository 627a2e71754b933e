"""The export: its range, its CSV (RFC 4180, UTF-8, formula-safe, totals equal the ledger's), and the signed,
short-lived download links Teams gets (GET /api/export/{token}: forged or expired → 403, nothing leaks)."""

import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot import export as exports
from bot.errors import BadCommand
from bot.ledger import LedgerEntry
from bot.recovery import Recovery
from bot.store.tiny import TinyStore
from handlers import export as links_module
from handlers.export import LINKS, Links
from tests.conftest import FakeClock

UTC = timezone.utc
TODAY = date(2026, 11, 25)


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# --- the range ------------------------------------------------------------------------------------------

def test_the_default_range_is_the_last_30_days_in_the_workspace_s_time_zone():
    tz = ZoneInfo("America/New_York")
    wanted = exports.parse_range([], today=TODAY, tz=tz)
    assert (wanted.first, wanted.last) == (date(2026, 10, 27), TODAY)
    assert wanted.since == datetime(2026, 10, 27, 4, tzinfo=UTC)  # midnight in New York (summer time ended Nov 1)
    assert wanted.until == datetime(2026, 11, 26, 5, tzinfo=UTC)
    one = exports.parse_range(["2026-11-01"], today=TODAY, tz=tz)
    assert (one.first, one.last) == (date(2026, 11, 1), TODAY)
    two = exports.parse_range(["2026-11-01", "2026-11-01"], today=TODAY, tz=UTC)
    assert two.until - two.since == timedelta(days=1)


@pytest.mark.parametrize("words, said", [
    (["2026-11-20", "2026-11-01"], "is before the start"),
    (["2026-02-30"], "isn't a date on the calendar"),
    (["2026-13-01"], "isn't a date on the calendar"),
    (["yesterday"], "isn't a date. Write it as YYYY-MM-DD"),
    (["20261101"], "isn't a date. Write it as YYYY-MM-DD"),
    (["2026-11-01", "2026-11-02", "2026-11-03"], "at most two dates"),
    (["2020-01-01", "2026-01-01"], "at most three years"),
    (["0001-01-01", "0001-01-02"], "between the years 1970 and 9998"),
    (["9999-12-30", "9999-12-31"], "between the years 1970 and 9998"),
])
def test_a_bad_range_is_refused_with_a_sentence(words, said):
    with pytest.raises(BadCommand) as refused:
        exports.parse_range(words, today=TODAY, tz=UTC)
    assert said in refused.value.sentence


# --- the files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["=HYPERLINK(\"https://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_is_neutralised(typed):
    assert exports.cell(typed) == "'" + typed
    assert exports.cell("table 4 = window") == "table 4 = window" and exports.cell(None) == ""


async def recorded(store, clock) -> Recovery:
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=UTC)
    for n, (customer, amount) in enumerate([("=cmd|' /C calc'!A0", "12.50"), ("Zoë, \"table\" 4\nwindow", "7.25"),
                                            ("room 12", None)]):
        case = await recovery.open_case(workspace="T1", owner="U1", owner_name="Amy", what_happened=f"case {n}",
                                        customer=customer)
        if amount:
            await store.compensate_case(
                workspace="T1", case_id=case.id, employee="U1", since=clock.now() - timedelta(days=7),
                until=clock.now(),
                change=lambda c, spent, amount=amount: (c, LedgerEntry(
                    workspace="T1", case_id=c.id, employee="U1", role="staff", kind="voucher",
                    amount=Decimal(amount), currency="USD", at=clock.now())))
        clock.advance(hours=1)
    return recovery


async def test_the_csv_parses_and_its_total_equals_the_ledger_s():
    clock, store = FakeClock(), TinyStore(path=None)
    try:
        await recorded(store, clock)
        wanted = exports.parse_range([], today=TODAY, tz=UTC)
        made = await exports.export(store, workspace="T1", range=wanted)
        ledger = await store.ledger(workspace="T1", since=wanted.since, until=wanted.until)
        cases, entries = rows(made.cases), rows(made.ledger)
        assert cases[0] == list(exports.CASE_COLUMNS) and entries[0] == list(exports.LEDGER_COLUMNS)
        assert len(cases) == 4 and len(entries) == 3 and (made.case_count, made.entry_count) == (3, 2)
        amounts = [Decimal(r[exports.LEDGER_COLUMNS.index("amount")]) for r in entries[1:]]
        assert sum(amounts) == sum(e.amount for e in ledger) == Decimal("19.75")
        assert [r[exports.LEDGER_COLUMNS.index("amount")] for r in entries[1:]] == ["12.50", "7.25"]  # currency units
        customers = [r[exports.CASE_COLUMNS.index("customer")] for r in cases[1:]]
        assert customers[0] == "'=cmd|' /C calc'!A0"  # shown, never run
        assert customers[1] == "Zoë, \"table\" 4 window"  # the service flattens line breaks; commas, quotes survive
        assert made.cases.count(b"\r\n") == 4 and "Zoë".encode() in made.cases  # RFC 4180 line ends, UTF-8
        assert [name for name, _ in made.files] == ["amends-cases_2026-10-27_2026-11-25.csv",
                                                    "amends-ledger_2026-10-27_2026-11-25.csv"]
        none = await exports.export(store, workspace="T1", range=exports.parse_range(["2026-01-01", "2026-01-31"],
                                                                                    today=TODAY, tz=UTC))
        assert rows(none.cases) == [list(exports.CASE_COLUMNS)] and rows(none.ledger) == [list(exports.LEDGER_COLUMNS)]
    finally:
        await store.close()


# --- the signed links -----------------------------------------------------------------------------------

def test_a_token_is_good_for_15_minutes_and_only_as_signed():
    clock = FakeClock()
    links = Links(secret="", clock=clock)
    token = links.token(workspace="T1", first=date(2026, 11, 1), last=TODAY, file="ledger")
    assert links.read(token)["w"] == "T1"
    payload, _, signature = token.partition(".")
    forged = links_module._b64(links_module._unb64(payload).replace(b"T1", b"T2"))
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[:-2]}", payload, "", "..", "a.b", "%%%.%%%",
                Links(secret="", clock=clock).token(workspace="T1", first=TODAY, last=TODAY, file="ledger")):
        assert links.read(bad) is None, bad
    clock.advance(minutes=14, seconds=59)
    assert links.read(token) is not None
    clock.advance(seconds=2)
    assert links.read(token) is None
    same_secret = Links(secret="k", clock=clock), Links(secret="k", clock=clock)  # several processes, one secret
    assert same_secret[1].read(same_secret[0].token(workspace="T1", first=TODAY, last=TODAY, file="cases"))


async def test_the_download_route_serves_a_good_link_and_403s_the_rest(bot, http, clock):
    store = bot.recovery.store
    await recorded(store, clock)
    links = bot.app[LINKS]
    good = links.token(workspace="T1", first=date(2026, 11, 1), last=TODAY, file="ledger")
    async with http.get(f"{bot.url}/api/export/{good}") as answer:
        assert answer.status == 200 and answer.content_type == "text/csv" and answer.charset == "utf-8"
        assert answer.headers["Content-Disposition"] == 'attachment; filename="amends-ledger_2026-11-01_2026-11-25.csv"'
        assert answer.headers["Cache-Control"] == "no-store"
        body = await answer.read()
    assert sum(Decimal(r[5]) for r in rows(body)[1:]) == Decimal("19.75")

    payload, _, signature = good.partition(".")
    forged = links_module._b64(links_module._unb64(payload).replace(b'"x":"ledger"', b'"x":"cases"'))
    clock_later = links.token(workspace="T1", first=TODAY, last=TODAY, file="cases")
    clock.advance(minutes=16)
    for bad in (f"{forged}.{signature}", clock_later, "nonsense", good):
        async with http.get(f"{bot.url}/api/export/{bad}") as answer:
            text = await answer.text()
            assert answer.status == 403, bad
            assert "T1" not in text and "calc" not in text and "voucher" not in text
            assert "not valid or has expired" in text


async def test_a_link_reads_and_builds_only_its_own_file(bot, http, clock, monkeypatch):
    store = bot.recovery.store
    await recorded(store, clock)
    read = []
    for query in ("cases", "ledger"):
        real = getattr(store, query)

        async def counted(*args, _real=real, _query=query, **kwargs):
            read.append(_query)
            return await _real(*args, **kwargs)
        monkeypatch.setattr(store, query, counted)
    links = bot.app[LINKS]
    for file in ("cases", "ledger"):
        read.clear()
        token = links.token(workspace="T1", first=date(2026, 11, 1), last=TODAY, file=file)
        async with http.get(f"{bot.url}/api/export/{token}") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Disposition"] == \
                f'attachment; filename="amends-{file}_2026-11-01_2026-11-25.csv"'
            header = rows(await answer.read())[0]
        assert read == [file]
        assert tuple(header) == (exports.CASE_COLUMNS if file == "cases" else exports.LEDGER_COLUMNS)
