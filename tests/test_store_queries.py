"""The store's queries for managers and follow-through (digest, export, App Home, repeat customers,
retention), on every backend through the same `store` fixture as tests/test_store.py."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.cases import Reopening, StepDone, TopUp, MessageRef
from bot.checklist import Step
from bot.ledger import LedgerEntry
from bot.recovery import Recovery
from bot.store.tiny import TinyStore
from tests.test_store import MONDAY, W1, W2, store, clock, recovery  # noqa: F401 — the parametrised fixture

DAY = timedelta(days=1)


async def _open(recovery, clock, *, workspace=W1, owner="U1", customer="", days=0):
    clock.at = MONDAY + days * DAY
    return await recovery.open_case(workspace=workspace, owner=owner, owner_name=owner,
                                    what_happened=f"case on day {days}", customer=customer)


async def test_cases_are_listed_by_when_they_were_opened(recovery, clock, store):  # noqa: F811
    opened = [await _open(recovery, clock, days=d) for d in (0, 1, 2, 3)]
    await _open(recovery, clock, workspace=W2, days=1)
    found = await store.cases(workspace=W1, since=MONDAY + DAY, until=MONDAY + 3 * DAY)
    assert [c.id for c in found] == [opened[1].id, opened[2].id]
    assert [c.id for c in await store.cases(workspace=W1, since=MONDAY, until=MONDAY + 9 * DAY)] == \
        [c.id for c in opened]
    assert await store.cases(workspace="T-none", since=MONDAY, until=MONDAY + DAY) == []


async def test_team_open_cases_are_every_owner_s_and_leave_closed_ones_out(recovery, clock, store):  # noqa: F811
    a = await _open(recovery, clock, owner="U1", days=0)
    b = await _open(recovery, clock, owner="U2", days=1)
    c = await _open(recovery, clock, owner="", days=2)  # unowned (from a low survey score)
    await _open(recovery, clock, workspace=W2, days=0)
    await store.change_case(workspace=W1, case_id=b.id, change=lambda case: replace(case, closed_at=MONDAY + 2 * DAY))
    assert [x.id for x in await store.team_open_cases(workspace=W1)] == [a.id, c.id]


async def test_customer_cases_match_the_reference_loosely_and_respect_the_window(recovery, clock, store):  # noqa: F811
    old = await _open(recovery, clock, customer="Room 12", days=0)
    mid = await _open(recovery, clock, customer="room  12 ", days=5)
    await _open(recovery, clock, customer="room 13", days=6)
    await _open(recovery, clock, customer="", days=6)
    await _open(recovery, clock, workspace=W2, customer="room 12", days=6)
    new = await _open(recovery, clock, customer="ROOM 12", days=7)
    found = await store.customer_cases(workspace=W1, customer="room 12", since=MONDAY + DAY)
    assert [c.id for c in found] == [mid.id, new.id]
    assert [c.id for c in await store.customer_cases(workspace=W1, customer=" Room 12", since=MONDAY)] == \
        [old.id, mid.id, new.id]
    assert await store.customer_cases(workspace=W1, customer="", since=MONDAY) == []
    # Erasing the reference (retention) takes the case out of the lookup.
    await store.change_case(workspace=W1, case_id=mid.id, change=lambda case: replace(case, customer=""))
    assert [c.id for c in await store.customer_cases(workspace=W1, customer="room 12", since=MONDAY)] == \
        [old.id, new.id]


async def test_workspaces_are_those_with_cases(recovery, clock, store):  # noqa: F811
    assert await store.workspaces() == []
    await _open(recovery, clock, workspace=W2)
    await _open(recovery, clock, workspace=W1)
    await _open(recovery, clock, workspace=W1)
    assert await store.workspaces() == sorted([W1, W2])


async def test_ledger_window_and_the_approver_are_kept(recovery, clock, store):  # noqa: F811
    cases = [await _open(recovery, clock, days=d) for d in (0, 1, 2)]
    for day, case in enumerate(cases):
        entry = LedgerEntry(workspace=W1, case_id=case.id, employee="U1", role="staff", kind="voucher",
                            amount=Decimal("5.50"), currency="USD", at=MONDAY + day * DAY,
                            approved_by="M1" if day == 1 else "")
        await store.compensate_case(workspace=W1, case_id=case.id, employee="U1", since=MONDAY, until=MONDAY,
                                    change=lambda c, spent, entry=entry: (c, entry))
    everything = await store.ledger(workspace=W1)
    assert [e.approved_by for e in everything] == ["", "M1", ""]
    window = await store.ledger(workspace=W1, since=MONDAY + DAY, until=MONDAY + 2 * DAY)
    assert [(e.case_id, e.amount, e.approved_by) for e in window] == [(cases[1].id, Decimal("5.50"), "M1")]
    assert [e.case_id for e in await store.ledger(workspace=W1, since=MONDAY + DAY)] == [cases[1].id, cases[2].id]


async def test_the_new_case_fields_round_trip(recovery, clock, store):  # noqa: F811
    case = await _open(recovery, clock, customer="room 12")
    at = MONDAY + timedelta(minutes=5)
    full = replace(case, taken_at=at, nudged_at=at, root_cause="wait", change_note="a second runner at lunch",
                   recognised_by=("M1", "M2"), follow_up_outcome="happy", erased_at=at,
                   top_up=TopUp(amount=Decimal("40"), reason="a ruined anniversary", requested_at=at,
                                status="approved", decided_by="M1", decided_by_name="Max", decided_at=at,
                                post=MessageRef(channel="C1", id="1.2")),
                   reopenings=(Reopening(at=at, done={Step.APOLOGISE: StepDone(at=at, note="sorry")},
                                         follow_up_on=at.date(), closed_at=at),))
    await store.change_case(workspace=W1, case_id=case.id, change=lambda _: full)
    assert await store.get_case(workspace=W1, case_id=case.id) == full


async def test_the_embedded_indexes_survive_a_reload(tmp_path, clock):
    path = str(tmp_path / "amends.json")
    store = TinyStore(path=path)
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    a = await _open(recovery, clock, customer="Room 12", days=0)
    b = await _open(recovery, clock, customer="room 12", days=3)
    await store.change_case(workspace=W1, case_id=a.id, change=lambda case: replace(case, closed_at=MONDAY + 4 * DAY))
    await store.close()
    store = TinyStore(path=path)
    try:
        assert [c.id for c in await store.customer_cases(workspace=W1, customer="room 12", since=MONDAY)] == [a.id, b.id]
        assert [c.id for c in await store.cases(workspace=W1, since=MONDAY + DAY, until=MONDAY + 9 * DAY)] == [b.id]
        assert await store.workspaces() == [W1]
        assert [c.id for c in await store.closed_cases(workspace=W1, since=MONDAY, until=MONDAY + 9 * DAY)] == [a.id]
    finally:
        await store.close()


async def test_a_top_up_a_manager_approved_uses_none_of_the_employee_s_own_budget(recovery, clock, store):  # noqa: F811
    """The approval was the manager's call for that one case: the employee's week is untouched by it."""
    own, approved = await _open(recovery, clock), await _open(recovery, clock)
    for case, amount, approver in ((own, "20", ""), (approved, "80", "M1")):
        entry = LedgerEntry(workspace=W1, case_id=case.id, employee="U1", role="staff", kind="voucher",
                            amount=Decimal(amount), currency="USD", at=MONDAY, approved_by=approver)
        await store.compensate_case(workspace=W1, case_id=case.id, employee="U1", since=MONDAY, until=MONDAY,
                                    change=lambda c, spent, entry=entry: (c, entry))
    assert await store.spent(workspace=W1, employee="U1", since=MONDAY, until=MONDAY + DAY) == Decimal("20")
    assert (await recovery.allowance(workspace=W1, person="U1")).left == Decimal("80")  # $100 a week − $20
    assert sum(e.amount for e in await store.ledger(workspace=W1)) == Decimal("100")  # both are in the ledger


async def test_closed_cases_are_those_closed_in_the_window_whenever_they_opened(recovery, clock, store):  # noqa: F811
    def close(at):
        return lambda case: replace(case, closed_at=at)
    long_ago = await _open(recovery, clock, days=-60)  # opened two months before, closed this week
    recent = await _open(recovery, clock, days=1)
    still_open = await _open(recovery, clock, days=2)
    reopened = await _open(recovery, clock, days=2)
    await _open(recovery, clock, workspace=W2, days=1)
    await store.change_case(workspace=W1, case_id=long_ago.id, change=close(MONDAY + 3 * DAY))
    await store.change_case(workspace=W1, case_id=recent.id, change=close(MONDAY + 2 * DAY))
    await store.change_case(workspace=W1, case_id=reopened.id, change=close(MONDAY + 2 * DAY))
    await store.change_case(workspace=W1, case_id=reopened.id, change=close(None))  # reopened…
    await store.change_case(workspace=W1, case_id=reopened.id, change=close(MONDAY + 9 * DAY))  # …closed next week
    await store.change_case(workspace=W1, case_id=recent.id, change=lambda case: replace(case, root_cause="wait"))
    week = await store.closed_cases(workspace=W1, since=MONDAY, until=MONDAY + 7 * DAY)
    assert [c.id for c in week] == [recent.id, long_ago.id]  # by when they closed; still_open isn't there
    assert week[0].root_cause == "wait"  # as it is now
    assert [c.id for c in await store.closed_cases(workspace=W1, since=MONDAY + 7 * DAY, until=MONDAY + 14 * DAY)] \
        == [reopened.id]
    assert still_open.id not in [c.id for c in await store.closed_cases(workspace=W1, since=MONDAY - 90 * DAY,
                                                                         until=MONDAY + 90 * DAY)]


async def test_cases_saved_out_of_time_order_are_still_listed_in_it(recovery, clock, store):  # noqa: F811
    """An imported or copied store need not hold its cases in time order."""
    late = await _open(recovery, clock, days=5)
    early = await _open(recovery, clock, days=1)
    middle = await _open(recovery, clock, days=3)
    assert [c.id for c in await store.cases(workspace=W1, since=MONDAY, until=MONDAY + 9 * DAY)] == \
        [early.id, middle.id, late.id]
    assert [c.id for c in await store.cases(workspace=W1, since=MONDAY + 2 * DAY, until=MONDAY + 9 * DAY)] == \
        [middle.id, late.id]
    newest = await _open(recovery, clock, days=4)  # added after a read sorted the index
    assert [c.id for c in await store.cases(workspace=W1, since=MONDAY, until=MONDAY + 9 * DAY)] == \
        [early.id, middle.id, newest.id, late.id]


async def test_cases_with_ids_outside_the_usual_numbering_are_kept_too(tmp_path, clock):
    """The embedded store places R-<number> cases by number; any other id (an import, a test) still works,
    across a reload and a fold."""
    path = str(tmp_path / "amends.json")
    store = TinyStore(path=path)
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    usual = await _open(recovery, clock, days=0)
    odd_ids = ["X-7", "R-0012", "R-99999999", "R-", "R-1001x"]
    for n, case_id in enumerate(odd_ids):
        await store.open_case(workspace=W1, build=lambda number, case_id=case_id, n=n: replace(
            usual, id=case_id, opened_at=MONDAY + (n + 1) * DAY, customer="room 12"))
    for reopen in (False, True):
        if reopen:
            await store.close()  # folds the journal into the snapshot
            store = TinyStore(path=path)
        try:
            for case_id in [usual.id, *odd_ids]:
                assert (await store.get_case(workspace=W1, case_id=case_id)).id == case_id
            assert await store.get_case(workspace=W1, case_id="R-1002") is None
            assert await store.get_case(workspace=W1, case_id="X-8") is None
            listed = await store.cases(workspace=W1, since=MONDAY, until=MONDAY + 9 * DAY)
            assert [c.id for c in listed] == [usual.id, *odd_ids]
            assert [c.id for c in await store.customer_cases(workspace=W1, customer="room 12", since=MONDAY)] == odd_ids
        finally:
            if reopen:
                await store.close()


async def test_a_ledger_window_reads_entries_given_in_it_in_the_order_recorded(recovery, clock, store):  # noqa: F811
    cases = [await _open(recovery, clock, days=d) for d in range(4)]
    for case, day in zip(cases, (2, 0, 3, 1)):  # recorded out of time order (back-dated imports, say)
        entry = LedgerEntry(workspace=W1, case_id=case.id, employee="U1", role="staff", kind="voucher",
                            amount=Decimal(day + 1), currency="USD", at=MONDAY + day * DAY)
        await store.compensate_case(workspace=W1, case_id=case.id, employee="U1", since=MONDAY, until=MONDAY,
                                    change=lambda c, spent, entry=entry: (c, entry))
    window = await store.ledger(workspace=W1, since=MONDAY + DAY, until=MONDAY + 3 * DAY)
    assert [e.amount for e in window] == [Decimal(3), Decimal(2)]  # days 2 and 1, as recorded
    assert [e.amount for e in await store.ledger(workspace=W1, until=MONDAY + DAY)] == [Decimal(1)]
