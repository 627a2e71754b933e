"""Learn, don't punish, in Microsoft Teams through /api/messages: the root cause on the follow-up card, a
returning guest pointed out under the case card, Recognise on the summary, the admin commands; and the
cards valid Adaptive Cards 1.5 that fit in an activity with the worst text."""

import json
from dataclasses import replace

import pytest

from bot.checklist import Step
from bot.learning import CHANGE_NOTE_MAX, DEFAULT_ROOT_CAUSES, PICK_A_CAUSE
from bot.recovery import NOTE_MAX
from cards import teams as cards
from cards.teams import CARD_TYPE
from handlers.teams.turns import card_activity
from tests.doubles.bf_connector import activity_problems, card_problems
from tests.doubles.teams_driver import (ADA, AMY, BEN, FLOOR, answer_of, open_case, personal_conversation,
                                        wait_answer, wait_step, walk_to)
from tests.test_teams_cards import TODAY, WORST, case_at, on_the_wire
from tests.test_teams_recovery import TENANT, set_recovery_channel, summaries

pytest_plugins = ("tests.doubles.teams_fixtures",)


async def to_follow_up(teams, connector, **where):
    await open_case(teams, **where)
    compensate = await walk_to(teams, Step.COMPENSATE)
    assert (await teams.execute(compensate, "nothing_needed"))[0] == 200
    return await wait_step(connector, Step.FOLLOW_UP)


async def test_closing_asks_what_caused_it_and_the_summary_shows_it(teams, connector, teams_bot):
    await set_recovery_channel(teams)
    follow_up = await to_follow_up(teams, connector, channel=FLOOR)
    [cause] = [e for e in follow_up.card["body"] if e.get("id") == "root_cause"]
    assert [c["value"] for c in cause["choices"]] == list(DEFAULT_ROOT_CAUSES) and cause["isRequired"]
    assert "value" not in cause  # nothing picked for them
    assert all(a.get("associatedInputs") != "none" for a in follow_up.card["actions"])  # sent with every button

    status, body = await teams.execute(follow_up, "follow_up_tomorrow", {"root_cause": ""})
    assert status == 200 and answer_of(body) == PICK_A_CAUSE
    assert not (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).is_closed
    status, body = await teams.execute(follow_up, "no_follow_up", {"root_cause": "the chef"})
    assert "isn't one of this workspace's causes" in answer_of(body)

    status, body = await teams.execute(follow_up, "no_follow_up", {"root_cause": "billing",
                                                                   "change_note": "print the bill before asking"})
    assert status == 200 and body["type"] == CARD_TYPE and "billing" in str(body["value"])
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.is_closed and (case.root_cause, case.change_note) == ("billing", "print the bill before asking")
    [summary] = summaries(connector)
    assert "billing" in summary.shown and "print the bill before asking" in summary.shown
    assert [a["verb"] for a in summary.card["actions"]] == ["recognise"]


async def test_someone_elses_close_is_refused_before_the_cause(teams, connector, teams_bot):
    follow_up = await to_follow_up(teams, connector, channel=FLOOR)
    status, body = await teams.execute(follow_up, "no_follow_up", {"root_cause": ""}, user=BEN)
    assert "Amy Baker's case (R-1001)" in answer_of(body)


async def test_a_manager_recognises_a_summary_once_and_the_owner_hears_it(teams, connector, teams_bot):
    assert (await teams.post(teams.installed(personal=AMY)))[0] == 201  # Amy's chat with Amends, kept
    await set_recovery_channel(teams)
    follow_up = await to_follow_up(teams, connector, channel=FLOOR)
    assert (await teams.execute(follow_up, "no_follow_up"))[0] == 200  # the driver picks the first cause
    [summary] = summaries(connector)

    status, body = await teams.execute(summary, "recognise", user=BEN)
    assert answer_of(body) == "Only managers can recognise a recovery; nothing changed."
    status, body = await teams.execute(summary, "recognise", user=ADA)  # an Amends admin manages
    assert status == 200 and body["type"] == CARD_TYPE and "Recognised by " in str(body["value"])
    assert "Ada Okafor" in str(body["value"])
    [updated] = connector.updates(summary.id)  # everyone sees it
    assert "Ada Okafor" in updated.shown
    told = await connector.wait_for(lambda c: c.method == "POST" and c.conversation == personal_conversation(AMY)
                                    and "recognised your recovery" in c.shown)
    assert "Ada Okafor" in told[0].shown
    status, body = await teams.execute(summary, "recognise", user=ADA)
    assert answer_of(body) == "You already recognised R-1001; nothing changed."
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).recognised_by == (ADA.aad,)


async def test_a_returning_guest_is_pointed_out_under_the_case_card(teams, connector, teams_bot):
    for n, customer in enumerate(("Room 212", "room 212"), start=1):
        assert (await teams.say("recover"))[0] == 201
        form = await wait_answer(connector, "New recovery", count=n)
        status, _ = await teams.execute(form, "new_case", {"what": "room not cleaned", "customer": customer})
        assert status == 200
        await wait_step(connector, Step.APOLOGISE, case_id=f"R-100{n}")
    [note] = [c for c in connector.posts() if "recovery for this guest" in c.shown]
    assert "2nd recovery for this guest in 90 days (R-1001)" in note.shown
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1002")
    assert note.activity_id == case.card.id  # under the second case's card


