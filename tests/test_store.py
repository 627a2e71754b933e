"""Store tests: every test that uses the `store` fixture runs on every backend.

They go through bot.recovery.Recovery (what the handlers call) and through the Store interface
directly. Backend-specific tests (a TinyDB file on disk) build their own TinyStore on a tmp path.
"""

import asyncio
import json
import os
import random
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import bot.store.tiny as tiny
from bot.cases import Case, Compensation, MessageRef, StepDone
from bot.checklist import CHECKLIST, Step
from bot.errors import (BadCommand, CaseNotFound, NotYourCase, OverAllowance, StepNotOpen, StoreUnavailable,
                        UnknownRole)
from bot.ledger import LedgerEntry
from bot.periods import Period
from bot.recovery import REPEAT_WINDOW, Recovery
from bot.roles import Budget, Role
from bot.store.tiny import TinyStore
from tests.test_postgres import postgres_store

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc
# Monday 2026-03-02 10:00 UTC: the week window (UTC) is [2026-03-02, 2026-03-09).
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
W1, W2 = "T-one", "T-two"


class FakeClock:
    def __init__(self, at: datetime = MONDAY):
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


# Every test using `store` runs on each backend. PostgreSQL gets a fresh schema per test, and is
# skipped, with a sentence saying how to run it, when no server answers (tests/test_postgres.py).
@pytest.fixture(params=["memory", "tinydb", "postgres"])
async def store(request, tmp_path):
    if request.param == "postgres":
        async with postgres_store() as s:
            yield s
        return
    s = TinyStore(path=None) if request.param == "memory" else TinyStore(path=str(tmp_path / "amends.json"))
    yield s
    await s.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def recovery(store, clock):
    return Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))


async def _open(recovery: Recovery, workspace=W1, owner="U1", name="Amy", what="cold soup, table 4") -> Case:
    return await recovery.open_case(workspace=workspace, owner=owner, owner_name=name, what_happened=what,
                                    customer="table 4")


async def _to_compensate(recovery: Recovery, workspace=W1, owner="U1", name="Amy") -> Case:
    case = await _open(recovery, workspace, owner, name)
    for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
        case = await recovery.complete_step(workspace=workspace, case_id=case.id, actor=owner, step=step,
                                            note=f"{step.value} note")
    assert case.current_step is Step.COMPENSATE
    return case


async def _give(recovery: Recovery, case: Case, amount: str, kind="voucher"):
    return await recovery.give(workspace=case.workspace, case_id=case.id, actor=case.owner, kind=kind,
                               amount_text=amount)


# --- cases -------------------------------------------------------------------------------------

async def test_case_numbers_are_allocated_per_workspace(recovery):
    ids_1 = [(await _open(recovery, W1)).id for _ in range(3)]
    ids_2 = [(await _open(recovery, W2)).id for _ in range(2)]
    ids_1.append((await _open(recovery, W1)).id)
    assert ids_1 == ["R-1001", "R-1002", "R-1003", "R-1004"]
    assert ids_2 == ["R-1001", "R-1002"]
    one = await recovery.case(workspace=W1, case_id="R-1001")
    two = await recovery.case(workspace=W2, case_id="R-1001")
    assert (one.workspace, two.workspace) == (W1, W2)


async def test_open_case_cleans_the_text_and_refuses_an_empty_one(recovery, clock):
    case = await recovery.open_case(workspace=W1, owner="U1", owner_name="", what_happened="  cold \n soup  ")
    assert case.what_happened == "cold soup"
    assert case.owner_name == "U1"  # falls back to the id
    assert case.opened_at == clock.now()
    with pytest.raises(BadCommand):
        await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened=" \n ")
    assert [c.id for c in await recovery.open_cases(workspace=W1, owner="U1")] == ["R-1001"]


async def test_a_failed_build_allocates_no_number(store):
    def broken(number):
        raise RuntimeError("build failed")
    with pytest.raises(RuntimeError):
        await store.open_case(workspace=W1, build=broken)
    case = await store.open_case(workspace=W1, build=lambda n: Case(
        workspace=W1, id=f"R-{n}", owner="U1", owner_name="Amy", what_happened="x", customer="",
        opened_at=MONDAY))
    assert case.id == "R-1001"


async def test_missing_case(store, recovery):
    assert await store.get_case(workspace=W1, case_id="R-1001") is None
    with pytest.raises(CaseNotFound) as refused:
        await recovery.case(workspace=W1, case_id="R-1001")
    assert "R-1001" in refused.value.sentence
    with pytest.raises(CaseNotFound):
        await store.change_case(workspace=W1, case_id="R-1001", change=lambda c: c)
    await _open(recovery, W2)
    assert await store.get_case(workspace=W1, case_id="R-1001") is None  # other workspace's case


