"""The weekly digest's domain: what a week adds up to, its day and hour, and its schedule through the
outbox (one owed slot per workspace, chained exactly once, a missed one sent once on start)."""

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import charts
from bot import digest as digests
from bot.cases import Case, Compensation
from bot.errors import BadCommand
from bot.ledger import LedgerEntry
from bot.outbox import Outbox
from bot.periods import Period
from bot.recovery import Recovery
from bot.roles import Budget, Role, default_role
from bot.store.tiny import TinyStore
from tests.conftest import FakeClock
from tests.test_store import store  # noqa: F401 — the parametrised fixture (every backend)

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
MONDAY_9 = datetime(2026, 11, 30, 9, tzinfo=UTC)  # the first default slot after the FakeClock's Wed 25 Nov, 12:00
ROOT = Path(__file__).resolve().parent.parent


def a_case(n: int, *, opened: datetime, took: timedelta | None, owner="U1", name="Amy", customer="", cause="",
           recognised=()) -> Case:
    return Case(workspace="T1", id=f"R-{n}", owner=owner, owner_name=name, what_happened="cold soup",
                customer=customer, opened_at=opened, closed_at=opened + took if took else None, root_cause=cause,
                recognised_by=tuple(recognised),
                compensation=Compensation(kind="voucher", amount=Decimal(5), currency="USD") if took else None)


def entry(amount: str, role: str, at: datetime) -> LedgerEntry:
    return LedgerEntry(workspace="T1", case_id="R-1", employee="U1", role=role, kind="voucher",
                       amount=Decimal(amount), currency="USD", at=at)


# --- what a week adds up to ---------------------------------------------------------------------------

def test_a_week_is_counted_honestly():
    until = MONDAY_9
    since = until - digests.WEEK
    cases = [
        a_case(1, opened=since - timedelta(days=3), took=timedelta(days=3, minutes=30), cause="kitchen"),  # closed in
        a_case(2, opened=since + timedelta(hours=1), took=timedelta(minutes=10), owner="U2", name="Ben",
               customer="Table 4", cause="Kitchen "),
        a_case(3, opened=since + timedelta(days=1), took=timedelta(minutes=20), owner="U2", name="Ben",
               customer="table 4", recognised=("UBOSS",)),
        a_case(4, opened=since + timedelta(days=2), took=None, customer="TABLE 4"),  # open: opened, not recovered
        a_case(5, opened=since + timedelta(days=6, hours=23, minutes=50), took=timedelta(hours=1), cause="wait"),
        a_case(6, opened=since - timedelta(days=9), took=timedelta(days=1)),  # last week's: neither
    ]
    roles = [default_role("T1"), Role("T1", "server", Decimal(25), Budget(Decimal(100), Period.WEEK)),
             Role("T1", "host", Decimal(10))]
    entries = [entry("12.50", "server", since + timedelta(hours=2)), entry("7.50", "server", since + timedelta(days=1)),
               entry("3", "gone", since + timedelta(days=2))]  # a role deleted since: still counted
    d = digests.summarise(workspace="T1", since=since, until=until, cases=cases, entries=entries, roles=roles,
                          currency="USD", tz=UTC)
    assert (d.opened, d.closed) == (4, 3)  # case 5 closes after `until`
    assert d.spent == Decimal("23.00")
    spend = {r.role: r for r in d.spend}
    assert spend["server"].spent == Decimal("20.00") and spend["server"].gifts == 2
    server = spend["server"]
    assert (server.limit, server.budget, server.period) == (Decimal(25), Decimal(100), "week")
    assert spend["gone"].limit is None and spend["host"].budget is None and spend["staff"].spent == 0
    assert d.median == timedelta(minutes=20)  # of 10 min, 20 min and 3 d 30 min
    assert d.root_causes == (("kitchen", 2),)  # "kitchen" and "Kitchen ": one cause
    assert d.unrecorded_causes == 1
    assert d.repeat_customers == (("Table 4", 3),)  # "Table 4", "table 4", "TABLE 4": one guest, three cases
    assert [(p.name, p.recoveries) for p in d.most] == [("Ben", 2), ("Amy", 1)]
    assert [(p.name, p.median) for p in d.fastest] == [("Ben", timedelta(minutes=15))]  # two recoveries or more
    assert [(p.name, p.recognitions) for p in d.recognised] == [("Ben", 1)]
    # Mon 9:00 to Mon 9:00 touches eight local days (the first and last partial): every recovery is in a bar.
    assert len(d.per_day) == 8 and d.per_day[0] == (since.date(), 2) and sum(n for _, n in d.per_day) == 3


