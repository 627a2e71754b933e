"""Top-ups in Teams, through /api/messages: "Ask a manager" on the compensate card posts a request card in
the recovery channel, Approve / Deny work for managers only, the first decision replaces the request card
in place, and the employee hears it under their case card."""

import asyncio
from decimal import Decimal

from bot.checklist import Step
from cards.teams import CARD_TYPE
from tests.doubles.teams_driver import (ADA, AMY, BEN, FLOOR, RECOVERIES, answer_of, open_case, wait_answer,
                                        wait_step, walk_to)
from tests.test_teams_recovery import TENANT, set_recovery_channel

pytest_plugins = ("tests.doubles.teams_fixtures",)

ASKED = "anniversary dinner, soup spilled on her dress"


async def _compensate(teams):
    await set_recovery_channel(teams)
    await open_case(teams, channel=FLOOR)
    return await walk_to(teams, Step.COMPENSATE)


async def _ask(teams, connector, compensate, amount="40"):
    status, body = await teams.execute(compensate, "top_up_ask", {"kind": "voucher", "amount": amount, "reason": ASKED})
    assert status == 200 and body["type"] == CARD_TYPE, body
    [request] = await connector.wait_for(lambda c: c.method == "POST" and c.conversation == RECOVERIES.id
                                         and "Top-up request" in c.shown)
    return body, request


async def test_a_manager_approves_once_and_the_case_moves_on(teams, connector, teams_bot):
    compensate = await _compensate(teams)
    body, request = await _ask(teams, connector, compensate)
    assert "Amy Baker asks for $40 on R-1001 · waiting for a manager" in str(body["value"])
    assert "soup spilled" in request.shown and "Approve $40" in str(request.card["actions"])

    status, body = await teams.execute(request, "top_up_approve", user=BEN)
    assert "Only managers can approve" in answer_of(body)
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).top_up.status == "pending"

    status, body = await teams.execute(request, "top_up_approve", user=ADA)
    assert status == 200 and body["type"] == CARD_TYPE and "actions" not in body["value"]
    assert "Approved by" in str(body["value"]) and "Ada Okafor" in str(body["value"])
    assert connector.updates(request.id)[-1].card == body["value"]  # in place, for every manager
    await wait_step(connector, Step.FOLLOW_UP)
    told = await wait_answer(connector, "is recorded as given on R-1001")
    assert told.conversation.startswith(FLOOR.id)
    [entry] = await teams_bot.recovery.store.ledger(workspace=TENANT)
    assert (entry.employee, entry.kind, entry.amount, entry.approved_by) == (AMY.aad, "voucher", Decimal("40"), ADA.aad)

    status, body = await teams.execute(request, "top_up_approve", user=ADA)
    assert answer_of(body) == "You already approved $40 on R-1001; nothing changed."
    assert len(await teams_bot.recovery.store.ledger(workspace=TENANT)) == 1


async def test_after_a_deny_approve_is_refused_and_amy_gives_within_her_allowance(teams, connector, teams_bot):
    compensate = await _compensate(teams)
    _, request = await _ask(teams, connector, compensate)
    status, body = await teams.execute(request, "top_up_deny", user=ADA)
    assert "Denied by" in str(body["value"])
    await wait_answer(connector, "was not approved")
    status, body = await teams.execute(request, "top_up_approve", user=ADA)
    assert "already denied $40" in answer_of(body)
    status, body = await teams.execute(compensate, "top_up_ask", {"amount": "40", "reason": "please"})
    assert "said no to $40" in answer_of(body)
    status, body = await teams.execute(compensate, "give", {"kind": "voucher", "amount": "40"})
    assert "over your limit" in answer_of(body) and "said no to $40" in answer_of(body)
    assert "tap Ask a manager" not in answer_of(body)  # not an invitation to ask again
    assert await teams_bot.recovery.store.ledger(workspace=TENANT) == []
    status, body = await teams.execute(compensate, "give", {"kind": "voucher", "amount": "25"})
    assert status == 200 and "voucher · $25" in str(body["value"])


async def test_a_request_within_the_allowance_without_a_reason_or_not_an_amount_is_refused(teams, connector,
                                                                                           teams_bot):
    compensate = await _compensate(teams)
    for inputs, words in (({"amount": "20", "reason": ASKED}, "You can give $20 yourself, no need to ask"),
                          ({"amount": "40", "reason": ""}, "Say why $40 is needed"),
                          ({"amount": "lots", "reason": ASKED}, "isn't an amount")):
        status, body = await teams.execute(compensate, "top_up_ask", inputs)
        assert words in answer_of(body)
    status, body = await teams.execute(compensate, "top_up_ask", {"amount": "40", "reason": ASKED}, user=BEN)
    assert "Amy Baker's case (R-1001)" in answer_of(body)  # someone else's case
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).top_up is None
    status, body = await teams.execute(compensate, "give", {"amount": "40"})
    assert "Ask a manager" in answer_of(body)  # the over-limit sentence says how to ask


async def test_a_double_tap_on_approve_records_it_once(teams, connector, teams_bot):
    compensate = await _compensate(teams)
    _, request = await _ask(teams, connector, compensate)
    answers = await asyncio.gather(teams.execute(request, "top_up_approve", user=ADA),
                                   teams.execute(request, "top_up_approve", user=ADA))
    kinds = sorted(body["type"] for _, body in answers)
    assert kinds == ["application/vnd.microsoft.activity.message", CARD_TYPE]
    assert len(await teams_bot.recovery.store.ledger(workspace=TENANT)) == 1


async def test_a_request_settled_without_waiting_loses_its_buttons(teams, connector, teams_bot):
    """Amy chooses "Nothing needed" while her request waits: the request card is replaced in place without
    Approve / Deny, and a manager's tap on an old copy changes nothing."""
    compensate = await _compensate(teams)
    _, request = await _ask(teams, connector, compensate)
    status, body = await teams.execute(compensate, "nothing_needed")
    assert status == 200 and body["type"] == CARD_TYPE
    await wait_step(connector, Step.FOLLOW_UP)
    [updated] = await connector.wait_for(lambda c: c.method == "PUT" and c.activity_id == request.id)
    assert "actions" not in updated.card or not updated.card["actions"]
    assert "settled it without waiting" in updated.shown and "nothing needed" in updated.shown

    status, body = await teams.execute(request, "top_up_approve", user=ADA)
    assert "already settled the compensate step of R-1001" in answer_of(body)
    assert await teams_bot.recovery.store.ledger(workspace=TENANT) == []


async def test_giving_over_the_allowance_says_how_to_ask_a_manager_once(teams, connector, teams_bot):
    compensate = await _compensate(teams)
    status, body = await teams.execute(compensate, "give", {"kind": "voucher", "amount": "40"})
    said = answer_of(body)
    assert "over your limit" in said and said.endswith("Or say why under “Over your limit?” and tap Ask a manager.")
    assert said.count("Ask a manager") == 1
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).top_up is None