async def test_every_case_field_round_trips(store, recovery):
    opened = await _open(recovery)
    kolkata = ZoneInfo("Asia/Kolkata")
    full = replace(
        opened,
        done={
            Step.APOLOGISE: StepDone(at=datetime(2026, 3, 2, 10, 1, 2, 345678, tzinfo=UTC), note="Sorry — “truly”"),
            Step.EMPATHISE: StepDone(at=datetime(2026, 3, 2, 15, 32, tzinfo=kolkata), note="they waited 40 min\nfor soup"),
            Step.FIX: StepDone(at=datetime(2026, 3, 2, 10, 3, tzinfo=UTC), note=""),
            Step.COMPENSATE: StepDone(at=datetime(2026, 3, 2, 10, 4, tzinfo=UTC)),
            Step.FOLLOW_UP: StepDone(at=datetime(2026, 3, 2, 10, 5, tzinfo=UTC)),
        },
        compensation=Compensation(kind="voucher", amount=Decimal("12.50"), currency="USD"),
        follow_up_on=date(2026, 3, 9),
        closed_at=datetime(2026, 3, 2, 10, 5, tzinfo=UTC),
        card=MessageRef(channel="C1", id="1700000000.000100"),
        step_posts={Step.APOLOGISE: MessageRef("C1", "1.1"), Step.FIX: MessageRef("19:abc@thread.v2", "act-9")},
        summary=MessageRef(channel="C9", id="9.9"),
    )
    saved = await store.change_case(workspace=W1, case_id=opened.id, change=lambda case: full)
    assert saved == full
    loaded = await store.get_case(workspace=W1, case_id=opened.id)
    assert loaded == full
    for name in Case.__dataclass_fields__:
        assert getattr(loaded, name) == getattr(full, name), name
    assert list(loaded.done) == list(CHECKLIST)
    assert loaded.compensation.amount == Decimal("12.50") and isinstance(loaded.compensation.amount, Decimal)
    assert loaded.done[Step.EMPATHISE].at == datetime(2026, 3, 2, 10, 2, tzinfo=UTC)  # same instant
    assert loaded.is_closed and loaded.time_to_recover == timedelta(minutes=5)
    assert await store.open_cases(workspace=W1, owner="U1") == []


async def test_an_empty_case_round_trips(store, recovery):
    opened = await _open(recovery)
    assert await store.get_case(workspace=W1, case_id=opened.id) == opened
    assert opened.done == {} and opened.compensation is None and opened.card is None


async def test_a_refused_change_leaves_the_case_unchanged(store, recovery):
    case = await _open(recovery)
    case = await recovery.complete_step(workspace=W1, case_id=case.id, actor="U1", step=Step.APOLOGISE, note="sorry")
    with pytest.raises(StepNotOpen):
        await recovery.complete_step(workspace=W1, case_id=case.id, actor="U1", step=Step.FIX, note="skipped ahead")
    with pytest.raises(NotYourCase):
        await recovery.complete_step(workspace=W1, case_id=case.id, actor="U2", step=Step.EMPATHISE)
    assert await store.get_case(workspace=W1, case_id=case.id) == case


async def test_a_change_that_raises_after_building_a_new_case_records_nothing(store, recovery):
    case = await _open(recovery)

    def change(old: Case) -> Case:
        old.complete(Step.APOLOGISE, at=MONDAY)  # a valid new case, then a refusal
        raise StepNotOpen("refused late")
    with pytest.raises(StepNotOpen):
        await store.change_case(workspace=W1, case_id=case.id, change=change)
    assert await store.get_case(workspace=W1, case_id=case.id) == case


async def test_open_cases_are_the_owners_unclosed_cases_oldest_first(recovery, clock):
    first = await _open(recovery, owner="U1")
    clock.advance(timedelta(minutes=1))
    await _open(recovery, owner="U2", name="Bo")
    clock.advance(timedelta(minutes=1))
    third = await _to_compensate(recovery, owner="U1")
    await recovery.nothing_needed(workspace=W1, case_id=third.id, actor="U1")
    await recovery.follow_up(workspace=W1, case_id=third.id, actor="U1", on=None)
    clock.advance(timedelta(minutes=1))
    fourth = await _open(recovery, owner="U1")
    await _open(recovery, W2, owner="U1")
    assert [c.id for c in await recovery.open_cases(workspace=W1, owner="U1")] == [first.id, fourth.id]


async def test_the_whole_checklist_through_recovery(store, recovery, clock):
    case = await _to_compensate(recovery)
    case, entry = await _give(recovery, case, "$12.50")
    assert case.current_step is Step.FOLLOW_UP
    on = date(2026, 3, 9)
    closed = await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=on)
    assert closed.is_closed and closed.closed_at == clock.now() and closed.follow_up_on == on
    with_summary = await recovery.remember_post(workspace=W1, case_id=case.id, summary=MessageRef("C9", "9"))
    assert await store.get_case(workspace=W1, case_id=case.id) == with_summary
    assert with_summary.summary == MessageRef("C9", "9") and with_summary.is_closed


# --- compensation and the ledger ---------------------------------------------------------------