def test_a_quiet_week_is_a_digest_too():
    d = digests.summarise(workspace="T1", since=MONDAY_9 - digests.WEEK, until=MONDAY_9, cases=[], entries=[],
                          roles=[default_role("T1")], currency="USD", tz=UTC)
    assert d.quiet and d.median is None and d.most == () and [n for _, n in d.per_day] == [0] * 8


def test_the_chart_is_a_real_png_of_a_sane_size():
    d = digests.summarise(workspace="T1", since=MONDAY_9 - digests.WEEK, until=MONDAY_9,
                          cases=[a_case(1, opened=MONDAY_9 - timedelta(days=2), took=timedelta(minutes=5))],
                          entries=[entry("12.50", "staff", MONDAY_9 - timedelta(days=2))],
                          roles=[default_role("T1")], currency="USD", tz=UTC)
    png = charts.draw(d)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(png) < 200_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (800, 320)
    small = charts.draw(d, dpi=60)
    assert small[:8] == b"\x89PNG\r\n\x1a\n" and len(small) < 18_000  # fits a Teams card as a data: URI


def test_starting_the_bot_does_not_load_matplotlib():
    """The real start-up (the app built, its on_startup run: senders registered, digests seeded), not just imports."""
    code = ("import asyncio, sys, app, bot.digest, bot.charts, handlers.slack.digest\n"
            "from aiohttp import web\n"
            "from bot.settings import Settings\n"
            "async def main():\n"
            "    runner = web.AppRunner(app.create_app(Settings(slack_bot_token='xoxb-1', slack_signing_secret='s',\n"
            "        slack_api_url='http://127.0.0.1:9/api/', db=':memory:', host='127.0.0.1', port=0)))\n"
            "    await runner.setup()\n"
            "    await runner.cleanup()\n"
            "asyncio.run(main())\n"
            "print('matplotlib' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- its day and hour ---------------------------------------------------------------------------------

@pytest.mark.parametrize("words, expected", [
    (["monday", "9"], digests.Schedule(0, 9)), (["Sun", "23"], digests.Schedule(6, 23)),
    (["friday", "0"], digests.Schedule(4, 0)), (["off"], digests.Schedule(on=False)),
])
def test_a_day_and_an_hour(words, expected):
    assert digests.parse_schedule(words) == expected


@pytest.mark.parametrize("words, said", [
    (["monday", "24"], "'24' isn't an hour"), (["monday", "-1"], "isn't an hour"), (["monday", "9am"], "isn't an hour"),
    (["monday", "²"], "isn't an hour"), (["monday", "9:00"], "isn't an hour"),
    (["monday", "99999999999"], "isn't an hour"),
    (["funday", "9"], "isn't a day of the week"), (["t", "9"], "isn't a day of the week"),
    (["monday"], "Say a day and an hour"), (["monday", "9", "10"], "Say a day and an hour"), ([], "Say a day"),
])
def test_a_bad_day_or_hour_is_refused_with_a_sentence(words, said):
    with pytest.raises(BadCommand) as refused:
        digests.parse_schedule(words)
    assert said in refused.value.sentence


def test_slots_are_local_times_across_a_clock_change():
    monday_9 = digests.Schedule(0, 9)
    # London leaves summer time on Sun 25 Oct 2026: 9:00 is 08:00 UTC before, 09:00 UTC after.
    before = digests.next_slot(monday_9, after=datetime(2026, 10, 13, tzinfo=UTC), tz=LONDON)
    after = digests.next_slot(monday_9, after=before, tz=LONDON)
    assert (before, after) == (datetime(2026, 10, 19, 8, tzinfo=UTC), datetime(2026, 10, 26, 9, tzinfo=UTC))
    assert after - before == timedelta(days=7, hours=1)  # a wall-clock week
    assert digests.week_before(after, LONDON) == before
    exactly = digests.next_slot(monday_9, after=MONDAY_9, tz=UTC)  # strictly after
    assert exactly == MONDAY_9 + digests.WEEK


# --- its schedule, through the outbox -----------------------------------------------------------------

class Platform:
    """A platform that records the digests it was given."""

    def __init__(self):
        self.sent: list[tuple[digests.Digest, str]] = []

    async def __call__(self, digest, *, key, in_doubt):
        self.sent.append((digest, key))
        return True


def service(store, clock) -> tuple[Recovery, Platform]:
    outbox = Outbox(store=store, clock=clock)
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=UTC, outbox=outbox)
    platform = Platform()
    outbox.register(digests.KIND, digests.DigestSender(recovery=recovery, platforms=[platform]))
    return recovery, platform


