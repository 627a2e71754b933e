"""'Recover from this' on a message: the case form, prefilled, with a link back to the message."""

import json
from urllib.parse import urlencode

from bot.checklist import Step
from tests.doubles.slack_client import fixture_json
from tests.flows import opened_view, wait_step


def shortcut_body(fake_slack, *, channel: str = "C1", trigger: str = "trigger-shortcut-1") -> str:
    payload = fixture_json("message_action.json")  # a recorded message_action payload
    payload["channel"]["id"] = channel
    payload["trigger_id"] = trigger
    payload["response_url"] = fake_slack.response_url("shortcut")
    return urlencode({"payload": json.dumps(payload)})


async def test_a_case_opened_from_a_message_is_prefilled_and_links_back(slack, fake_slack, bot):
    status, body = await slack.post(shortcut_body(fake_slack))
    assert (status, body) == (200, "")  # acked at once; the form follows
    form = await opened_view(fake_slack, 1)
    view = form.args["view"]
    what = next(b for b in view["blocks"] if b.get("block_id") == "what")
    assert what["element"]["initial_value"] == "Guest at table 9: @ben forgot our order & we waited 50 min"
    link = "https://amends-test.slack.com/archives/C1/p1700000000000100"
    assert link in json.dumps(view)
    assert form.args["trigger_id"] == "trigger-shortcut-1"

    assert await slack.submit(form, {"what": what["element"]["initial_value"], "customer": "table 9"}) == (200, "")
    card = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "thread_ts" not in c.args))[0]
    assert card.args["channel"] == "C1" and link in json.dumps(card.args["blocks"])
    await wait_step(fake_slack, card, Step.APOLOGISE)
    [case] = await bot.recovery.open_cases(workspace="T1", owner="U1")
    assert (case.source, case.customer) == (link, "table 9")


async def test_without_a_permalink_the_form_still_opens(slack, fake_slack, bot):
    fake_slack.fail_next("chat.getPermalink", error="message_not_found")
    await slack.post(shortcut_body(fake_slack))
    view = (await opened_view(fake_slack, 1)).args["view"]
    assert "archives" not in json.dumps(view) and json.loads(view["private_metadata"]) == {"channel": "C1"}


async def test_a_forged_source_never_reaches_a_case(bot):
    case = await bot.recovery.open_case(workspace="T1", owner="U1", owner_name="Amy", what_happened="x",
                                        source="https://evil.example|click me>")
    assert case.source == ""