async def test_give_records_one_entry_and_moves_to_follow_up(store, recovery, clock):
    case = await _to_compensate(recovery)
    given, entry = await _give(recovery, case, "12.50")
    assert given.current_step is Step.FOLLOW_UP
    assert given.compensation == Compensation(kind="voucher", amount=Decimal("12.50"), currency="USD")
    assert entry == LedgerEntry(workspace=W1, case_id=case.id, employee="U1", role="staff", kind="voucher",
                                amount=Decimal("12.50"), currency="USD", at=clock.now())
    assert await store.ledger(workspace=W1) == [entry]
    assert await store.get_case(workspace=W1, case_id=case.id) == given
    with pytest.raises(StepNotOpen):
        await _give(recovery, case, "5")
    assert await store.ledger(workspace=W1) == [entry]
    assert await store.get_case(workspace=W1, case_id=case.id) == given


async def test_give_by_someone_else_is_refused_and_records_nothing(store, recovery):
    case = await _to_compensate(recovery)
    with pytest.raises(NotYourCase):
        await recovery.give(workspace=W1, case_id=case.id, actor="U2", kind="voucher", amount_text="5")
    assert await store.ledger(workspace=W1) == []
    assert await store.get_case(workspace=W1, case_id=case.id) == case


@pytest.mark.parametrize("spent_before, amount, words", [
    ([], "25.01", "limit of $25 per case"),
    (["25", "25", "25", "20"], "10", "$5 left in your weekly budget"),
    (["25", "25", "25", "25"], "1", "used up"),
])
async def test_over_the_allowance_is_refused_and_records_nothing(store, recovery, spent_before, amount, words):
    for earlier in spent_before:
        await _give(recovery, await _to_compensate(recovery), earlier)
    ledger_before = await store.ledger(workspace=W1)
    case = await _to_compensate(recovery)
    with pytest.raises(OverAllowance) as refused:
        await _give(recovery, case, amount)
    assert words in refused.value.sentence
    assert await store.ledger(workspace=W1) == ledger_before
    assert await store.get_case(workspace=W1, case_id=case.id) == case


async def test_allowance_reflects_what_was_given(recovery):
    await _give(recovery, await _to_compensate(recovery), "15")
    allowance = await recovery.allowance(workspace=W1, person="U1")
    assert allowance.spent == Decimal(15)
    assert allowance.describe() == "You can give up to $25 here · $85 left this week"


async def test_nothing_needed_records_no_ledger_entry(store, recovery):
    case = await _to_compensate(recovery)
    case = await recovery.nothing_needed(workspace=W1, case_id=case.id, actor="U1")
    assert case.compensation.nothing and case.current_step is Step.FOLLOW_UP
    assert await store.ledger(workspace=W1) == []


async def test_spent_sums_only_the_employees_entries_inside_the_window(store, recovery, clock):
    since, until = Period.WEEK.window(at=MONDAY, tz=ZoneInfo("UTC"))
    assert (since, until) == (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    gifts = [  # (when, workspace, employee, amount, counts?)
        (since - timedelta(microseconds=1), W1, "U1", "10", False),  # last moment of the week before
        (since, W1, "U1", "5", True),  # the first moment is inside
        (since + timedelta(days=3), W1, "U1", "2.25", True),
        (until - timedelta(microseconds=1), W1, "U1", "7", True),
        (until, W1, "U1", "3", False),  # the end is outside
        (since + timedelta(days=1), W1, "U2", "20", False),  # someone else
        (since + timedelta(days=1), W2, "U1", "9", False),  # same person id, another workspace
    ]
    for when, workspace, employee, amount, _ in gifts:
        clock.at = when
        case = await _to_compensate(recovery, workspace=workspace, owner=employee)
        await _give(recovery, case, amount)
    expected = sum(Decimal(a) for _, w, e, a, counts in gifts if counts)
    assert expected == Decimal("14.25")
    assert await store.spent(workspace=W1, employee="U1", since=since, until=until) == expected
    assert await store.spent(workspace=W1, employee="U2", since=since, until=until) == Decimal(20)
    assert await store.spent(workspace=W1, employee="U3", since=since, until=until) == 0
    assert await store.spent(workspace=W1, employee="U1", since=since, until=since) == 0
    assert len(await store.ledger(workspace=W1)) == 6 and len(await store.ledger(workspace=W2)) == 1
    assert [e.at for e in await store.ledger(workspace=W1)] == [g[0] for g in gifts if g[1] == W1]


async def test_a_new_week_has_a_fresh_budget(recovery, clock):
    for _ in range(4):
        await _give(recovery, await _to_compensate(recovery), "25")
    case = await _to_compensate(recovery)
    with pytest.raises(OverAllowance):
        await _give(recovery, case, "1")
    clock.at = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)  # next Monday
    given, entry = await _give(recovery, case, "25")
    assert entry.amount == 25 and given.current_step is Step.FOLLOW_UP


