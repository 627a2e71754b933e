""""Recover from this" on a Teams message (issue 7, part 4): the message extension's action command.

The invokes are the recorded shapes of Teams' docs (tests/fixtures/teams_compose_*.json: a message in a
channel's thread, with its HTML body, a mention and linkToMessage); the dialog's card is checked as
Teams would check it, and the case card goes to the fake connector like every other post.
"""

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from bot.checklist import Step
from cards.ids import Field
from handlers.teams.extension import COMMAND_ID, TITLE
from tests.doubles.bf_connector import card_problems
from tests.doubles.teams_driver import AMY, BEN, FLOOR, TENANT, fixture, wait_step

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

ROOT = Path(__file__).resolve().parent.parent
THREAD = f"{FLOOR.id};messageid=1764071990000"  # the message's thread, where the case card goes
LINK = "https://teams.microsoft.com/l/message/19:8d2f0a6c4b1e4f7a9c3d5e7f9a1b3c5d@thread.tacv2/1764071990000"
WHAT = ("From the front desk: the guest at table 9 says the steak was cold & they waited 50 min.\n"
        "Can @Ben Carter call them back?")


def invoke(teams, name: str, *, user=AMY, **value) -> dict:
    activity = fixture(name)
    teams._from(activity, user)
    activity["value"].update(value)
    return activity


def the_form(body: dict) -> dict:
    """The Adaptive Card in a dialog answer, once checked as Teams checks cards."""
    assert body["task"]["type"] == "continue" and body["task"]["value"]["title"] == TITLE
    attachment = body["task"]["value"]["card"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card_problems(attachment["content"]) == []
    return attachment["content"]


def form_data(form: dict) -> dict:
    """What the form's button carries, without its one-time id."""
    return {k: v for k, v in form["actions"][0]["data"].items() if k != "form"}


def filled(form: dict, **typed) -> dict:
    """What Teams sends as value.data when the form's Open case is pressed: its data, and each input."""
    [button] = form["actions"]
    data = dict(button["data"])
    for element in form["body"]:
        if element["type"].startswith("Input."):
            data[element["id"]] = typed.get(element["id"], element.get("value", ""))
    return data


async def test_recover_from_a_message_opens_a_case_in_its_thread_linking_back(teams, connector, teams_bot):
    status, body = await teams.post(invoke(teams, "teams_compose_fetch_task.json"))
    assert status == 200
    form = the_form(body)
    what = next(e for e in form["body"] if e.get("id") == Field.WHAT)
    assert what["value"] == WHAT  # the HTML body as people read it: mention, entity and line break undone
    assert form_data(form) == {"source": LINK}
    assert connector.calls == []  # a dialog only: nothing is posted, nothing opened
    assert await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad) == []

    status, body = await teams.post(invoke(teams, "teams_compose_submit_action.json",
                                           data=filled(form, customer="table 9")))
    assert (status, body) == (200, {})  # the dialog closes
    apologise = await wait_step(connector, Step.APOLOGISE)
    [card] = [c for c in connector.posts(THREAD) if "R-1001 · open" in c.shown]
    assert card.activity_id is None and apologise.activity_id == card.id
    assert "Amy Baker" in card.shown and "Take it" not in card.shown
    assert {"type": "Action.OpenUrl", "title": "Original message", "url": LINK} in card.card["actions"]
    [case] = await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)
    assert (case.what_happened, case.customer, case.source) == (" ".join(WHAT.split()), "table 9", LINK)
    assert (case.card.channel, case.card.id) == (THREAD, card.id)
    assert (await teams.execute(apologise, "step_done"))[0] == 200  # an ordinary case from here on
    await wait_step(connector, Step.EMPATHISE)


async def test_the_recorded_submit_and_a_resent_one_open_one_case(teams, connector, teams_bot):
    sent = invoke(teams, "teams_compose_submit_action.json")
    assert await teams.post(sent) == (200, {})
    await wait_step(connector, Step.APOLOGISE)
    assert await teams.post(sent) == (200, {})  # Teams delivers the same invoke again: the dialog just closes
    assert [c.id for c in await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)] == ["R-1001"]


async def test_a_fetch_task_delivered_again_opens_the_same_form(teams):
    activity = invoke(teams, "teams_compose_fetch_task.json")
    first, again = await teams.post(activity), await teams.post(activity)
    assert first == again and first[0] == 200 and the_form(first[1])


async def test_a_message_with_no_text_or_link_still_opens_the_form(teams):
    activity = invoke(teams, "teams_compose_fetch_task.json", user=BEN)
    activity["value"]["messagePayload"] = {"id": "1", "body": {"contentType": "html", "content": "<p></p>"}}
    form = the_form((await teams.post(activity))[1])
    assert next(e for e in form["body"] if e.get("id") == Field.WHAT)["value"] == ""
    assert form_data(form) == {}


