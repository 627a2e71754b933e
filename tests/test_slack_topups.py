"""Top-ups in Slack, through the real HTTP entry point: over the allowance the give form asks a manager,
the request is posted in the recovery channel with Approve / Deny for managers only, the first decision
updates it in place, and the employee hears it in their case thread."""

import asyncio
import json
from decimal import Decimal

from bot.checklist import Step
from tests.flows import give, open_case, thread_posts, wait_step, walk_to
from tests.test_slack_recovery import set_recovery_channel

ASKED = "anniversary dinner, soup spilled on her dress"


def _shown(call) -> str:
    return call.args.get("text", "") + json.dumps(call.args.get("blocks", []), ensure_ascii=False)


async def _asked(slack, fake_slack, bot, amount="40"):
    """Amy's case at the compensate step, and her request for `amount` posted in the recovery channel."""
    await set_recovery_channel(slack, fake_slack)
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    status, body = await _give_with_reason(slack, fake_slack, compensate, amount, ASKED)
    assert (status, body) == (200, "")
    [request] = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC"
                                          and "asks for" in c.args["text"])
    return card, compensate, request


async def _give_with_reason(slack, fake_slack, compensate, amount: str, reason: str):
    trigger = f"give-{amount}-{len(fake_slack.of('views.open'))}"
    await slack.post(slack.click_body(compensate, "give", trigger_id=trigger))
    view = (await fake_slack.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger))[0]
    voucher = {"selected_option": {"text": {"type": "plain_text", "text": "voucher"}, "value": "voucher"}}
    return await slack.submit(view, {"kind": voucher, "amount": amount, "reason": reason})


async def _told(fake_slack, words: str):
    return (await fake_slack.wait_for("response_url", where=lambda c: words in c.args.get("text", "")))[0]


async def test_over_the_limit_the_form_says_what_can_be_given_and_how_to_ask(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    status, body = await give(slack, fake_slack, compensate, "40")
    answer = json.loads(body)
    assert answer["response_action"] == "errors"
    assert answer["errors"]["amount"] == "$40 is over your limit of $25 per case (staff). You can give up to $25."
    assert answer["errors"]["reason"] == "Ask a manager for $40 instead? Say why here and send again."
    status, body = await _give_with_reason(slack, fake_slack, compensate, "lots", ASKED)
    assert "isn't an amount" in json.loads(body)["errors"]["amount"]
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.top_up is None and await bot.recovery.store.ledger(workspace="T1") == []


async def test_within_the_allowance_a_reason_changes_nothing_it_is_just_given(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    assert (await _give_with_reason(slack, fake_slack, compensate, "20", ASKED)) == (200, "")
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert (entry.amount, entry.approved_by) == (Decimal("20"), "")
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).top_up is None


async def test_a_manager_approves_once_and_the_case_moves_on(slack, fake_slack, bot):
    card, compensate, request = await _asked(slack, fake_slack, bot)
    shown = _shown(request)
    assert "<@U1> asks for $40" in shown and "soup spilled" in shown and "Approve $40" in shown
    note = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card.answer["ts"]
                                     and "You asked a manager for $40" in c.args["text"])
    assert note

    # Ben is no manager: refused, only to him, and nothing changes
    await slack.click(request, "top_up_approve", user="U2", user_name="ben")
    told = await _told(fake_slack, "Only managers can approve")
    assert told.args["response_type"] == "ephemeral"
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).top_up.status == "pending"

    # Ada (a workspace admin) approves: the request loses its buttons, Amy hears it, the checklist moves on
    await slack.click(request, "top_up_approve", user="UADMIN", user_name="ada")
    updated = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == request.answer["ts"]))[0]
    assert "Approved by <@UADMIN>" in _shown(updated) and "top_up_approve" not in _shown(updated)
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    assert any("approved $40" in c.args["text"] for c in thread_posts(fake_slack, card))
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert (entry.employee, entry.kind, entry.amount, entry.approved_by) == ("U1", "voucher", Decimal("40"), "UADMIN")
    assert (await bot.recovery.allowance(workspace="T1", person="U1")).role.limit == Decimal(25)

    # the same button again (an old copy of the message): refused, nothing recorded twice
    await slack.click(request, "top_up_approve", user="UADMIN", user_name="ada")
    await _told(fake_slack, "You already approved $40 on R-1001")
    assert len(await bot.recovery.store.ledger(workspace="T1")) == 1


