"""Retention (bot/retention.py): customer references and notes erased after the workspace's days, amounts,
causes and times kept; the daily job chained through the outbox exactly once. Every backend, through the
`store` fixture of tests/test_store.py."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot import retention
from bot.cases import Compensation, Reopening, StepDone, TopUp
from bot.checklist import Step
from bot.errors import BadCommand
from bot.outbox import Outbox
from bot.recovery import Recovery
from tests.test_store import MONDAY, W1, W2, FakeClock, store  # noqa: F401 — the parametrised fixture

DAY = timedelta(days=1)
UTC = ZoneInfo("UTC")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def recovery(store, clock):  # noqa: F811
    return Recovery(store=store, clock=clock, currency="USD", tz=UTC, outbox=Outbox(store=store, clock=clock))


async def closed_case(recovery, clock, *, days: int, workspace=W1, customer="table 4"):
    """A case opened `days` after MONDAY, walked with notes, closed with a cause and a change."""
    clock.at = MONDAY + days * DAY
    case = await recovery.open_case(workspace=workspace, owner="U1", owner_name="Amy", what_happened="cold soup",
                                    customer=customer)
    for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
        await recovery.complete_step(workspace=workspace, case_id=case.id, actor="U1", step=step,
                                     note=f"{step.value}: told {customer}")
    await recovery.store.change_case(workspace=workspace, case_id=case.id, change=lambda c: replace(
        c, compensation=Compensation(kind="voucher", amount=Decimal("15"), currency="USD"),
        done={**c.done, Step.COMPENSATE: StepDone(at=clock.at)},
        top_up=TopUp(amount=Decimal("40"), reason=f"{customer}'s anniversary", requested_at=clock.at, status="approved"),
        reopenings=(Reopening(at=clock.at, done={Step.FIX: StepDone(at=clock.at, note="called them")}),)))
    return await recovery.follow_up(workspace=workspace, case_id=case.id, actor="U1", on=None, root_cause="food",
                                    change_note=f"check soup for {customer}")


def test_erasing_keeps_the_numbers_and_drops_what_people_typed():
    at = MONDAY + 400 * DAY
    case = retention.Case(
        workspace=W1, id="R-1001", owner="U1", owner_name="Amy", what_happened="cold soup", customer="Mrs Smith",
        opened_at=MONDAY, done={Step.APOLOGISE: StepDone(at=MONDAY, note="sorry Mrs Smith")},
        compensation=Compensation(kind="voucher", amount=Decimal("15"), currency="USD"), closed_at=MONDAY + DAY,
        root_cause="food", change_note="call Mrs Smith", top_up=TopUp(amount=Decimal("40"), reason="Mrs Smith",
                                                                      requested_at=MONDAY),
        reopenings=(Reopening(at=MONDAY, done={Step.FIX: StepDone(at=MONDAY, note="Mrs Smith again")}),))
    erased = retention.erase(case, at=at)
    assert (erased.customer, erased.change_note, erased.top_up.reason) == ("", "", "")
    assert erased.done == {Step.APOLOGISE: StepDone(at=MONDAY)} and erased.reopenings[0].done[Step.FIX].note == ""
    assert (erased.compensation, erased.root_cause, erased.top_up.amount, erased.opened_at, erased.closed_at,
            erased.owner) == (case.compensation, "food", Decimal("40"), MONDAY, MONDAY + DAY, "U1")
    assert erased.what_happened == retention.ERASED  # free text: often the guest's own words
    assert erased.erased_at == at
    assert retention.erase(erased, at=at + DAY) == erased  # once erased, left as it is


async def test_a_run_erases_only_cases_older_than_the_retention(recovery, clock, store):  # noqa: F811
    old = await closed_case(recovery, clock, days=0)
    recent = await closed_case(recovery, clock, days=100)
    other = await closed_case(recovery, clock, days=0, workspace=W2)
    now = MONDAY + 370 * DAY  # `old` is 370 days old, `recent` 270
    assert await retention.run(store, workspace=W1, now=now) == [old.id]
    erased = await recovery.case(workspace=W1, case_id=old.id)
    assert erased.customer == "" and erased.change_note == "" and erased.erased_at == now
    assert erased.what_happened == retention.ERASED and erased.top_up.reason == ""
    assert erased.reopenings[0].done[Step.FIX].note == ""
    assert all(done.note == "" for done in erased.done.values())
    assert erased.compensation.amount == Decimal("15") and erased.root_cause == "food"
    assert await recovery.case(workspace=W1, case_id=recent.id) == recent  # within the 365 days
    assert await recovery.case(workspace=W2, case_id=other.id) == other  # another workspace's run
    assert await retention.run(store, workspace=W1, now=now + DAY) == []  # nothing new: the watermark
    assert await retention.run(store, workspace=W1, now=now + 100 * DAY) == [recent.id]


async def test_an_admin_shortens_or_lengthens_the_retention(recovery, clock, store):  # noqa: F811
    case = await closed_case(recovery, clock, days=0)
    assert await retention.retention_days(store, workspace=W1) == retention.DEFAULT_DAYS
    assert await retention.run(store, workspace=W1, now=MONDAY + 40 * DAY) == []
    said = await retention.admin_retention(recovery, workspace=W1, text="30")
    assert said.startswith("Saved. Customer references and notes are kept 30 day(s)")
    assert await retention.run(store, workspace=W1, now=MONDAY + 41 * DAY) == [case.id]
    await retention.set_retention(store, workspace=W1, text="365")  # longer: nothing comes back, nothing breaks
    later = await closed_case(recovery, clock, days=50)
    assert await retention.run(store, workspace=W1, now=MONDAY + 60 * DAY) == []
    assert await retention.run(store, workspace=W1, now=MONDAY + 420 * DAY) == [later.id]


@pytest.mark.parametrize("text", ["", "a year", "0", "-5", "3651", "30.5"])
async def test_a_bad_retention_is_refused_and_nothing_changes(recovery, store, text):  # noqa: F811
    await retention.set_retention(store, workspace=W1, text="90")
    with pytest.raises(BadCommand):
        await retention.admin_retention(recovery, workspace=W1, text=text)
    assert await retention.retention_days(store, workspace=W1) == 90
    assert await store.owed_outbox() == []  # nor is a run owed for it


async def test_the_daily_job_runs_once_a_day_and_chains_itself_once(recovery, clock, store):  # noqa: F811
    case = await closed_case(recovery, clock, days=0)
    await closed_case(recovery, clock, days=0, workspace=W2)
    outbox = Outbox(store=store, clock=clock)
    job = retention.RetentionJob(store=store, clock=clock, tz=UTC)
    outbox.register(retention.KIND, job)
    clock.at = MONDAY + 400 * DAY
    today = clock.at.date()

    def jobs(owed):
        return sorted(m.key for m in owed if m.kind == retention.KIND)
    await job.start()
    await job.start()  # a second process starting: the same keys, owed once
    assert jobs(await store.owed_outbox()) == [retention.job_key(today)]
    assert await outbox.send_due() is True  # due (03:00 has passed): it runs for both workspaces
    assert (await recovery.case(workspace=W1, case_id=case.id)).erased_at == clock.at
    assert (await recovery.case(workspace=W2, case_id="R-1001")).erased_at == clock.at
    tomorrow = today + DAY
    assert jobs(await store.owed_outbox()) == [retention.job_key(tomorrow)]
    [due] = {m.due for m in await store.owed_outbox() if m.kind == retention.KIND}
    assert due.astimezone(UTC).date() == tomorrow and due.astimezone(UTC).time() == retention.RUN_AT
    assert await outbox.send_due() is False  # nothing more today
    await job.start()  # a restart later the same day owes tomorrow's, which is already owed
    assert jobs(await store.owed_outbox()) == [retention.job_key(tomorrow)]
    clock.at = due + timedelta(minutes=1)
    assert await outbox.send_due() is True
    assert jobs(await store.owed_outbox()) == [retention.job_key(tomorrow + DAY)]


async def test_a_run_missed_while_the_bot_was_down_runs_at_start_and_the_chain_moves_to_today(recovery, clock,
                                                                                              store):  # noqa: F811
    await closed_case(recovery, clock, days=0)
    job = retention.RetentionJob(store=store, clock=clock, tz=UTC)
    outbox = Outbox(store=store, clock=clock, senders={retention.KIND: job})
    await job.start()
    clock.at += 10 * DAY  # down for ten days: the owed run is late, not lost
    assert await outbox.send_due() is True
    assert [m.key for m in await store.owed_outbox() if m.kind == retention.KIND] == [
        retention.job_key(clock.at.date() + DAY)]


async def test_the_run_is_at_three_in_the_workspaces_time_zone(store):  # noqa: F811
    auckland = ZoneInfo("Pacific/Auckland")
    clock = FakeClock(MONDAY)  # 10:00 UTC is 23:00 in Auckland, the same day
    job = retention.RetentionJob(store=store, clock=clock, tz=auckland)
    outbox = Outbox(store=store, clock=clock, senders={retention.KIND: job})
    await store.put_reference(workspace=W1, key=retention.RETENTION_KEY, value={"days": 30})
    await Recovery(store=store, clock=clock, currency="USD", tz=auckland).open_case(
        workspace=W1, owner="U1", owner_name="Amy", what_happened="cold soup")
    await retention.seed(store, tz=auckland, now=clock.now())
    [owed] = [m for m in await store.owed_outbox() if m.kind == retention.KIND]
    local_today = clock.now().astimezone(auckland).date()
    assert owed.key == retention.job_key(local_today) and owed.due.astimezone(auckland).hour == 3
    assert await outbox.send_due() is True  # 03:00 there has passed
    await job.start()  # a start later that (local) day owes tomorrow's run, already owed
    assert [m.key for m in await store.owed_outbox() if m.kind == retention.KIND] == [
        retention.job_key(local_today + DAY)]


async def test_a_workspace_that_opens_its_first_case_after_the_start_is_covered(recovery, clock, store):  # noqa: F811
    """A fresh install has no workspace when it starts: the chain must run anyway and reach the first one."""
    job = retention.RetentionJob(store=store, clock=clock, tz=UTC)
    outbox = Outbox(store=store, clock=clock, senders={retention.KIND: job})
    await job.start()
    [owed] = await store.owed_outbox()  # with no workspace yet, tomorrow's: nothing can be old enough today
    assert owed.key == retention.job_key(clock.at.date() + DAY)
    case = await closed_case(recovery, clock, days=0)  # the first case ever, after the start
    await store.put_reference(workspace=W1, key=retention.RETENTION_KEY, value={"days": 1})
    assert await outbox.send_due() is False
    clock.at += DAY
    assert await outbox.send_due() is True  # the next day's run: the case is not a whole day old yet
    assert (await recovery.case(workspace=W1, case_id=case.id)).erased_at is None
    clock.at += DAY
    assert await outbox.send_due() is True
    erased = await recovery.case(workspace=W1, case_id=case.id)
    assert erased.erased_at == clock.at and erased.customer == ""
    assert [m.key for m in await store.owed_outbox() if m.kind == retention.KIND] == [
        retention.job_key(clock.at.date() + DAY)]


async def test_one_workspace_failing_does_not_stop_the_others_nor_the_chain(recovery, clock, store,
                                                                          monkeypatch):  # noqa: F811
    await closed_case(recovery, clock, days=0)
    other = await closed_case(recovery, clock, days=0, workspace=W2)
    job = retention.RetentionJob(store=store, clock=clock, tz=UTC)
    outbox = Outbox(store=store, clock=clock, senders={retention.KIND: job})
    await job.start()
    clock.at = MONDAY + 400 * DAY
    real_run = retention.run

    async def broken_for_w1(store, *, workspace, now):
        if workspace == W1:
            raise RuntimeError("bad data")
        return await real_run(store, workspace=workspace, now=now)
    monkeypatch.setattr(retention, "run", broken_for_w1)
    assert await outbox.send_due() is True
    assert (await recovery.case(workspace=W2, case_id=other.id)).erased_at == clock.at
    assert (await recovery.case(workspace=W1, case_id="R-1001")).erased_at is None
    monkeypatch.setattr(retention, "run", real_run)
    clock.at += DAY
    assert await outbox.send_due() is True  # the next day's run catches up
    assert (await recovery.case(workspace=W1, case_id="R-1001")).erased_at == clock.at
