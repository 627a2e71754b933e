"""Follow-through in the domain (bot/followups.py), on every store backend: the reminder owed with the close,
the owner's answers (happy, reopen, snooze), idle nudges, and delivery exactly once, also after a restart
and with two processes racing on one PostgreSQL database."""

import asyncio
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot import followups
from bot.checklist import Step
from bot.errors import BadCommand, NotYourCase, StepNotOpen
from bot.followups import NUDGE, REMINDER, FollowUps, FollowUpSender
from bot.outbox import Outbox
from bot.recovery import Recovery
from bot.store.postgres import PostgresStore
from bot.store.tiny import TinyStore
from tests.test_postgres import TEST_URL, fresh_schema
from tests.test_store import MONDAY, W1, FakeClock, _give, _to_compensate, store  # noqa: F401 — the fixture

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
TUESDAY = date(2026, 3, 3)


class Said:
    """A platform that records what it would have said to whom."""

    def __init__(self):
        self.said: list[tuple[str, str, str]] = []

    async def remind(self, case, *, due):
        self.said.append(("remind", case.id, due.isoformat()))

    async def nudge(self, case, *, now):
        self.said.append(("nudge", case.id, now.isoformat()))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def recovery(store, clock):  # noqa: F811
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    recovery.outbox.clock = clock
    return recovery


def sender_for(recovery) -> tuple[FollowUpSender, Said]:
    said = Said()
    sender = FollowUpSender(recovery, which=lambda case: "here")
    sender.platforms["here"] = said
    recovery.outbox.register(REMINDER, sender)
    recovery.outbox.register(NUDGE, sender)
    return sender, said


async def owed(store, kind):  # noqa: F811
    return [m for m in await store.owed_outbox() if m.kind == kind]


async def closed(recovery, *, give: str | None = "15", on: date | None = TUESDAY):
    case = await _to_compensate(recovery)
    if give:
        await _give(recovery, case, give)
    else:
        await recovery.nothing_needed(workspace=W1, case_id=case.id, actor="U1")
    return await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=on)


# --- the reminder is owed with the close ----------------------------------------------------------

async def test_a_close_with_a_follow_up_owes_its_reminder_in_the_same_write(recovery, store):  # noqa: F811
    case = await closed(recovery)
    [reminder] = await owed(store, REMINDER)
    assert reminder.due == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # the day, at the default hour
    assert reminder.case_id == f"reminder:{case.id}"  # its own lane: the case's own messages never wait on it
    assert {m.kind for m in await store.owed_outbox()} >= {"closed", REMINDER}


async def test_no_follow_up_owes_no_reminder(recovery, store):  # noqa: F811
    await closed(recovery, on=None)
    assert await owed(store, REMINDER) == []


async def test_the_admin_hour_is_in_the_workspace_time_zone(store, clock):  # noqa: F811
    recovery = Recovery(store=store, clock=clock, currency="GBP", tz=LONDON)
    assert await followups.saying_reminder_hour(store, workspace=W1, text="8") == (
        "Saved. Follow-up reminders now arrive at 08:00 (workspace time) on their day.")
    case = await _to_compensate(recovery)
    await recovery.nothing_needed(workspace=W1, case_id=case.id, actor="U1")
    await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=date(2026, 7, 1))
    [reminder] = await owed(store, REMINDER)
    assert reminder.due == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # 08:00 in London's summer time


@pytest.mark.parametrize("typed", ["24", "-1", "ten", "9.5", "", "10 11", "99999999", "²"])
async def test_a_bad_hour_is_refused_and_changes_nothing(store, typed):  # noqa: F811
    with pytest.raises(BadCommand) as refused:
        await followups.set_reminder_hour(store, workspace=W1, text=typed)
    assert "from 0 to 23" in refused.value.sentence
    assert await store.reference(workspace=W1, key=followups.REMINDER_HOUR) is None


@pytest.mark.parametrize("typed", ["0", "1441", "soon", "-5", "1.5", "²"])  # "²": a digit int() refuses
async def test_bad_idle_minutes_are_refused_and_change_nothing(store, typed):  # noqa: F811
    with pytest.raises(BadCommand) as refused:
        await followups.set_idle_minutes(store, workspace=W1, text=typed)
    assert "from 1 to 1440" in refused.value.sentence
    assert await store.reference(workspace=W1, key=followups.IDLE_MINUTES) is None