async def test_concurrent_gifts_never_overspend_the_budget(store, recovery):
    await recovery.set_limit(workspace=W1, role="server", limit="25", budget="100/week")
    await recovery.assign_role(workspace=W1, person="U1", role="server")
    cases = [await _to_compensate(recovery) for _ in range(20)]
    results = await asyncio.gather(*(_give(recovery, case, "25") for case in cases), return_exceptions=True)
    given = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, OverAllowance)]
    assert len(given) == 4, results
    assert len(refused) == 16, results
    assert len(given) + len(refused) == len(results)
    ledger = await store.ledger(workspace=W1)
    assert len(ledger) == 4
    assert sum(e.amount for e in ledger) == Decimal(100)
    assert {e.role for e in ledger} == {"server"}
    assert sorted(e.case_id for e in ledger) == sorted(case.id for case, _ in given)
    for case in cases:
        stored = await store.get_case(workspace=W1, case_id=case.id)
        paid = case.id in {e.case_id for e in ledger}
        assert stored.current_step is (Step.FOLLOW_UP if paid else Step.COMPENSATE), case.id


# --- roles -------------------------------------------------------------------------------------

async def test_put_role_role_and_roles(store):
    server = Role(workspace=W1, name="server", limit=Decimal("25"), budget=Budget(Decimal("100"), Period.WEEK))
    lead = Role(workspace=W1, name="lead", limit=Decimal("75.50"), budget=None)
    other = Role(workspace=W2, name="server", limit=Decimal("5"), budget=Budget(Decimal("10"), Period.DAY))
    assert await store.role(workspace=W1, name="server") is None
    assert await store.roles(workspace=W1) == []
    for role in (server, lead, other):
        await store.put_role(role=role)
    assert await store.role(workspace=W1, name="server") == server
    assert await store.role(workspace=W2, name="server") == other
    assert await store.roles(workspace=W1) == [lead, server]  # by name
    changed = replace(server, limit=Decimal("30"), budget=Budget(Decimal("200"), Period.MONTH))
    await store.put_role(role=changed)
    assert await store.role(workspace=W1, name="server") == changed
    assert await store.roles(workspace=W1) == [lead, changed]


async def test_assign_and_role_of(store):
    assert await store.role_of(workspace=W1, person="U1") is None
    await store.assign(workspace=W1, person="U1", role="server")
    await store.assign(workspace=W2, person="U1", role="lead")
    assert await store.role_of(workspace=W1, person="U1") == "server"
    await store.assign(workspace=W1, person="U1", role="lead")
    assert await store.role_of(workspace=W1, person="U1") == "lead"
    assert await store.role_of(workspace=W2, person="U1") == "lead"
    assert await store.role_of(workspace=W1, person="U2") is None


async def test_recovery_roles_include_the_default_staff_role(store, recovery):
    roles = await recovery.roles(workspace=W1)
    assert [r.name for r in roles] == ["staff"]
    assert roles[0].limit == Decimal(25) and roles[0].budget == Budget(Decimal(100), Period.WEEK)
    assert await store.roles(workspace=W1) == []  # shown, not stored
    await recovery.set_limit(workspace=W1, role="server", limit="30", budget="150/week")
    await recovery.set_limit(workspace=W1, role="bar", limit="10", budget=None)
    assert [r.name for r in await recovery.roles(workspace=W1)] == ["bar", "server", "staff"]
    await recovery.set_limit(workspace=W1, role="staff", limit="5", budget="none")
    roles = {r.name: r for r in await recovery.roles(workspace=W1)}
    assert list(roles) == ["bar", "server", "staff"]
    assert roles["staff"].limit == Decimal(5) and roles["staff"].budget is None


async def test_set_limit_keeps_or_removes_the_budget(store, recovery):
    created = await recovery.set_limit(workspace=W1, role="Server", limit="25", budget="100/week")
    assert created == Role(workspace=W1, name="server", limit=Decimal(25), budget=Budget(Decimal(100), Period.WEEK))
    kept = await recovery.set_limit(workspace=W1, role="server", limit="40", budget=None)
    assert kept.limit == Decimal(40) and kept.budget == Budget(Decimal(100), Period.WEEK)
    assert await store.role(workspace=W1, name="server") == kept
    removed = await recovery.set_limit(workspace=W1, role="server", limit="40", budget="none")
    assert removed.budget is None
    assert await store.role(workspace=W1, name="server") == removed
    new_without = await recovery.set_limit(workspace=W1, role="host", limit="10", budget=None)
    assert new_without.budget is None
    staff = await recovery.set_limit(workspace=W1, role="staff", limit="20", budget=None)
    assert staff.budget == Budget(Decimal(100), Period.WEEK)  # the default role's budget is kept


@pytest.mark.parametrize("role, limit, budget", [
    ("Bad Name", "25", None), ("9lives", "25", None), ("server", "abc", None), ("server", "0", None),
    ("server", "25", "100"), ("server", "25", "100/year"), ("server", "25", "abc/week"),
])
async def test_set_limit_refuses_bad_input_and_stores_nothing(store, recovery, role, limit, budget):
    with pytest.raises(BadCommand):
        await recovery.set_limit(workspace=W1, role=role, limit=limit, budget=budget)
    assert await store.roles(workspace=W1) == []