@pytest.mark.parametrize("data, kept", [
    ({"what": "   ", "customer": "table 9", "source": LINK}, {"source": LINK}),  # the link survives the retry
    ({"customer": "table 9"}, {}),
    ("not an object", {}),
])
async def test_a_refused_submit_keeps_the_dialog_open_and_opens_nothing(teams, connector, teams_bot, data, kept):
    status, body = await teams.post(invoke(teams, "teams_compose_submit_action.json", data=data))
    form = the_form(body)
    assert status == 200 and "Say what happened" in json.dumps(form)
    assert form_data(form) == kept
    assert connector.calls == [] and await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad) == []


async def test_a_link_that_is_not_one_teams_gives_never_reaches_the_card(teams, connector, teams_bot):
    data = {"what": "cold soup", "customer": "", "source": "javascript:alert(1)"}
    assert await teams.post(invoke(teams, "teams_compose_submit_action.json", data=data)) == (200, {})
    await wait_step(connector, Step.APOLOGISE)
    [case] = await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)
    assert case.source == "" and "javascript" not in json.dumps([c.body for c in connector.calls])


async def test_where_amends_cannot_post_the_case_is_kept_and_the_person_told(teams, connector, teams_bot):
    connector.fail_next(THREAD, status=403, code="BotNotInConversationRoster")
    status, body = await teams.post(invoke(teams, "teams_compose_submit_action.json"))
    assert status == 200 and body["task"]["type"] == "message"
    assert body["task"]["value"] == ("R-1001 is saved, but I can't post its card in this conversation: "
                                     "add Amends here first.")
    assert [c.id for c in await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)] == ["R-1001"]


async def test_an_unknown_command_is_answered_and_changes_nothing(teams, connector, teams_bot):
    status, body = await teams.post(invoke(teams, "teams_compose_fetch_task.json", commandId="somethingElse"))
    assert status == 200 and body["task"] == {"type": "message",
                                              "value": "This Amends command is out of date; update the app and "
                                                       "try again."}
    assert connector.calls == []


def test_the_manifest_declares_recover_from_this_on_messages_for_the_bot():
    manifest = json.loads((ROOT / "manifest.json").read_text())
    schema = json.loads((ROOT / "tests" / "schemas" / "teams-manifest.schema.v1.19.json").read_text())
    assert [e.message for e in Draft7Validator(schema).iter_errors(manifest)] == []
    [extension] = manifest["composeExtensions"]
    assert extension["botId"] == manifest["bots"][0]["botId"] and extension["composeExtensionType"] == "botBased"
    [command] = extension["commands"]
    assert (command["id"], command["type"], command["title"], command["context"], command["fetchTask"]) == (
        COMMAND_ID, "action", TITLE, ["message"], True)


@pytest.mark.parametrize("owned", [True, False])
def test_the_new_cards_are_valid_and_fit_a_teams_activity_with_the_worst_text(owned):
    """The case card with its link back (and, unowned, *Take it*) and the dialog's form, with the costliest text."""
    from dataclasses import replace

    from cards import teams as cards
    from tests.test_teams_cards import WORST, case_at, on_the_wire
    case = replace(case_at(Step.APOLOGISE, text=WORST, customer=WORST, name=WORST), source=LINK + "/" + "x" * 1900)
    if not owned:
        case = replace(case, owner="", owner_name="")
    text, card = cards.case_card(case)
    assert card_problems(card) == [] and on_the_wire(text, card) <= cards.ACTIVITY_MAX
    assert [a.get("verb") for a in card["actions"]] == ([None] if owned else ["take", None])
    form = cards.from_message_form(what=WORST, source=case.source, what_max=2000, customer_max=200, problem=WORST)
    assert card_problems(form) == [] and len(json.dumps(form).encode()) <= cards.ACTIVITY_MAX


async def test_a_double_tap_on_open_case_opens_one_case_and_a_refusal_keeps_what_was_typed(teams, connector, teams_bot):
    """Review: two taps on the dialog's Open case (two invokes) opened two cases; and a refused submit lost the
    customer typed."""
    form = the_form((await teams.post(invoke(teams, "teams_compose_fetch_task.json")))[1])
    refused = the_form((await teams.post(invoke(teams, "teams_compose_submit_action.json",
                                                data=filled(form, what=" ", customer="table 9"))))[1])
    [customer] = [e for e in refused["body"] if e.get("id") == Field.CUSTOMER]
    assert customer["value"] == "table 9" and form_data(refused) == {"source": LINK}
    data = filled(refused, what="cold steak")
    first, second = invoke(teams, "teams_compose_submit_action.json", data=data), \
        invoke(teams, "teams_compose_submit_action.json", data=data)
    second["id"] = first["id"] + "-again"  # a second tap: its own invoke
    assert await teams.post(first) == (200, {}) and await teams.post(second) == (200, {})
    await wait_step(connector, Step.APOLOGISE)
    [case] = await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)
    assert (case.what_happened, case.customer) == ("cold steak", "table 9")
