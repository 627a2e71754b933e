"""Top-ups in the domain (bot/topups.py), on every store backend: asking over the allowance, a manager's
one decision, and every bad input refused with a sentence and nothing changed."""

import asyncio
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.catalogue import CatalogueItem, put_item
from bot.checklist import Step
from bot.errors import InvalidAmount, NotYourCase, Refusal, StepNotOpen
from bot.managers import Managers
from bot.recovery import Recovery
from bot.topups import AlreadyDecided, NoNeedToAsk, NotManager, TopUps
from tests.test_store import W1, FakeClock, _to_compensate, store  # noqa: F401  (store: the fixture)


@pytest.fixture
def recovery(store):  # noqa: F811
    return Recovery(store=store, clock=FakeClock(), currency="USD", tz=ZoneInfo("UTC"))


@pytest.fixture
def topups(recovery):
    return TopUps(recovery=recovery)


async def _ask(topups, case, amount="40", reason="anniversary dinner ruined", kind="voucher", actor=None):
    return await topups.request(workspace=W1, case_id=case.id, actor=actor or case.owner, kind=kind,
                                amount_text=amount, reason=reason)


async def _approve(topups, case, manager="UBOSS", is_admin=True):
    return await topups.approve(workspace=W1, case_id=case.id, manager=manager, manager_name="Ben",
                                is_admin=is_admin)


async def test_an_approval_records_the_amount_asked_with_the_approver_and_leaves_the_limits(recovery, topups):
    case = await _to_compensate(recovery)
    asked = await _ask(topups, case)
    assert (asked.top_up.amount, asked.top_up.status, asked.top_up.reason) == (Decimal("40"), "pending",
                                                                              "anniversary dinner ruined")
    assert asked.current_step == Step.COMPENSATE and await recovery.store.ledger(workspace=W1) == []

    approved, entry = await _approve(topups, case)
    assert approved.current_step == Step.FOLLOW_UP
    assert (approved.compensation.kind, approved.compensation.amount) == ("voucher", Decimal("40"))
    assert (approved.top_up.status, approved.top_up.decided_by, approved.top_up.decided_by_name) == (
        "approved", "UBOSS", "Ben")
    [stored] = await recovery.store.ledger(workspace=W1)
    assert stored == entry and (entry.employee, entry.amount, entry.approved_by, entry.role) == (
        "U1", Decimal("40"), "UBOSS", "staff")
    reloaded = await recovery.case(workspace=W1, case_id=case.id)
    assert reloaded.top_up.status == "approved" and reloaded.compensation == approved.compensation
    allowance = await recovery.allowance(workspace=W1, person="U1")
    assert allowance.role.limit == Decimal(25)  # a one-off raise: the role is as it was


async def test_an_approval_is_recorded_even_past_the_period_budget(recovery, topups):
    for _ in range(3):  # $75 of the $100 weekly budget given already
        done = await _to_compensate(recovery)
        await recovery.give(workspace=W1, case_id=done.id, actor="U1", kind="voucher", amount_text="25")
    case = await _to_compensate(recovery)
    await _ask(topups, case, amount="60")
    _, entry = await _approve(topups, case)
    assert entry.amount == Decimal("60") and entry.approved_by
    # The manager's call for that one case: the employee's own week is untouched ($100 − $75 of their own).
    assert (await recovery.allowance(workspace=W1, person="U1")).left == Decimal("25")


@pytest.mark.parametrize("amount, refusal, words", [
    ("20", NoNeedToAsk, "You can give $20 yourself, no need to ask"),
    ("25", NoNeedToAsk, "no need to ask"),
    ("lots", InvalidAmount, "isn't an amount"),
    ("-40", InvalidAmount, "can't be negative"),
    ("", InvalidAmount, "Type an amount"),
])
async def test_a_request_that_is_within_the_allowance_or_not_an_amount_is_refused(recovery, topups, amount, refusal,
                                                                                   words):
    case = await _to_compensate(recovery)
    with pytest.raises(refusal) as refused:
        await _ask(topups, case, amount=amount)
    assert words in refused.value.sentence
    assert (await recovery.case(workspace=W1, case_id=case.id)).top_up is None


async def test_a_request_needs_a_reason_the_owner_and_the_compensate_step(recovery, topups):
    case = await _to_compensate(recovery)
    with pytest.raises(Refusal, match="Say why \\$40 is needed"):
        await _ask(topups, case, reason="   ")
    with pytest.raises(NotYourCase, match="Amy's case"):
        await _ask(topups, case, actor="U2")
    with pytest.raises(Refusal, match="Pick one of"):
        await _ask(topups, case, kind="a pony")
    early = await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="cold soup")
    with pytest.raises(StepNotOpen):
        await _ask(topups, early)
    assert (await recovery.case(workspace=W1, case_id=case.id)).top_up is None