async def test_assign_role(store, recovery):
    await recovery.set_limit(workspace=W1, role="lead", limit="75", budget="none")
    assert (await recovery.assign_role(workspace=W1, person="U1", role="Lead")).name == "lead"
    assert await store.role_of(workspace=W1, person="U1") == "lead"
    assert (await recovery.role_for(workspace=W1, person="U1")).limit == Decimal(75)
    assert (await recovery.assign_role(workspace=W1, person="U2", role="staff")).name == "staff"
    assert await store.role_of(workspace=W1, person="U2") == "staff"


async def test_assign_an_unknown_role_is_refused_and_assigns_nothing(store, recovery):
    with pytest.raises(UnknownRole) as refused:
        await recovery.assign_role(workspace=W1, person="U1", role="chef")
    assert "'chef'" in refused.value.sentence and "staff" in refused.value.sentence
    assert await store.role_of(workspace=W1, person="U1") is None
    await recovery.set_limit(workspace=W2, role="chef", limit="5", budget=None)  # another workspace's role
    with pytest.raises(UnknownRole):
        await recovery.assign_role(workspace=W1, person="U1", role="chef")
    assert await store.role_of(workspace=W1, person="U1") is None


async def test_gifts_use_the_assigned_role(store, recovery):
    await recovery.set_limit(workspace=W1, role="lead", limit="75", budget="none")
    await recovery.assign_role(workspace=W1, person="U1", role="lead")
    _, entry = await _give(recovery, await _to_compensate(recovery), "75")
    assert entry.role == "lead"
    case = await _to_compensate(recovery, owner="U2", name="Bo")  # unassigned: staff, $25
    with pytest.raises(OverAllowance):
        await _give(recovery, case, "75")


# --- workspace settings and idempotency --------------------------------------------------------

async def test_recovery_channel(recovery):
    assert await recovery.recovery_channel(workspace=W1) is None
    await recovery.set_recovery_channel(workspace=W1, channel="C1")
    await recovery.set_recovery_channel(workspace=W2, channel="C2")
    assert await recovery.recovery_channel(workspace=W1) == "C1"
    await recovery.set_recovery_channel(workspace=W1, channel="C3")
    assert await recovery.recovery_channel(workspace=W1) == "C3"
    assert await recovery.recovery_channel(workspace=W2) == "C2"


async def test_references_are_kept_per_workspace_and_key(store):
    reference = {"serviceUrl": "https://smba.example/", "conversation": {"id": "19:abc@thread.tacv2"}}
    await store.put_reference(workspace="T1", key="recovery_channel", value=reference)
    assert await store.reference(workspace="T1", key="recovery_channel") == reference
    assert await store.reference(workspace="T2", key="recovery_channel") is None
    assert await store.reference(workspace="T1", key="person:U1") is None
    changed = {**reference, "conversation": {"id": "19:def@thread.tacv2"}}
    await store.put_reference(workspace="T1", key="recovery_channel", value=changed)
    assert await store.reference(workspace="T1", key="recovery_channel") == changed


async def test_granted_admins_are_per_workspace(store):
    assert await store.granted_admins(workspace="T1") == set()
    await store.grant_admin(workspace="T1", person="U1")
    await store.grant_admin(workspace="T1", person="U1")
    await store.grant_admin(workspace="T1", person="U2")
    assert await store.granted_admins(workspace="T1") == {"U1", "U2"}
    assert await store.granted_admins(workspace="T2") == set()


async def test_first_time_within_the_window(recovery, clock):
    assert await recovery.first_time("slack:evt-1") is True
    assert await recovery.first_time("slack:evt-1") is False
    assert await recovery.first_time("slack:evt-2") is True
    clock.advance(REPEAT_WINDOW - timedelta(seconds=1))
    assert await recovery.first_time("slack:evt-1") is False  # a retry inside the window
    assert await recovery.first_time("slack:evt-3") is True


async def test_first_time_is_true_again_after_keep_has_passed(recovery, clock):
    assert await recovery.first_time("slack:evt-1") is True
    assert await recovery.first_time("slack:evt-1") is False
    clock.advance(REPEAT_WINDOW + timedelta(seconds=1))
    assert await recovery.first_time("slack:evt-1") is True


# --- TinyDB file: durability ---------------------------------------------------------------------