async def owed_digests(store):
    return [m for m in await store.owed_outbox() if m.kind == digests.KIND]


async def test_setting_a_channel_owes_the_first_digest_and_the_schedule_moves_it():
    clock, store = FakeClock(), TinyStore(path=None)
    recovery, _ = service(store, clock)
    try:
        assert await digests.seed(recovery, workspace="T1") is None  # no channel: nothing to send it to
        await recovery.set_recovery_channel(workspace="T1", channel="CREC")
        [first] = await owed_digests(store)
        assert (first.due, first.case_id, first.key) == (MONDAY_9, "digest", f"digest:T1:{MONDAY_9.isoformat()}")
        await recovery.set_recovery_channel(workspace="T1", channel="CREC2")  # set again: still one
        assert [m.key for m in await owed_digests(store)] == [first.key]
        assert await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(0, 9)) == MONDAY_9
        assert [m.key for m in await owed_digests(store)] == [first.key]  # the same slot: still owed, once

        nxt = await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(4, 17))
        [moved] = await owed_digests(store)
        assert moved.due == nxt == datetime(2026, 11, 27, 17, tzinfo=UTC)
        assert await digests.schedule_of(store, workspace="T1") == digests.Schedule(4, 17)

        assert await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(on=False)) is None
        assert await owed_digests(store) == []
        await digests.seed_all(recovery)  # off stays off across restarts
        assert await owed_digests(store) == []
    finally:
        await store.close()


async def test_a_sent_digest_owes_the_next_slot_once_and_a_long_outage_sends_one_not_a_backlog():
    clock, store = FakeClock(), TinyStore(path=None)
    recovery, platform = service(store, clock)
    try:
        case = await recovery.open_case(workspace="T1", owner="U1", owner_name="Amy", what_happened="cold soup")
        await store.change_case(workspace="T1", case_id=case.id,
                                change=lambda c: replace(c, closed_at=clock.now() + timedelta(minutes=9)))
        await recovery.set_recovery_channel(workspace="T1", channel="CREC")
        assert await recovery.outbox.send_due() is False  # not due yet
        clock.advance(days=5)  # Mon 30 Nov, 12:00: past the slot
        assert await recovery.outbox.send_due() is True
        [(digest, key)] = platform.sent
        assert key == f"digest:T1:{MONDAY_9.isoformat()}"
        assert (digest.since, digest.until, digest.closed) == (MONDAY_9 - digests.WEEK, MONDAY_9, 1)
        [nxt] = await owed_digests(store)
        assert nxt.due == MONDAY_9 + digests.WEEK
        assert await recovery.outbox.send_due() is False and len(platform.sent) == 1

        clock.advance(days=30)  # down for a month
        assert await recovery.outbox.send_due() is True
        assert await recovery.outbox.send_due() is False
        assert len(platform.sent) == 2  # one for the missed slot, not four
        [after] = await owed_digests(store)
        assert after.due > clock.now() and after.due.weekday() == 0
    finally:
        await store.close()