# --- the owner's answers --------------------------------------------------------------------------

async def test_done_records_happy_once_and_only_for_the_owner(recovery, store):  # noqa: F811
    case = await closed(recovery)
    answers = FollowUps(recovery)
    with pytest.raises(NotYourCase):
        await answers.done(workspace=W1, case_id=case.id, actor="U2")
    assert (await recovery.case(workspace=W1, case_id=case.id)).follow_up_outcome == ""
    assert (await answers.done(workspace=W1, case_id=case.id, actor="U1")).follow_up_outcome == "happy"
    before = await recovery.case(workspace=W1, case_id=case.id)
    with pytest.raises(StepNotOpen):
        await answers.done(workspace=W1, case_id=case.id, actor="U1")
    with pytest.raises(StepNotOpen):  # happy is the end of it
        await answers.reopen(workspace=W1, case_id=case.id, actor="U1")
    assert await recovery.case(workspace=W1, case_id=case.id) == before


async def test_reopen_goes_back_to_fix_keeping_history_and_the_one_ledger_entry(recovery, store, clock):  # noqa: F811
    case = await closed(recovery, give="15")
    clock.advance(timedelta(days=1))
    answers = FollowUps(recovery)
    reopened = await answers.reopen(workspace=W1, case_id=case.id, actor="U1")
    assert not reopened.is_closed and reopened.current_step is Step.FIX
    assert set(reopened.done) == {Step.APOLOGISE, Step.EMPATHISE, Step.COMPENSATE}  # the gift stands
    assert reopened.compensation == case.compensation and reopened.summary is None
    [history] = reopened.reopenings
    assert set(history.done) == {Step.FIX, Step.FOLLOW_UP} and history.done[Step.FIX] == case.done[Step.FIX]
    assert (history.follow_up_on, history.closed_at, history.at) == (TUESDAY, case.closed_at, clock.now())
    with pytest.raises(StepNotOpen):  # a second press
        await answers.reopen(workspace=W1, case_id=case.id, actor="U1")

    # fix again, then straight to follow-up: nothing more is given, so the ledger keeps its one entry
    again = await recovery.complete_step(workspace=W1, case_id=case.id, actor="U1", step=Step.FIX, note="new soup")
    assert again.current_step is Step.FOLLOW_UP
    reclosed = await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=date(2026, 3, 10))
    assert reclosed.is_closed and len(await store.ledger(workspace=W1)) == 1
    assert reclosed.time_to_recover == reclosed.closed_at - reclosed.opened_at
    rounds = sorted(m.body["round"] for m in await owed(store, REMINDER))
    assert rounds == [0, 1]  # the first close's reminder is still owed, and will say nothing (below)


async def test_a_reopened_case_where_nothing_was_needed_may_give_this_time(recovery, store):  # noqa: F811
    case = await closed(recovery, give=None)
    reopened = await FollowUps(recovery).reopen(workspace=W1, case_id=case.id, actor="U1")
    assert reopened.compensation is None and Step.COMPENSATE in reopened.reopenings[0].done
    await recovery.complete_step(workspace=W1, case_id=case.id, actor="U1", step=Step.FIX)
    given, entry = await _give(recovery, reopened, "10")
    assert given.compensation.amount == 10 and len(await store.ledger(workspace=W1)) == 1


async def test_snooze_owes_the_reminder_a_day_later_once_settling_the_current_one(recovery, store, clock):  # noqa: F811
    case = await closed(recovery)
    [first] = await owed(store, REMINDER)
    clock.at = first.due + timedelta(minutes=5)
    answers = FollowUps(recovery)
    with pytest.raises(NotYourCase):
        await answers.snooze(workspace=W1, case_id=case.id, actor="U2", due=first.due)
    assert [m.key for m in await owed(store, REMINDER)] == [first.key]
    until = await answers.snooze(workspace=W1, case_id=case.id, actor="U1", due=first.due)
    assert until == first.due + timedelta(days=1)
    assert [m.due for m in await owed(store, REMINDER)] == [until]  # the current one settled in the same write
    await answers.snooze(workspace=W1, case_id=case.id, actor="U1", due=first.due)  # a double press
    assert [m.due for m in await owed(store, REMINDER)] == [until]
    clock.at = first.due + timedelta(days=3)  # read late: never snoozed into the past
    assert followups.snoozed_until(first.due, now=clock.now()) == first.due + timedelta(days=4)