async def test_admins_set_the_causes_and_the_retention(teams, connector, teams_bot):
    await teams.say("recover admin causes food, other", user=BEN)
    await wait_answer(connector, "Only Amends admins")
    await teams.say("recover admin causes food, front desk, other", user=ADA)
    await wait_answer(connector, "Saved. Closing a case now asks what caused it: food, front desk, other.")
    await teams.say("recover admin retention 0", user=ADA)
    await wait_answer(connector, "between 1 and 3650 days")
    await teams.say("recover admin retention 180", user=ADA)
    await wait_answer(connector, "kept 180 day(s)")
    follow_up = await to_follow_up(teams, connector)
    [cause] = [e for e in follow_up.card["body"] if e.get("id") == "root_cause"]
    assert [c["value"] for c in cause["choices"]] == ["food", "front desk", "other"]


def learning_cards(**text) -> dict[str, tuple[str, dict]]:
    follow_up = case_at(Step.FOLLOW_UP, **text)
    closed = replace(case_at(None, **text), root_cause="facilities", change_note=text.get("text", "fix the heater"),
                     recognised_by=tuple(f"aad-{n}" for n in range(30)))
    return {
        "follow-up with causes": cards.step_card(follow_up, Step.FOLLOW_UP, note_max=NOTE_MAX, today=TODAY,
                                                 causes=tuple(f"cause {n}" for n in range(25))),
        "follow-up done": cards.step_card(closed, Step.FOLLOW_UP, note_max=NOTE_MAX),
        "summary, recognised": cards.summary(closed, recognised=[text.get("name", "Max")] * 30),
        "summary, recognised, no names": cards.summary(closed),
        "repeat": cards.repeat_card(closed, "3rd recovery for this guest in 90 days (R-1001, R-1017)."),
        "recognised note": cards.recognised_note(closed, by=text.get("name", "Max")),
    }


@pytest.mark.parametrize("name", list(learning_cards()))
def test_the_cards_are_valid_and_fit_with_the_worst_text(name):
    for built in (learning_cards(), learning_cards(text=WORST, note=WORST, customer=WORST, name=WORST)):
        text, card = built[name]
        assert card_problems(card) == []
        size = on_the_wire(text, card)
        assert size <= cards.ACTIVITY_MAX, f"{size} bytes"
        assert activity_problems(json.loads(json.dumps(card_activity(text, card).serialize())), size) == []


def test_the_change_note_is_limited_in_the_card():
    _, card = cards.step_card(case_at(Step.FOLLOW_UP), Step.FOLLOW_UP, note_max=NOTE_MAX, today=TODAY,
                              causes=("food",))
    [change] = [e for e in card["body"] if e.get("id") == "change_note"]
    assert change["maxLength"] == CHANGE_NOTE_MAX and not change.get("isRequired")


async def test_a_follow_up_card_posted_before_causes_were_asked_is_redrawn_with_them(teams, connector, teams_bot):
    import copy
    follow_up = await to_follow_up(teams, connector)
    old = copy.deepcopy(follow_up)  # as it was drawn before closing asked for a cause
    content = old.card
    content["body"] = [e for e in content["body"] if e.get("id") not in ("root_cause", "change_note")]
    status, body = await teams.execute(old, "follow_up_tomorrow")
    assert answer_of(body) == PICK_A_CAUSE
    [redrawn] = connector.updates(follow_up.id)
    assert any(e.get("id") == "root_cause" for e in redrawn.card["body"])
    assert not (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).is_closed


async def test_a_returning_guest_is_pointed_out_on_a_case_opened_from_a_message(teams, connector, teams_bot):
    from tests.test_teams_extension import THREAD, filled, invoke, the_form
    for _ in range(2):
        await teams_bot.recovery.open_case(workspace=TENANT, owner="aad-zoe", owner_name="Zoe",
                                           what_happened="earlier", customer="Table 9")
    status, body = await teams.post(invoke(teams, "teams_compose_fetch_task.json"))
    form = the_form(body)
    status, body = await teams.post(invoke(teams, "teams_compose_submit_action.json",
                                           data=filled(form, customer="table 9")))
    assert (status, body) == (200, {})
    await wait_step(connector, Step.APOLOGISE, case_id="R-1003")
    [card] = [c for c in connector.posts(THREAD) if "R-1003 · open" in c.shown]
    [note] = [c for c in connector.posts() if "recovery for this guest" in c.shown]
    assert "3rd recovery for this guest in 90 days (R-1001, R-1002)" in note.shown
    assert note.activity_id == card.id  # under the new case's card


async def test_a_follow_up_card_offering_causes_an_admin_since_removed_is_redrawn_with_the_new_list(
        teams, connector, teams_bot):
    follow_up = await to_follow_up(teams, connector)
    await teams.say("recover admin causes kitchen, front desk, other", user=ADA)
    await wait_answer(connector, "Saved. Closing a case now asks what caused it")
    status, body = await teams.execute(follow_up, "follow_up_tomorrow", {"root_cause": "food"})
    assert status == 200 and "isn't one of this workspace's causes (kitchen, front desk, other)" in answer_of(body)
    [redrawn] = connector.updates(follow_up.id)
    [cause] = [e for e in redrawn.card["body"] if e.get("id") == "root_cause"]
    assert [c["value"] for c in cause["choices"]] == ["kitchen", "front desk", "other"]
    assert not (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).is_closed
    status, body = await teams.execute(follow_up, "no_follow_up", {"root_cause": "front desk"})
    assert status == 200 and (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).root_cause == \
        "front desk"
