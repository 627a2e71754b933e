"""Learn, don't punish (bot/learning.py): root causes on closing, returning guests, recognitions, and the
admin commands that set the causes and the retention. Domain only; the platforms are in
tests/test_slack_learning.py and tests/test_teams_learning.py."""

from dataclasses import replace
from datetime import timedelta

import pytest

from bot import commands, learning
from bot.checklist import Step
from bot.errors import BadCommand, NotYourCase, Refusal, StepNotOpen
from tests.test_store import MONDAY, W1, W2, store, clock, recovery  # noqa: F401 — every backend

DAY = timedelta(days=1)


async def to_follow_up(recovery, *, workspace=W1, owner="U1", customer=""):
    case = await recovery.open_case(workspace=workspace, owner=owner, owner_name="Amy", what_happened="cold soup",
                                    customer=customer)
    for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
        await recovery.complete_step(workspace=workspace, case_id=case.id, actor=owner, step=step)
    return await recovery.nothing_needed(workspace=workspace, case_id=case.id, actor=owner)


# --- root causes ------------------------------------------------------------------------------

async def test_closing_records_the_cause_and_what_will_change(recovery):
    case = await to_follow_up(recovery)
    closed = await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause=" Food ",
                                      change_note="  check the soup's\ntemperature ")
    assert closed.is_closed and closed.root_cause == "food" and closed.change_note == "check the soup's temperature"
    assert (await recovery.case(workspace=W1, case_id=case.id)).root_cause == "food"


@pytest.mark.parametrize("cause, sentence", [
    ("", learning.PICK_A_CAUSE),
    ("   ", learning.PICK_A_CAUSE),
    ("the chef", "“the chef” isn't one of this workspace's causes"),
])
async def test_a_missing_or_unknown_cause_is_refused_and_nothing_changes(recovery, cause, sentence):
    case = await to_follow_up(recovery)
    with pytest.raises(Refusal) as refused:
        await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause=cause)
    assert refused.value.sentence.startswith(sentence)
    assert await recovery.case(workspace=W1, case_id=case.id) == case


async def test_a_change_note_too_long_is_refused(recovery):
    case = await to_follow_up(recovery)
    with pytest.raises(Refusal, match="what we'll change"):
        await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause="food",
                                 change_note="x" * (learning.CHANGE_NOTE_MAX + 1))
    assert not (await recovery.case(workspace=W1, case_id=case.id)).is_closed


async def test_whose_case_and_which_step_are_said_before_the_cause(recovery):
    case = await to_follow_up(recovery)
    with pytest.raises(NotYourCase):
        await recovery.follow_up(workspace=W1, case_id=case.id, actor="U2", on=None, root_cause="")
    await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause="wait")
    with pytest.raises(StepNotOpen, match="already closed"):
        await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause="")


async def test_an_admin_sets_the_workspaces_causes(recovery, store):
    assert await learning.root_causes(store, workspace=W1) == learning.DEFAULT_ROOT_CAUSES
    kept = await learning.set_root_causes(store, workspace=W1, text="Food, front  desk,wait ,other")
    assert kept == ("food", "front desk", "wait", "other")
    assert await learning.root_causes(store, workspace=W2) == learning.DEFAULT_ROOT_CAUSES  # per workspace
    case = await to_follow_up(recovery)
    with pytest.raises(Refusal, match="billing"):  # no longer on the list
        await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause="billing")
    closed = await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause="Front Desk")
    assert closed.root_cause == "front desk"


@pytest.mark.parametrize("text, sentence", [
    ("", "List the causes"),
    (" , ,", "List the causes"),
    ("food, food", "food is listed twice"),
    ("food, <!channel>", "can't be a cause"),
    ("food, " + "x" * 41, "can't be a cause"),
    (", ".join(f"c{n}" for n in range(26)), "25 causes or fewer"),
])
async def test_a_bad_list_of_causes_is_refused_and_nothing_changes(store, text, sentence):
    await learning.set_root_causes(store, workspace=W1, text="food, other")
    with pytest.raises(BadCommand, match=sentence):
        await learning.set_root_causes(store, workspace=W1, text=text)
    assert await learning.root_causes(store, workspace=W1) == ("food", "other")