async def test_after_a_deny_approve_is_refused_and_amy_gives_within_her_allowance(slack, fake_slack, bot):
    card, compensate, request = await _asked(slack, fake_slack, bot)
    await slack.click(request, "top_up_deny", user="UBOSS", user_name="boss")
    updated = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == request.answer["ts"]))[0]
    assert "Denied by <@UBOSS>" in _shown(updated)
    denied = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card.answer["ts"]
                                       and "said no to $40" in c.args["text"])
    assert "You can give up to $25 here" in denied[0].args["text"]

    await slack.click(request, "top_up_approve", user="UADMIN", user_name="ada")
    await _told(fake_slack, "already denied $40 on R-1001; nothing changed")
    assert await bot.recovery.store.ledger(workspace="T1") == []

    status, body = await _give_with_reason(slack, fake_slack, compensate, "40", "please")
    assert "said no to $40" in json.loads(body)["errors"]["reason"]
    assert await give(slack, fake_slack, compensate, "25") == (200, "")
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert (entry.amount, entry.approved_by) == (Decimal("25"), "")


async def test_a_double_click_on_approve_records_it_once(slack, fake_slack, bot):
    card, compensate, request = await _asked(slack, fake_slack, bot)
    first = slack.click_body(request, "top_up_approve", user="UADMIN", user_name="ada")
    second = slack.click_body(request, "top_up_approve", user="UADMIN", user_name="ada")
    await asyncio.gather(slack.post(first), slack.post(second))
    await _told(fake_slack, "You already approved $40")
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    assert len(await bot.recovery.store.ledger(workspace="T1")) == 1
    assert len([c for c in fake_slack.of("chat.update") if c.args["ts"] == request.answer["ts"]]) == 1


async def test_without_a_recovery_channel_the_request_goes_in_the_case_thread(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    assert (await _give_with_reason(slack, fake_slack, compensate, "40", ASKED)) == (200, "")
    [request] = await fake_slack.wait_for("chat.postMessage", where=lambda c: "asks for" in c.args["text"]
                                          and c.args.get("thread_ts") == card.answer["ts"])
    await slack.click(request, "top_up_approve", user="UADMIN", user_name="ada")
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    assert (await bot.recovery.store.ledger(workspace="T1"))[0].approved_by == "UADMIN"


async def test_a_request_settled_without_waiting_loses_its_buttons(slack, fake_slack, bot):
    """Amy gives within her allowance while her request waits: the request in the recovery channel is updated in
    place (no Approve / Deny left), and a manager's click on an old copy changes nothing."""
    card, compensate, request = await _asked(slack, fake_slack, bot)
    assert await give(slack, fake_slack, compensate, "25") == (200, "")
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    updated = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == request.answer["ts"]))[0]
    assert "top_up_approve" not in _shown(updated) and "top_up_deny" not in _shown(updated)
    assert "settled it without waiting" in _shown(updated) and "· $25" in _shown(updated)

    await slack.click(request, "top_up_approve", user="UADMIN", user_name="ada")
    await _told(fake_slack, "already settled the compensate step of R-1001")
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert (entry.amount, entry.approved_by) == (Decimal("25"), "")


async def test_a_request_slack_refuses_to_post_is_told_and_can_be_asked_again(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    fake_slack.fail_next("chat.postMessage", error="is_archived")
    assert (await _give_with_reason(slack, fake_slack, compensate, "40", ASKED)) == (200, "")
    told = await fake_slack.wait_for("chat.postMessage", where=lambda c: "couldn't post your request" in c.args["text"])
    assert "nobody was asked" in told[0].args["text"] and told[0].args["channel"] == "DBOTU1"

    assert (await _give_with_reason(slack, fake_slack, compensate, "40", ASKED)) == (200, "")  # not "already asked"
    await fake_slack.wait_for("chat.postMessage", where=lambda c: "asks for" in c.args["text"]
                              and c.args.get("thread_ts") == card.answer["ts"])
    await fake_slack.wait_for("chat.postMessage", where=lambda c: "You asked a manager for $40" in c.args["text"])
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).top_up.post is not None


async def test_over_the_limit_again_the_form_says_the_request_already_made_not_ask_again(slack, fake_slack, bot):
    card, compensate, request = await _asked(slack, fake_slack, bot)
    status, body = await give(slack, fake_slack, compensate, "60")
    errors = json.loads(body)["errors"]
    assert "over your limit" in errors["amount"]
    assert errors["reason"].startswith("You already asked for $40 on R-1001")
    assert "Ask a manager" not in errors["reason"]

    await slack.click(request, "top_up_deny", user="UBOSS", user_name="boss")
    await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == request.answer["ts"])
    status, body = await give(slack, fake_slack, compensate, "60")
    assert "said no to $40" in json.loads(body)["errors"]["reason"]
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).top_up.amount == Decimal("40")