async def test_a_digest_due_across_a_restart_is_sent_once(tmp_path):
    path, clock = str(tmp_path / "amends.json"), FakeClock()
    store = TinyStore(path=path)
    recovery, platform = service(store, clock)
    await recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await recovery.open_case(workspace="T1", owner="U1", owner_name="Amy", what_happened="cold soup")
    await store.close()  # stopped before the slot
    clock.advance(days=6)

    for _ in range(2):  # two starts in a row (the first one sends, the second finds nothing owed but the next)
        store = TinyStore(path=path)
        recovery, again = service(store, clock)
        await digests.seed_all(recovery)
        await recovery.outbox.send_due()
        platform.sent += again.sent
        await store.close()
    assert [key for _, key in platform.sent] == [f"digest:T1:{MONDAY_9.isoformat()}"]
    store = TinyStore(path=path)
    try:
        assert [m.due for m in await owed_digests(store)] == [MONDAY_9 + digests.WEEK]
    finally:
        await store.close()


async def test_a_digest_no_platform_can_send_stays_owed():
    clock, store = FakeClock(), TinyStore(path=None)
    outbox = Outbox(store=store, clock=clock)
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=UTC, outbox=outbox)
    outbox.register(digests.KIND, digests.DigestSender(recovery=recovery, platforms=[]))  # e.g. Slack is off here
    try:
        await recovery.set_recovery_channel(workspace="T1", channel="CREC")
        clock.advance(days=5)
        assert await outbox.send_due() is True
        [still] = await owed_digests(store)
        assert still.key == f"digest:T1:{MONDAY_9.isoformat()}" and still.attempts == 1
    finally:
        await store.close()


async def test_the_schedule_chains_once_on_every_backend(store):  # noqa: F811 — memory, tinydb, postgres
    clock = FakeClock()
    recovery, platform = service(store, clock)
    await recovery.open_case(workspace="T1", owner="U1", owner_name="Amy", what_happened="cold soup")
    await recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await digests.seed_all(recovery)
    assert [m.due for m in await owed_digests(store)] == [MONDAY_9]
    clock.advance(days=5)
    assert await recovery.outbox.send_due() is True
    assert await recovery.outbox.send_due() is False
    assert [key for _, key in platform.sent] == [f"digest:T1:{MONDAY_9.isoformat()}"]
    assert [m.due for m in await owed_digests(store)] == [MONDAY_9 + digests.WEEK]
    await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(2, 8))
    assert [m.due for m in await owed_digests(store)] == [datetime(2026, 12, 2, 8, tzinfo=UTC)]


# --- reviewed: the numbers by hand, clock changes, moving the schedule, two processes ------------------