# --- delivery ----------------------------------------------------------------------------------------

async def test_a_reminder_is_said_on_its_day_and_not_once_answered(recovery, store, clock):  # noqa: F811
    _sender, said = sender_for(recovery)
    case = await closed(recovery)
    [reminder] = await owed(store, REMINDER)
    clock.at = reminder.due - timedelta(seconds=1)
    await recovery.outbox.send_due()
    assert [s for s in said.said if s[0] == "remind"] == []
    clock.at = reminder.due
    await recovery.outbox.send_due()
    assert [s for s in said.said if s[0] == "remind"] == [("remind", case.id, reminder.due.isoformat())]
    assert await owed(store, REMINDER) == []

    # snoozed, then answered happy before the snooze is over: the snoozed reminder says nothing
    await FollowUps(recovery).snooze(workspace=W1, case_id=case.id, actor="U1", due=reminder.due)
    await FollowUps(recovery).done(workspace=W1, case_id=case.id, actor="U1")
    clock.advance(timedelta(days=2))
    await recovery.outbox.send_due()
    assert len([s for s in said.said if s[0] == "remind"]) == 1 and await owed(store, REMINDER) == []


async def test_a_nudge_comes_once_after_the_idle_time_not_while_the_case_moves(recovery, store, clock):  # noqa: F811
    _sender, said = sender_for(recovery)
    case = await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="cold soup")
    [nudge] = await owed(store, NUDGE)
    assert nudge.due == case.opened_at + timedelta(minutes=15) and nudge.case_id == f"nudge:{case.id}"
    clock.advance(timedelta(minutes=10))
    await recovery.complete_step(workspace=W1, case_id=case.id, actor="U1", step=Step.APOLOGISE)
    clock.advance(timedelta(minutes=6))  # 16 min open, but touched 6 min ago
    await recovery.outbox.send_due()
    assert said.said == []
    [later] = await owed(store, NUDGE)
    assert later.due == clock.now() + timedelta(minutes=9)  # last activity + 15 min
    clock.advance(timedelta(minutes=9))
    await recovery.outbox.send_due()
    assert said.said == [("nudge", case.id, clock.now().isoformat())]
    assert (await recovery.case(workspace=W1, case_id=case.id)).nudged_at == clock.now()
    assert await owed(store, NUDGE) == []


async def test_nobody_is_nudged_for_an_unowned_or_closed_case(recovery, store, clock):  # noqa: F811
    _sender, said = sender_for(recovery)
    await recovery.open_case(workspace=W1, owner="", owner_name="", what_happened="low survey score")
    assert await owed(store, NUDGE) == []  # nobody owns it: nobody to nudge
    taken = await recovery.take(workspace=W1, case_id="R-1001", actor="U2", name="Ben")
    assert taken.taken_at == clock.now()
    [nudge] = await owed(store, NUDGE)
    assert nudge.due == clock.now() + timedelta(minutes=15)

    done = await closed(recovery)
    clock.advance(timedelta(hours=1))
    await recovery.outbox.send_due()
    assert [s[1] for s in said.said if s[0] == "nudge"] == ["R-1001"]  # the closed R-1002 said nothing
    assert done.nudged_at is None


async def test_an_admin_idle_time_is_used_when_the_case_opens(recovery, store):  # noqa: F811
    assert await followups.saying_idle_minutes(store, workspace=W1, text="30") == (
        "Saved. A case left untouched for 30 min now nudges its owner, once.")
    case = await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="cold soup")
    [nudge] = await owed(store, NUDGE)
    assert nudge.due == case.opened_at + timedelta(minutes=30)