async def test_a_second_request_while_one_waits_is_refused(recovery, topups):
    from bot.cases import MessageRef
    case = await _to_compensate(recovery)
    await _ask(topups, case)
    await topups.posted(workspace=W1, case_id=case.id, post=MessageRef(channel="CREC", id="1.2"))
    with pytest.raises(Refusal, match="You already asked for \\$40"):
        await _ask(topups, case, amount="60")
    assert (await recovery.case(workspace=W1, case_id=case.id)).top_up.amount == Decimal("40")


async def test_only_a_manager_decides_and_never_their_own_request(recovery, topups):
    case = await _to_compensate(recovery)
    await _ask(topups, case)
    with pytest.raises(NotManager, match="Only managers"):
        await _approve(topups, case, manager="U2", is_admin=False)
    with pytest.raises(NotManager, match="Only managers"):
        await topups.deny(workspace=W1, case_id=case.id, manager="U2", manager_name="Ben", is_admin=False)
    with pytest.raises(NotManager, match="your own request"):
        await _approve(topups, case, manager="U1", is_admin=True)
    assert (await recovery.case(workspace=W1, case_id=case.id)).top_up.status == "pending"
    assert await recovery.store.ledger(workspace=W1) == []

    # someone in a role an admin made managing decides without being an admin
    await recovery.set_limit(workspace=W1, role="shift-lead", limit="50", budget=None)
    await recovery.assign_role(workspace=W1, person="U3", role="shift-lead")
    await Managers(recovery=recovery).set_managing(workspace=W1, role="shift-lead", managing=True)
    _, entry = await _approve(topups, case, manager="U3", is_admin=False)
    assert entry.approved_by == "U3"


async def test_after_a_deny_nothing_more_is_decided_and_the_person_gives_within_their_allowance(recovery, topups):
    case = await _to_compensate(recovery)
    await _ask(topups, case)
    denied = await topups.deny(workspace=W1, case_id=case.id, manager="UBOSS", manager_name="Ben", is_admin=True)
    assert (denied.top_up.status, denied.current_step) == ("denied", Step.COMPENSATE)
    with pytest.raises(AlreadyDecided, match="You already denied \\$40"):
        await _approve(topups, case)
    with pytest.raises(AlreadyDecided, match="Ben already denied"):
        await _approve(topups, case, manager="UADMIN")
    with pytest.raises(Refusal, match="Ben said no to \\$40"):
        await _ask(topups, case, amount="30")
    assert await recovery.store.ledger(workspace=W1) == []
    given, _ = await recovery.give(workspace=W1, case_id=case.id, actor="U1", kind="voucher", amount_text="25")
    assert given.current_step == Step.FOLLOW_UP and given.top_up.status == "denied"


async def test_a_double_click_on_approve_records_one_compensation(recovery, topups):
    case = await _to_compensate(recovery)
    await _ask(topups, case)
    outcomes = await asyncio.gather(_approve(topups, case), _approve(topups, case, manager="UADMIN"),
                                    return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyDecided", "tuple"]
    assert len(await recovery.store.ledger(workspace=W1)) == 1
    with pytest.raises(AlreadyDecided, match="already approved"):
        await topups.deny(workspace=W1, case_id=case.id, manager="UBOSS", manager_name="Ben", is_admin=True)


async def test_a_request_the_person_settled_meanwhile_is_not_decided(recovery, topups):
    case = await _to_compensate(recovery)
    await _ask(topups, case)
    await recovery.nothing_needed(workspace=W1, case_id=case.id, actor="U1")
    with pytest.raises(AlreadyDecided, match="already settled"):
        await _approve(topups, case)
    assert await recovery.store.ledger(workspace=W1) == []


async def test_a_percent_item_asks_for_its_share_of_the_bill(recovery, topups):
    await put_item(recovery.store, W1, CatalogueItem("30% off the bill", percent=Decimal(30)), currency="USD")
    case = await _to_compensate(recovery)
    asked = await _ask(topups, case, amount="150", kind="30% off the bill")
    assert asked.top_up.amount == Decimal("45.00")
    _, entry = await _approve(topups, case)
    assert (entry.kind, entry.amount) == ("30% off the bill", Decimal("45.00"))


async def test_a_request_that_never_reached_a_manager_can_be_asked_again(recovery, topups):
    """A restart (or a refused post) between asking and posting leaves a request no manager sees: asking again
    replaces it, instead of "You already asked" forever. Once posted, a second request is refused."""
    from bot.cases import MessageRef
    case = await _to_compensate(recovery)
    await _ask(topups, case)
    again = await _ask(topups, case, amount="35")
    assert (again.top_up.amount, again.top_up.status) == (Decimal("35"), "pending")
    await topups.posted(workspace=W1, case_id=case.id, post=MessageRef(channel="CREC", id="1.2"))
    with pytest.raises(Refusal, match="You already asked for \\$35"):
        await _ask(topups, case, amount="60")
    assert (await recovery.case(workspace=W1, case_id=case.id)).top_up.amount == Decimal("35")