def test_the_numbers_add_up_by_hand():
    """Five recoveries, every figure worked out on paper first."""
    since = MONDAY_9 - digests.WEEK  # Mon 23 Nov 09:00 UTC
    cases = [
        a_case(1, opened=since + timedelta(hours=1), took=timedelta(minutes=12), owner="U1", name="Amy", cause="Wait"),
        a_case(2, opened=since + timedelta(days=1), took=timedelta(minutes=30), owner="U1", name="Amy", cause="wait",
               customer="Mr Lee", recognised=("UBOSS", "UMGR")),
        a_case(3, opened=since + timedelta(days=2), took=timedelta(hours=2), owner="U2", name="Ben", cause="kitchen",
               customer="mr lee "),
        a_case(4, opened=since + timedelta(days=3), took=timedelta(minutes=5), owner="U3", name="Cy", cause="noise"),
        a_case(5, opened=since + timedelta(days=6, hours=20), took=timedelta(hours=3), owner="U1", name="Amy",
               cause="WAIT"),  # closed Mon 30 Nov 08:00: the slot's own morning, still this week's
    ]
    roles = [Role("T1", "server", Decimal(25), Budget(Decimal(100), Period.WEEK)), Role("T1", "host", Decimal(10))]
    entries = [entry("10.00", "server", since + timedelta(hours=1)), entry("2.50", "server", since + timedelta(days=1)),
               entry("8.25", "host", since + timedelta(days=3))]
    d = digests.summarise(workspace="T1", since=since, until=MONDAY_9, cases=cases, entries=entries, roles=roles,
                          currency="USD", tz=UTC)
    assert (d.opened, d.closed, d.spent) == (5, 5, Decimal("20.75"))
    assert d.median == timedelta(minutes=30)  # 5 m, 12 m, 30 m, 2 h, 3 h
    assert [(r.role, r.spent, r.gifts) for r in d.spend] == [("host", Decimal("8.25"), 1),
                                                             ("server", Decimal("12.50"), 2)]
    assert d.root_causes == (("Wait", 3), ("kitchen", 1), ("noise", 1))
    assert d.repeat_customers == (("Mr Lee", 2),)
    assert [(p.name, p.recoveries, p.median) for p in d.most] == [("Amy", 3, timedelta(minutes=30)),
                                                                  ("Cy", 1, timedelta(minutes=5)),
                                                                  ("Ben", 1, timedelta(hours=2))]
    assert [p.name for p in d.fastest] == ["Amy"]
    assert [(p.name, p.recognitions) for p in d.recognised] == [("Amy", 2)]
    assert [n for _, n in d.per_day] == [1, 1, 1, 1, 0, 0, 0, 1] and d.per_day[-1][0] == MONDAY_9.date()


def test_a_week_across_the_spring_clock_change_has_every_day_in_its_chart():
    # London springs forward on Sun 29 Mar 2026: Mon 23 Mar 9:00 (09:00 UTC) to Mon 30 Mar 9:00 (08:00 UTC) is
    # 167 hours; a recovery closed on the Sunday must still have its bar.
    monday_9 = digests.Schedule(0, 9)
    until = digests.next_slot(monday_9, after=datetime(2026, 3, 24, tzinfo=UTC), tz=LONDON)
    since = digests.week_before(until, LONDON)
    assert (since, until) == (datetime(2026, 3, 23, 9, tzinfo=UTC), datetime(2026, 3, 30, 8, tzinfo=UTC))
    sunday = datetime(2026, 3, 29, 18, tzinfo=UTC)
    d = digests.summarise(workspace="T1", since=since, until=until, roles=[], entries=[], currency="USD", tz=LONDON,
                          cases=[a_case(1, opened=sunday, took=timedelta(minutes=5))])
    assert d.closed == 1 and dict(d.per_day)[sunday.date()] == 1
    assert [day.day for day, _ in d.per_day] == [23, 24, 25, 26, 27, 28, 29, 30]


def test_a_slot_in_the_skipped_or_repeated_hour_is_one_real_moment():
    new_york = ZoneInfo("America/New_York")
    sunday_2, sunday_1 = digests.Schedule(6, 2), digests.Schedule(6, 1)
    # 2:00 does not exist on Sun 8 Mar 2026; 1:00 happens twice on Sun 1 Nov 2026.
    spring = digests.next_slot(sunday_2, after=datetime(2026, 3, 2, tzinfo=UTC), tz=new_york)
    assert spring == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 3:00 EDT, the moment the clock jumps over 2:00
    autumn = digests.next_slot(sunday_1, after=datetime(2026, 10, 26, tzinfo=UTC), tz=new_york)
    assert autumn == datetime(2026, 11, 1, 5, tzinfo=UTC)  # the first 1:00 (EDT), not both
    assert digests.next_slot(sunday_1, after=autumn, tz=new_york) == datetime(2026, 11, 8, 6, tzinfo=UTC)


