"""Every kind of Slack request delivered twice, at once, through the real entry point: exactly one effect.
(Teams' resent message and invoke: tests/test_teams_recovery.py::test_a_delivery_teams_resends_is_handled_once.)"""

import asyncio
import uuid
from decimal import Decimal

from app import SLACK
from bot.checklist import Step
from tests.flows import opened_view, step_posts, wait_step, walk_to
from tests.test_reliability_outbox import owes_nothing


async def twice(slack, body: str) -> list[tuple[int, str]]:
    return list(await asyncio.gather(slack.post(body), slack.post(body)))


async def settle(bot) -> None:
    """Wait for the work behind both acks (bounded: drain has its own deadline)."""
    await bot.app[SLACK].background.drain(timeout=10)


async def test_a_command_a_click_and_a_form_each_delivered_twice_have_one_effect(slack, fake_slack, bot):
    # /recover …: one case, one card
    answers = await twice(slack, slack.command_body("cold soup, table 4"))
    assert [status for status, _ in answers] == [200, 200]
    await settle(bot)
    [case] = await bot.recovery.open_cases(workspace="T1", owner="U1")
    cards = [c for c in fake_slack.of("chat.postMessage") if "thread_ts" not in c.args and c.answer.get("ok")]
    assert len(cards) == 1
    card = cards[0]

    # a click on Done: the checklist moves once
    apologise = await wait_step(fake_slack, card, Step.APOLOGISE)
    answers = await twice(slack, slack.click_body(apologise, "step_done"))
    assert [status for status, _ in answers] == [200, 200]
    await settle(bot)
    await wait_step(fake_slack, card, Step.EMPATHISE)
    assert len(step_posts(fake_slack, card, Step.EMPATHISE)) == 1
    assert list((await bot.recovery.case(workspace="T1", case_id=case.id)).done) == [Step.APOLOGISE]

    # the give form submitted twice: one ledger entry
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    trigger = f"give-{uuid.uuid4().hex}"
    await slack.post(slack.click_body(compensate, "give", trigger_id=trigger))
    [view] = await fake_slack.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger)
    answers = await twice(slack, slack.submit_body(view, {"amount": "15"}))
    assert sorted(status for status, _ in answers) == [200, 200]
    assert "" in [text for _, text in answers]  # one was recorded; the other is recorded or refused, not both
    await settle(bot)
    ledger = await bot.recovery.store.ledger(workspace="T1")
    assert [(e.case_id, e.amount) for e in ledger] == [(case.id, Decimal("15"))]

    # the follow-up form submitted twice: closed once, one summary owed and sent once
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
    await slack.click(follow_up, "follow_up_pick")
    picker = await opened_view(fake_slack, 2)
    answers = await twice(slack, slack.submit_body(picker, {"date": "2026-11-30"}))
    assert "" in [text for _, text in answers]
    await settle(bot)
    await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "CREC"
                              and "Recovered" in (c.args.get("text") or ""))
    await asyncio.wait_for(owes_nothing(bot.recovery.outbox), 10)
    summaries = [c for c in fake_slack.of("chat.postMessage") if c.args.get("channel") == "CREC"]
    closings = [c for c in fake_slack.of("chat.postMessage") if "is closed" in (c.args.get("text") or "")]
    assert len(summaries) == 1 and len(closings) == 1