async def test_a_reminder_due_while_the_bot_was_down_goes_out_once_on_start(tmp_path, clock):
    path = str(tmp_path / "amends.json")
    first = TinyStore(path=path)
    recovery = Recovery(store=first, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    case = await closed(recovery)
    await first.close()  # down before the day comes

    clock.at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a day late
    second = TinyStore(path=path)
    again = Recovery(store=second, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    again.outbox.clock = clock
    _sender, said = sender_for(again)
    try:
        again.outbox.start()
        for _ in range(50):  # rounds of the running sender, not time
            seen = again.outbox.rounds
            if said.said:
                break
            await asyncio.wait_for(again.outbox.after_round(seen), 5)
        await again.outbox.send_due()
        await again.outbox.send_due()
    finally:
        await again.outbox.stop()
        await second.close()
    assert [s[:2] for s in said.said if s[0] == "remind"] == [("remind", case.id)]


async def test_two_processes_on_postgresql_say_a_due_reminder_once():
    async with fresh_schema() as schema:
        one, two = PostgresStore(url=TEST_URL, schema=schema), PostgresStore(url=TEST_URL, schema=schema)
        await one.open()
        await two.open()
        try:
            clock = FakeClock()
            recovery = Recovery(store=one, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
            case = await closed(recovery)
            [reminder] = await owed(one, REMINDER)
            clock.at = reminder.due + timedelta(minutes=1)
            said = Said()
            processes = []
            for store_ in (one, two):
                process = Recovery(store=store_, clock=clock, currency="USD", tz=ZoneInfo("UTC"),
                                   outbox=Outbox(store=store_, clock=clock, lease=timedelta(minutes=5)))
                sender = FollowUpSender(process, which=lambda case: "here")
                sender.platforms["here"] = said
                process.outbox.register(REMINDER, sender)
                processes.append(process)
            for _ in range(5):  # both race on every pass
                await asyncio.gather(*(p.outbox.send_due() for p in processes))
            assert [s[:2] for s in said.said if s[0] == "remind"] == [("remind", case.id)]
            assert await owed(one, REMINDER) == [] and await owed(two, REMINDER) == []
        finally:
            await one.close()
            await two.close()


def test_last_activity_is_the_latest_of_open_take_steps_and_reopen():
    from bot.cases import Case, Reopening, StepDone
    case = Case(workspace=W1, id="R-1", owner="U1", owner_name="Amy", what_happened="x", customer="",
                opened_at=MONDAY)
    assert followups.last_activity(case) == MONDAY
    case = replace(case, taken_at=MONDAY + timedelta(minutes=1),
                   done={Step.APOLOGISE: StepDone(at=MONDAY + timedelta(minutes=3))})
    assert followups.last_activity(case) == MONDAY + timedelta(minutes=3)
    case = replace(case, reopenings=(Reopening(at=MONDAY + timedelta(days=1), done={}),),
                   nudged_at=MONDAY + timedelta(minutes=20))
    assert followups.last_activity(case) == MONDAY + timedelta(days=1)
    assert not followups.nudged_already(case)  # nudged before the reopening: may be nudged again


async def test_a_case_and_its_idle_nudge_are_one_write(recovery, store):  # noqa: F811
    """Opening owes the nudge in the same write: a crash can't leave an open case nobody is nudged about,
    and a refused open owes nothing."""
    before = len(await store.owed_outbox())
    case = await recovery.open_case(workspace="T1", owner="U1", owner_name="Amy", what_happened="cold soup")
    owed = [m for m in await store.owed_outbox()][before:]
    assert [(m.kind, m.case_id) for m in owed] == [("followup.nudge", f"nudge:{case.id}")]

    def refuse(number):
        raise RuntimeError("refused while building the case")
    with pytest.raises(RuntimeError):
        await store.open_case(workspace="T1", build=refuse, owe=lambda c: [owed[0]])
    assert len(await store.owed_outbox()) == before + 1


# --- review: the reminder's hour in the workspace's time zone across a clock change ------------------

async def test_snooze_a_day_keeps_the_workspace_hour_across_a_clock_change(store, clock):  # noqa: F811
    """Snoozed on the Saturday before Europe's clocks go back: Sunday's reminder is at 10:00 London time
    again, not 09:00 (a day is a calendar day in the workspace, not 24 hours of UTC)."""
    recovery = Recovery(store=store, clock=clock, currency="GBP", tz=LONDON)
    recovery.outbox.clock = clock
    case = await _to_compensate(recovery)
    await recovery.nothing_needed(workspace=W1, case_id=case.id, actor="U1")
    await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=date(2026, 10, 24))  # a Saturday
    [first] = await owed(store, REMINDER)
    assert first.due.astimezone(LONDON).hour == 10
    clock.at = first.due + timedelta(minutes=5)
    until = await FollowUps(recovery).snooze(workspace=W1, case_id=case.id, actor="U1", due=first.due)
    assert until.astimezone(LONDON) == datetime(2026, 10, 25, 10, 0, tzinfo=LONDON)
    assert [m.due for m in await owed(store, REMINDER)] == [until]
    # read late, across the spring change too: still the same local hour
    spring = datetime(2026, 3, 28, 10, 0, tzinfo=LONDON).astimezone(UTC)
    later = followups.snoozed_until(spring, now=spring + timedelta(days=1, hours=2), tz=LONDON)
    assert later.astimezone(LONDON) == datetime(2026, 3, 30, 10, 0, tzinfo=LONDON)


def test_the_time_spent_recovering_leaves_out_the_wait_before_a_reopening():
    from bot.cases import Case, Reopening
    from cards.words import recovered_in
    case = Case(workspace=W1, id="R-1", owner="U1", owner_name="Amy", what_happened="x", customer="",
                opened_at=MONDAY, closed_at=MONDAY + timedelta(minutes=20))
    assert followups.recovering_time(case) == timedelta(minutes=20) and recovered_in(case) == "20 min"
    reopened = replace(case, closed_at=MONDAY + timedelta(days=2, minutes=30), reopenings=(
        Reopening(at=MONDAY + timedelta(days=2), done={}, closed_at=MONDAY + timedelta(minutes=20)),))
    assert followups.recovering_time(reopened) == timedelta(minutes=50)
    assert recovered_in(reopened) == "2 d (reopened once; 50 min of it recovering)"
    assert recovered_in(replace(case, closed_at=None)) == "—"


async def test_a_new_reminder_hour_moves_the_reminders_already_owed_but_not_a_snoozed_one(recovery, store, clock):  # noqa: F811
    """Review: `admin reminders 8` said reminders "now arrive at 08:00" while every one already owed kept 10:00."""
    case = await closed(recovery)  # a reminder on Tuesday at 10:00
    other = await closed(recovery, on=date(2026, 3, 5))
    [first, second] = await owed(store, REMINDER)
    clock.at = first.due + timedelta(minutes=1)
    await FollowUps(recovery).snooze(workspace=W1, case_id=case.id, actor="U1", due=first.due)  # Wed 10:00, promised
    answer = await followups.saying_reminder_hour(store, workspace=W1, text="8", tz=recovery.tz, now=clock.now())
    assert answer.endswith("The one already scheduled moves to it too.")
    dues = {m.body["case"]: m.due for m in await owed(store, REMINDER)}
    assert dues == {case.id: datetime(2026, 3, 4, 10, 0, tzinfo=UTC), other.id: datetime(2026, 3, 5, 8, 0, tzinfo=UTC)}
    _sender, said = sender_for(recovery)
    clock.at = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    await recovery.outbox.send_due()
    await recovery.outbox.send_due()
    assert sorted(s[1] for s in said.said if s[0] == "remind") == sorted([case.id, other.id])  # each once
    assert await owed(store, REMINDER) == []


async def test_a_reminder_from_before_a_reopening_can_not_answer_the_next_close(recovery, store, clock):  # noqa: F811
    """Review: after reopen and a second close, the first reminder's buttons still answered (and its snooze owed
    a second reminder beside the new one)."""
    case = await closed(recovery)
    [first] = await owed(store, REMINDER)
    clock.at = first.due + timedelta(minutes=3)
    answers = FollowUps(recovery)
    await answers.reopen(workspace=W1, case_id=case.id, actor="U1", due=first.due)
    await recovery.complete_step(workspace=W1, case_id=case.id, actor="U1", step=Step.FIX)
    reclosed = await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=date(2026, 3, 10))
    before = {m.key for m in await owed(store, REMINDER)}
    for answer in (answers.done, answers.reopen, answers.snooze):
        with pytest.raises(StepNotOpen) as refused:
            await answer(workspace=W1, case_id=case.id, actor="U1", due=first.due)
        assert "from before R-1001 was reopened" in refused.value.sentence
    assert await recovery.case(workspace=W1, case_id=case.id) == reclosed
    assert {m.key for m in await owed(store, REMINDER)} == before
    [latest] = [m for m in await owed(store, REMINDER) if m.body["round"] == 1]
    assert (await answers.done(workspace=W1, case_id=case.id, actor="U1", due=latest.due)).follow_up_outcome == "happy"