async def test_moving_the_schedule_after_a_digest_neither_repeats_nor_skips_days():
    clock, store = FakeClock(), TinyStore(path=None)
    recovery, platform = service(store, clock)
    try:
        await recovery.set_recovery_channel(workspace="T1", channel="CREC")
        clock.current = MONDAY_9 + timedelta(minutes=30)
        assert await recovery.outbox.send_due() is True  # Monday's digest: [Mon 23 9:00, Mon 30 9:00)
        # Half an hour later the admin moves it to Mondays at 10: not a second digest at 10 today.
        nxt = await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(0, 10))
        assert nxt == datetime(2026, 12, 7, 10, tzinfo=UTC)
        assert [m.due for m in await owed_digests(store)] == [nxt]
        # Then to Thursdays at 17: the next digest picks up where Monday's stopped.
        nxt = await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(3, 17))
        assert nxt == datetime(2026, 12, 3, 17, tzinfo=UTC)
        clock.current = nxt + timedelta(minutes=1)
        assert await recovery.outbox.send_due() is True
        [(first, _), (second, _)] = platform.sent
        assert (first.since, first.until) == (MONDAY_9 - digests.WEEK, MONDAY_9)
        assert (second.since, second.until) == (MONDAY_9, nxt)  # no day twice, none missing
        assert [m.due for m in await owed_digests(store)] == [nxt + digests.WEEK]
    finally:
        await store.close()


async def test_moving_the_schedule_when_a_digest_is_due_does_not_lose_it():
    clock, store = FakeClock(), TinyStore(path=None)
    outbox = Outbox(store=store, clock=clock)
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=UTC, outbox=outbox)
    platform = Platform()
    sender = digests.DigestSender(recovery=recovery, platforms=[])  # Slack is not up yet: Monday's waits
    outbox.register(digests.KIND, sender)
    try:
        await recovery.set_recovery_channel(workspace="T1", channel="CREC")
        clock.current = MONDAY_9 + timedelta(minutes=5)
        await outbox.send_due()
        [waiting] = await owed_digests(store)
        assert waiting.attempts == 1
        nxt = await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(0, 9))  # "the same"
        assert nxt == MONDAY_9 + digests.WEEK
        assert [m.key for m in await owed_digests(store)] == [waiting.key]  # still owed: Monday's goes out
        await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(2, 8))
        assert [m.key for m in await owed_digests(store)] == [waiting.key]
        sender.add(platform)
        clock.advance(hours=1)
        assert await outbox.send_due() is True
        [(digest, key)] = platform.sent
        assert key == waiting.key and (digest.since, digest.until) == (MONDAY_9 - digests.WEEK, MONDAY_9)
        # and the one after it is on the new schedule: Wednesday 8:00
        assert [m.due for m in await owed_digests(store)] == [datetime(2026, 12, 2, 8, tzinfo=UTC)]
    finally:
        await store.close()


async def test_turning_it_off_while_one_is_being_sent_stops_the_chain():
    clock, store = FakeClock(), TinyStore(path=None)
    recovery, _ = service(store, clock)

    class OffMidway(Platform):
        async def __call__(self, digest, *, key, in_doubt):
            await digests.set_schedule(recovery, workspace="T1", schedule=digests.Schedule(on=False))
            return await super().__call__(digest, key=key, in_doubt=in_doubt)

    midway = OffMidway()
    recovery.outbox.senders[digests.KIND].platforms[:] = [midway]
    try:
        await recovery.set_recovery_channel(workspace="T1", channel="CREC")
        clock.current = MONDAY_9 + timedelta(minutes=1)
        assert await recovery.outbox.send_due() is True
        assert len(midway.sent) == 1 and await owed_digests(store) == []
    finally:
        await store.close()