def _on_disk(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _table(data: dict, name: str) -> list[dict]:
    return list(data.get(name, {}).values())


async def test_data_survives_close_and_reopen(tmp_path, clock):
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    try:
        await recovery.set_limit(workspace=W1, role="server", limit="25", budget="100/week")
        await recovery.assign_role(workspace=W1, person="U1", role="server")
        await recovery.set_recovery_channel(workspace=W1, channel="C1")
        case = await _to_compensate(recovery)
        case, entry = await _give(recovery, case, "12.50")
        case = await recovery.remember_post(workspace=W1, case_id=case.id, card=MessageRef("C1", "1.1"))
        still_open = await _open(recovery, W2)
        assert await recovery.first_time("evt-1") is True
    finally:
        await store.close()

    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    try:
        assert await store.get_case(workspace=W1, case_id=case.id) == case
        assert await store.get_case(workspace=W2, case_id=still_open.id) == still_open
        assert await store.ledger(workspace=W1) == [entry]
        assert await store.role_of(workspace=W1, person="U1") == "server"
        assert (await store.role(workspace=W1, name="server")).budget == Budget(Decimal(100), Period.WEEK)
        assert await recovery.recovery_channel(workspace=W1) == "C1"
        assert await recovery.first_time("evt-1") is False
        assert (await _open(recovery, W1)).id == "R-1002"  # the counter survived too
        assert (await recovery.allowance(workspace=W1, person="U1")).spent == Decimal("12.50")
    finally:
        await store.close()


def _journal(path: Path) -> Path:
    return Path(str(path) + ".journal")


async def _reopened_copy(path: Path, into: Path) -> TinyStore:
    """Open a copy of the store's files, as a process starting after a crash would see them."""
    into.mkdir(exist_ok=True)
    for source in (path, _journal(path)):
        if source.exists():
            (into / source.name).write_bytes(source.read_bytes())
    return TinyStore(path=str(into / path.name))


async def test_every_operation_is_on_disk_before_it_returns(tmp_path, clock):
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    copies = iter(range(100))

    async def after_a_crash(check) -> None:
        copy = await _reopened_copy(path, tmp_path / f"copy{next(copies)}")
        try:
            await check(copy)
        finally:
            await copy.close()

    async def opened(copy):
        assert (await copy.get_case(workspace=W1, case_id="R-1001")).what_happened == "cold soup, table 4"

    async def given(copy):
        assert [e.amount for e in await copy.ledger(workspace=W1)] == [Decimal("5.00")]
        assert (await copy.get_case(workspace=W1, case_id="R-1001")).compensation.amount == Decimal("5.00")

    async def the_rest(copy):
        assert await copy.role_of(workspace=W1, person="U1") == "server"
        assert await copy.recovery_channel(workspace=W1) == "C1"
        assert await copy.first_time(key="evt-1", at=clock.now(), keep=timedelta(days=1)) is False
        assert (await copy.get_case(workspace=W1, case_id="R-1001")).is_closed

    try:
        await _open(recovery)
        await after_a_crash(opened)
        for number, step in enumerate((Step.APOLOGISE, Step.EMPATHISE, Step.FIX), start=1):
            await recovery.complete_step(workspace=W1, case_id="R-1001", actor="U1", step=step, note="n")

            async def stepped(copy, number=number):
                assert len((await copy.get_case(workspace=W1, case_id="R-1001")).done) == number
            await after_a_crash(stepped)
        await recovery.give(workspace=W1, case_id="R-1001", actor="U1", kind="voucher", amount_text="5")
        await after_a_crash(given)
        await recovery.set_limit(workspace=W1, role="server", limit="25", budget="100/week")
        await recovery.assign_role(workspace=W1, person="U1", role="server")
        await recovery.set_recovery_channel(workspace=W1, channel="C1")
        await recovery.first_time("evt-1")
        await recovery.follow_up(workspace=W1, case_id="R-1001", actor="U1", on=None)
        await after_a_crash(the_rest)
        for line in _journal(path).read_text(encoding="utf-8").splitlines():
            json.loads(line)  # one complete JSON line per operation
        assert list(tmp_path.glob("amends.json.*.tmp")) == []
    finally:
        await store.close()


async def test_a_clean_close_leaves_one_file_tinydb_itself_can_open(tmp_path, clock):
    from tinydb import TinyDB
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    case = await _to_compensate(recovery)
    await _give(recovery, case, "7")
    await store.close()
    assert len(_journal(path).read_bytes().splitlines()) == 1  # only its generation header is left
    with TinyDB(str(path)) as db:
        assert [doc["id"] for doc in db.table("cases").all()] == ["R-1001"]
        assert [doc["amount"] for doc in db.table("ledger").all()] == ["7.00"]


async def test_the_journal_is_folded_into_the_snapshot_as_it_grows(tmp_path, clock, monkeypatch):
    monkeypatch.setattr(tiny, "COMPACT_AFTER", 5)
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    try:
        await _open(recovery)
        await _open(recovery)  # 3 documents: two cases and the counter
        for number in range(10):  # writes that change documents without adding any
            await recovery.set_recovery_channel(workspace=W1, channel=f"C{number}")
        assert path.exists(), "the journal was never folded into the snapshot"
        assert len(_journal(path).read_text().splitlines()) < 12
        copy = await _reopened_copy(path, tmp_path / "copy")
        assert len(await copy.open_cases(workspace=W1, owner="U1")) == 2
        assert await copy.recovery_channel(workspace=W1) == "C9"
        await copy.close()
    finally:
        await store.close()


async def test_replaying_a_journal_over_a_snapshot_that_already_holds_it_is_harmless(tmp_path, clock):
    """A crash after the snapshot is renamed but before the journal is emptied leaves both."""
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    case = await _to_compensate(recovery)
    await _give(recovery, case, "7")
    journal = _journal(path).read_bytes()
    await store.close()  # folds the journal into the snapshot and empties it
    _journal(path).write_bytes(journal)  # ...as if the crash came just before emptying it
    again = TinyStore(path=str(path))
    try:
        assert [e.amount for e in await again.ledger(workspace=W1)] == [Decimal("7.00")]
        assert (await again.get_case(workspace=W1, case_id=case.id)).current_step is Step.FOLLOW_UP
        recovery = Recovery(store=again, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
        assert (await _open(recovery)).id == "R-1002"
    finally:
        await again.close()


async def test_a_torn_last_journal_line_is_dropped_and_a_damaged_middle_is_refused(tmp_path, clock):
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    await _open(recovery)
    await _open(recovery)
    lines = _journal(path).read_bytes().splitlines(keepends=True)
    await store.close()
    path.unlink()

    header, lines = lines[0], lines[1:]
    assert b"generation" in header
    _journal(path).write_bytes(header + lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-append
    torn = TinyStore(path=str(path))
    try:
        assert [c.id for c in await torn.open_cases(workspace=W1, owner="U1")] == ["R-1001"]
        assert _journal(path).read_bytes() == header + lines[0]  # the unfinished line is gone for good
    finally:
        await torn.close()

    path.unlink()
    _journal(path).write_bytes(header + lines[0][:20] + b"\n" + lines[1])
    with pytest.raises(ValueError, match="damaged at line 2"):
        TinyStore(path=str(path))


@pytest.mark.parametrize("how", ["nothing written", "half a line written"])
async def test_a_failed_write_raises_store_unavailable_and_keeps_the_old_state(tmp_path, clock, monkeypatch, how):
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    try:
        case = await _to_compensate(recovery)
        before_disk = _journal(path).read_bytes()
        attempts = []

        def disk_full(fd, line):
            attempts.append(line)
            if how == "half a line written":
                os.write(fd, line[: len(line) // 2])
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(tiny, "_append_line", disk_full)

        with pytest.raises(StoreUnavailable) as refused:
            await _give(recovery, case, "10")  # two tables in one write: ledger and cases
        assert "nothing was recorded" in refused.value.sentence
        with pytest.raises(StoreUnavailable):
            await _open(recovery)
        with pytest.raises(StoreUnavailable):
            await recovery.set_limit(workspace=W1, role="server", limit="25", budget=None)
        assert len(attempts) == 3  # the fault was really hit, once per operation

        # memory did not run ahead of the disk...
        assert await store.get_case(workspace=W1, case_id=case.id) == case
        assert await store.ledger(workspace=W1) == []
        assert await store.spent(workspace=W1, employee="U1", since=MONDAY - timedelta(days=1),
                                 until=MONDAY + timedelta(days=1)) == 0
        assert await store.get_case(workspace=W1, case_id="R-1002") is None
        assert await store.roles(workspace=W1) == []
        # ...and the disk holds the old state, with no half line left behind.
        assert _journal(path).read_bytes() == before_disk

        monkeypatch.undo()
        given, entry = await _give(recovery, case, "10")
        assert (await _open(recovery)).id == "R-1002"  # the failed open allocated no number
        assert await store.ledger(workspace=W1) == [entry]
        copy = await _reopened_copy(path, tmp_path / "copy")
        assert [e.case_id for e in await copy.ledger(workspace=W1)] == [case.id]
        await copy.close()
    finally:
        await store.close()

    reopened = TinyStore(path=str(path))
    try:
        assert await reopened.get_case(workspace=W1, case_id=case.id) == given
        assert list(tmp_path.glob("amends.json.*.tmp")) == []
    finally:
        await reopened.close()


async def test_a_failed_fold_keeps_everything_in_the_journal(tmp_path, clock, monkeypatch):
    def no_room(path, tables, placed=None):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tiny, "COMPACT_AFTER", 2)
    monkeypatch.setattr(tiny, "write_snapshot", no_room)
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    recovery = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    try:
        for _ in range(5):
            await _open(recovery)  # every write still succeeds
        # each open is one write: the case and its idle nudge (bot/followups.py) together
        assert not path.exists() and len(_journal(path).read_text().splitlines()) == 1 + 5
        copy = await _reopened_copy(path, tmp_path / "copy")
        assert len(await copy.open_cases(workspace=W1, owner="U1")) == 5
        await copy.close()
    finally:
        monkeypatch.undo()
        await store.close()


async def test_a_corrupt_file_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "amends.json"
    path.write_text('{"cases": {"1": {"id": "R-10', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        TinyStore(path=str(path))
    assert "not a valid Amends store" in str(error.value)


# --- TinyDB file: crash safety -------------------------------------------------------------------

CHILD = r"""
import asyncio, sys
from decimal import Decimal
from zoneinfo import ZoneInfo
from bot.checklist import Step
from bot.clock import SystemClock
from bot.recovery import Recovery
from bot.roles import Role
import bot.store.tiny as tiny
from bot.store.tiny import TinyStore

tiny.COMPACT_AFTER = 25  # fold often, so kills also land in the middle of a fold

def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

async def main(path, cap):
    store = TinyStore(path=path)
    rec = Recovery(store=store, clock=SystemClock(), currency="USD", tz=ZoneInfo("UTC"))
    await store.put_role(role=Role(workspace="W", name="crash", limit=Decimal(25), budget=None))
    await store.assign(workspace="W", person="U", role="crash")
    say("setup")
    ops = 0
    while ops < cap:
        # Long texts make the file, and so each write, big enough for kills to land mid-write.
        case = await rec.open_case(workspace="W", owner="U", owner_name="Una", what_happened="crash " * 300)
        say(f"open {case.id}")
        for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
            await rec.complete_step(workspace="W", case_id=case.id, actor="U", step=step, note="n")
            say(f"step {case.id} {step.value}")
        await rec.give(workspace="W", case_id=case.id, actor="U", kind="voucher", amount_text="1")
        say(f"give {case.id}")
        ops += 5
    say("cap")
    await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def _run_child_until_killed(path: Path, lines_wanted: int, grace: float, deadline: float) -> list[str]:
    """Start the child, read `lines_wanted` committed operations, let it run on for up to `grace`
    seconds (so the kill lands anywhere in an operation, mid-write included), SIGKILL it, and return
    every line it finished printing: each one is an operation it committed."""
    loop = asyncio.get_running_loop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), "1000", cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    try:
        while len(lines) < lines_wanted:
            left = deadline - loop.time()
            if left <= 0:
                pytest.fail(f"deadline passed after {len(lines)} lines")
            raw = await asyncio.wait_for(proc.stdout.readline(), timeout=left)
            if not raw:
                _, err = await asyncio.wait_for(proc.communicate(), timeout=5)
                pytest.fail(f"child ended after {len(lines)} lines: {err.decode(errors='replace')[-2000:]}")
            lines.append(raw.decode().strip())
        # Waiting on the process with a deadline: it must still be running when the deadline passes.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=grace)
    finally:
        if proc.returncode is None:
            proc.kill()
        rest, err = await asyncio.wait_for(proc.communicate(), timeout=5)
    assert proc.returncode == -9, err.decode(errors="replace")[-2000:]  # killed, not ended on its own
    text = rest.decode()
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]  # drop a half-printed line
    lines += complete.splitlines()
    assert "cap" not in lines, "the child reached its operation cap before being killed"
    return lines


async def test_a_killed_process_loses_no_committed_operation(tmp_path):
    path = tmp_path / "amends.json"
    rng = random.Random(1_000_003)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # a hard bound; the test normally takes about 2 seconds
    # Ten kill points: a writer that truncates and rewrites in place fails this test in practice
    # (checked by hand against such a writer); the atomic one must pass every time.
    reported: list[str] = []
    for round_ in range(10):
        lines = await _run_child_until_killed(path, 30 + rng.randrange(0, 25), rng.uniform(0, 0.05), deadline)
        assert lines[0] == "setup"
        reported += lines[1:]

        store = TinyStore(path=str(path))  # opens cleanly, whatever moment the kill hit
        try:
            assert list(tmp_path.glob("amends.json.*.tmp")) == [], "stale temp files survived reopening"
            assert {p.name for p in tmp_path.iterdir()} <= {path.name, _journal(path).name}
            ledger = await store.ledger(workspace="W")
            paid = [e.case_id for e in ledger]
            assert len(paid) == len(set(paid)), "a case was paid twice"
            for line in reported:
                kind, case_id, *rest = line.split()
                case = await store.get_case(workspace="W", case_id=case_id)
                assert case is not None, line
                if kind == "step":
                    assert Step(rest[0]) in case.done, line
                elif kind == "give":
                    assert case.compensation is not None and case.compensation.amount == 1, line
                    assert case_id in paid, line
            for case_id in paid:  # nothing in the ledger without its case having moved on
                assert (await store.get_case(workspace="W", case_id=case_id)).current_step is Step.FOLLOW_UP
        finally:
            await store.close()
        data = _on_disk(path)  # after a clean close the snapshot alone holds everything
        opened = [line.split()[1] for line in reported if line.startswith("open ")]
        ids = [doc["id"] for doc in _table(data, "cases")]
        assert len(ids) == len(set(ids)), "a case number was allocated twice"
        assert len(ids) >= len(opened), (round_, len(ids), len(opened))
        assert _table(data, "counters")[0]["next"] == 1001 + len(ids)
        assert len(_table(data, "ledger")) == len(paid)
    assert sum(line.startswith("give ") for line in reported) >= 5