def test_the_admin_commands_parse():
    assert commands.parse("admin causes food, wait,  staff") == commands.SetRootCauses(causes="food, wait, staff")
    assert commands.parse("admin retention 30") == commands.SetRetention(days="30")
    with pytest.raises(BadCommand, match="needs the causes"):
        commands.parse("admin causes")
    with pytest.raises(BadCommand, match="needs a number of days"):
        commands.parse("admin retention 30 days")
    usage = commands.help_text(admin_only=True)
    assert "admin causes" in usage and "admin retention <days>" in usage


# --- repeat customers -------------------------------------------------------------------------

def test_ordinals():
    assert [learning.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 103, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "103rd", "111th"]


async def test_a_returning_guest_is_pointed_out(recovery, clock, store):
    old = await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="a", customer="table 4")
    clock.at = MONDAY + 10 * DAY
    first = await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="b", customer="Table 4")
    await recovery.open_case(workspace=W2, owner="U1", owner_name="Amy", what_happened="c", customer="table 4")
    await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="d", customer="table 5")
    clock.at = MONDAY + 95 * DAY  # `old` is now more than 90 days back
    second = await recovery.open_case(workspace=W1, owner="U2", owner_name="Ben", what_happened="e",
                                      customer=" table  4 ")
    third = await recovery.open_case(workspace=W1, owner="U2", owner_name="Ben", what_happened="f", customer="TABLE 4")
    assert await learning.repeat_customer(store, old) is None
    assert await learning.repeat_customer(store, first) == (
        f"2nd recovery for this guest in 90 days ({old.id}). Consider going further this time.")
    assert await learning.repeat_customer(store, second) == (
        f"2nd recovery for this guest in 90 days ({first.id}). Consider going further this time.")
    assert (await learning.repeat_customer(store, third)).startswith(
        f"3rd recovery for this guest in 90 days ({first.id}, {second.id})")


async def test_no_customer_is_never_a_repeat(recovery, store):
    await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="a")
    again = await recovery.open_case(workspace=W1, owner="U1", owner_name="Amy", what_happened="b")
    assert await learning.repeat_customer(store, again) is None


def test_a_long_history_lists_the_latest():
    case = learning.Case(workspace=W1, id="R-1100", owner="U1", owner_name="Amy", what_happened="x", customer="c",
                         opened_at=MONDAY)
    earlier = [replace(case, id=f"R-{1000 + n}", opened_at=MONDAY - n * DAY) for n in range(8, 0, -1)]
    assert learning.repeat_sentence(case, earlier).startswith(
        "9th recovery for this guest in 90 days (…, R-1005, R-1004, R-1003, R-1002, R-1001)")


# --- recognition ------------------------------------------------------------------------------

async def test_a_manager_recognises_a_closed_case_once(recovery, store):
    case = await to_follow_up(recovery)
    with pytest.raises(StepNotOpen, match="still open"):
        await learning.record_recognition(store, workspace=W1, case_id=case.id, manager="UMAX", name="Max")
    await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None, root_cause="food")
    once = await learning.record_recognition(store, workspace=W1, case_id=case.id, manager="UMAX", name="Max")
    assert once.recognised_by == ("UMAX",)
    with pytest.raises(StepNotOpen, match="already recognised"):
        await learning.record_recognition(store, workspace=W1, case_id=case.id, manager="UMAX", name="Max")
    with pytest.raises(NotYourCase, match="your own case"):
        await learning.record_recognition(store, workspace=W1, case_id=case.id, manager="U1", name="Amy")
    assert await recovery.case(workspace=W1, case_id=case.id) == once
    both = await learning.record_recognition(store, workspace=W1, case_id=case.id, manager="UZOE", name="Zoe")
    assert both.recognised_by == ("UMAX", "UZOE")
    assert await learning.recogniser_names(store, both) == ["Max", "Zoe"]


async def test_recognitions_are_counted_per_owner_for_the_digest(recovery, store):
    cases = []
    for owner in ("U1", "U1", "U2", "U3"):
        case = await to_follow_up(recovery, owner=owner)
        cases.append(await recovery.follow_up(workspace=W1, case_id=case.id, actor=owner, on=None,
                                              root_cause="other"))
    for case, managers in zip(cases, (["UMAX"], ["UMAX", "UZOE"], ["UZOE"], [])):
        for manager in managers:
            await learning.record_recognition(store, workspace=W1, case_id=case.id, manager=manager, name=manager)
    window = await store.cases(workspace=W1, since=MONDAY - DAY, until=MONDAY + DAY)
    assert learning.recognitions(window) == {"U1": 3, "U2": 1}
    assert learning.recognitions([]) == {}