async def test_two_processes_on_one_store_send_one_digest(store):  # noqa: F811 — memory, tinydb, postgres
    """Two bots sharing a store (PostgreSQL in production) both start after the slot: one digest, one next slot."""
    clock = FakeClock()
    first, sent_by_first = service(store, clock)
    second, sent_by_second = service(store, clock)
    await first.set_recovery_channel(workspace="T1", channel="CREC")
    clock.current = MONDAY_9 + timedelta(minutes=2)
    await digests.seed_all(first)
    await digests.seed_all(second)
    import asyncio
    await asyncio.gather(first.outbox.send_due(), second.outbox.send_due())
    await asyncio.gather(first.outbox.send_due(), second.outbox.send_due())
    assert len(sent_by_first.sent) + len(sent_by_second.sent) == 1
    assert [m.due for m in await owed_digests(store)] == [MONDAY_9 + digests.WEEK]


async def test_two_bots_on_one_postgres_database_send_one_digest():
    """Two processes (two pools on one database) start after a missed slot and both try it at once: the lease
    lets one send while the other is still mid-send; one digest, one next slot."""
    import asyncio

    from bot.store.postgres import PostgresStore
    from tests.test_postgres import TEST_URL, fresh_schema

    class Held(Platform):
        def __init__(self):
            super().__init__()
            self.entered, self.release = asyncio.Event(), asyncio.Event()

        async def __call__(self, digest, *, key, in_doubt):
            self.entered.set()
            await self.release.wait()
            return await super().__call__(digest, key=key, in_doubt=in_doubt)

    async with fresh_schema() as schema:
        one = PostgresStore(url=TEST_URL, pool_size=2, schema=schema)
        two = PostgresStore(url=TEST_URL, pool_size=2, schema=schema)
        await one.open()
        await two.open()
        try:
            clock = FakeClock()
            first, _ = service(one, clock)
            second, _ = service(two, clock)
            held = Held()
            for recovery in (first, second):
                recovery.outbox.senders[digests.KIND].platforms[:] = [held]
            await first.set_recovery_channel(workspace="T1", channel="CREC")
            clock.current = MONDAY_9 + timedelta(minutes=2)
            await asyncio.gather(digests.seed_all(first), digests.seed_all(second))
            sending = asyncio.create_task(first.outbox.send_due())
            await asyncio.wait_for(held.entered.wait(), 10)
            assert await second.outbox.send_due() is False  # leased by the first: not due for the second
            held.release.set()
            await asyncio.wait_for(sending, 10)
            assert await second.outbox.send_due() is False
            assert [key for _, key in held.sent] == [f"digest:T1:{MONDAY_9.isoformat()}"]
            assert [m.due for m in await owed_digests(two)] == [MONDAY_9 + digests.WEEK]
        finally:
            await one.close()
            await two.close()


async def test_a_case_recovered_this_week_counts_however_long_ago_it_opened(store):  # noqa: F811
    """Read from the store: opened in the window, or closed in it whenever it opened (a case reopened after
    months of waiting, say), each once."""
    recovery = Recovery(store=store, clock=FakeClock(MONDAY_9), currency="USD", tz=UTC)
    week = (MONDAY_9 - timedelta(days=7), MONDAY_9)
    cases = [a_case(1, opened=MONDAY_9 - timedelta(days=200), took=timedelta(days=199)),  # recovered this week
             a_case(2, opened=MONDAY_9 - timedelta(days=3), took=timedelta(hours=1)),  # opened and recovered
             a_case(3, opened=MONDAY_9 - timedelta(days=2), took=None),  # opened, still open
             a_case(4, opened=MONDAY_9 - timedelta(days=30), took=timedelta(days=2))]  # neither
    for case in cases:
        await store.open_case(workspace="T1", build=lambda number, case=case: replace(case, id=f"R-{number}"))
    digest = await digests.build(recovery, workspace="T1", since=week[0], until=week[1])
    assert (digest.opened, digest.closed) == (2, 2)
