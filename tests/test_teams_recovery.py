"""A frontline employee recovers a customer in Microsoft Teams, end to end, through /api/messages.

Activities are shaped as Teams sends them (tests/fixtures/teams_*.json); replies go to a fake
Bot Framework connector that checks every card as Teams would.
"""

import asyncio
from datetime import date
from decimal import Decimal

from bot.checklist import Step
from bot.commands import COMMANDS
from bot.store import open_store
from cards.teams import CARD_TYPE
from handlers.teams.commands import TEAMS_USAGE
from tests.conftest import RunningBot
from tests.doubles.teams_driver import (ADA, AMY, BEN, FLOOR, RECOVERIES, TEAM, TeamsDriver, answer_of, open_case,
                                        personal_conversation, teams_settings, wait_answer, wait_step, walk_to)

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


async def set_recovery_channel(teams: TeamsDriver, *, user=ADA) -> None:
    status, _ = await teams.say("recover admin channel here", user=user, channel=RECOVERIES)
    assert status == 201
    await wait_answer(teams.connector, "Saved. Recovery summaries will be posted in this channel.")


def summaries(connector, conversation: str = RECOVERIES.id):
    return [c for c in connector.posts(conversation) if "Recovered: " in c.shown]


async def test_a_whole_recovery_in_a_channel_from_mention_to_summary(teams, connector, teams_bot, clock):
    await set_recovery_channel(teams)
    card = await open_case(teams, "cold soup, table 4, waited 40 min", channel=FLOOR)

    # the case card answers Amy's post, in its reply chain; the conversation id travels percent-encoded
    assert card.conversation.startswith(FLOOR.id + ";messageid=")
    assert card.raw_path.startswith("/v3/conversations/19%3A8d2f") and "%3Bmessageid%3D" in card.raw_path
    assert "R-1001 · open" in card.shown and "Amy Baker" in card.shown
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.what_happened == "cold soup, table 4, waited 40 min"  # the @Amends mention is gone
    assert case.owner == AMY.aad

    # apologise: one tap; the step follows the card, and is ticked in place
    apologise = await wait_step(connector, Step.APOLOGISE)
    assert apologise.conversation == card.conversation and apologise.activity_id == card.id
    assert "sorry" in apologise.shown
    clock.advance(seconds=20)
    status, body = await teams.execute(apologise, "step_done")
    assert status == 200 and body["statusCode"] == 200 and body["type"] == CARD_TYPE
    assert "✅ R-1001 · 1/5" in str(body["value"]) and "actions" not in body["value"]
    empathise = await wait_step(connector, Step.EMPATHISE)
    [ticked] = connector.updates(apologise.id)
    assert ticked.card == body["value"] and ticked.conversation == card.conversation
    assert "✅ Apologise" in connector.updates(card.id)[-1].shown

    # empathise: done with a note typed into the card
    status, body = await teams.execute(empathise, "step_done", {"note": "They're celebrating an anniversary"})
    assert status == 200 and "anniversary" in str(body["value"])
    fix = await wait_step(connector, Step.FIX)
    assert (await teams.execute(fix, "step_done"))[0] == 200

    # compensate: the allowance is shown, the gift recorded at once
    compensate = await wait_step(connector, Step.COMPENSATE)
    assert "You can give up to $25 here · $100 left this week" in compensate.shown
    clock.advance(seconds=60)
    status, body = await teams.execute(compensate, "give", {"kind": "voucher", "amount": "15"})
    assert status == 200 and "voucher · $15" in str(body["value"])
    ledger = await teams_bot.recovery.store.ledger(workspace=TENANT)
    assert [(e.case_id, e.employee, e.kind, e.amount, e.currency) for e in ledger] == [
        ("R-1001", AMY.aad, "voucher", Decimal("15"), "USD")]

    # follow up tomorrow: the case closes and the summary is a new post in the recovery channel
    follow_up = await wait_step(connector, Step.FOLLOW_UP)
    clock.advance(seconds=20)
    assert (await teams.execute(follow_up, "follow_up_tomorrow"))[0] == 200
    [summary] = summaries(connector)
    assert summary.conversation == RECOVERIES.id and summary.activity_id is None
    for expected in ("R-1001", "Amy Baker", "cold soup, table 4, waited 40 min", "voucher · $15 USD", "1 min 40 s",
                     "Thu 26 Nov 2026", "anniversary"):
        assert expected in summary.shown, expected
    closing = await wait_answer(connector, "is closed")
    assert closing.conversation == card.conversation and "Riverside Bistro · Recoveries" in closing.shown
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.is_closed and case.follow_up_on == date(2026, 11, 26)
    assert (case.summary.channel, case.summary.id) == (RECOVERIES.id, summary.id)
    assert "R-1001 · closed" in connector.updates(card.id)[-1].shown


async def test_an_older_client_walks_a_case_with_the_action_submit_fallback(teams, connector, teams_bot):
    card = await open_case(teams)  # in Amy's 1:1 chat with Amends
    for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
        message = await wait_step(connector, step)
        assert (await teams.submit(message, "step_done"))[0] == 201
    compensate = await wait_step(connector, Step.COMPENSATE)
    assert (await teams.submit(compensate, "give", {"kind": "refund", "amount": "10"}))[0] == 201
    follow_up = await wait_step(connector, Step.FOLLOW_UP)
    assert (await teams.submit(follow_up, "follow_up_pick", {"date": "2026-12-01"}))[0] == 201

    await wait_answer(connector, "is closed")
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.is_closed and case.follow_up_on == date(2026, 12, 1) and case.compensation.amount == Decimal("10")
    for step in Step:  # every step's card was ticked in place, in Amy's chat
        [ticked] = connector.updates(case.step_posts[step].id)
        assert ticked.conversation == card.conversation == personal_conversation(AMY) and "✅" in ticked.shown


async def test_with_no_recovery_channel_the_summary_stays_in_the_thread_and_admins_are_told(teams, connector):
    assert (await teams.post(teams.installed(personal=ADA)))[0] == 201  # Ada's chat with Amends, kept for later
    card = await open_case(teams, channel=FLOOR)
    compensate = await walk_to(teams, Step.COMPENSATE)
    assert (await teams.execute(compensate, "nothing_needed"))[0] == 200
    follow_up = await wait_step(connector, Step.FOLLOW_UP)
    assert (await teams.execute(follow_up, "no_follow_up"))[0] == 200

    closing = await wait_answer(connector, "is closed")
    assert "No recovery channel is set" in closing.shown and "admin channel here" in closing.shown
    assert len(summaries(connector, card.conversation)) == 1
    told = await connector.wait_for(lambda c: c.method == "POST" and c.conversation == personal_conversation(ADA)
                                    and "no recovery channel is set" in c.shown)
    assert told[0].activity_id is None  # a new message in Ada's chat, not a reply


async def test_a_recovery_channel_teams_refuses_keeps_the_summary_in_the_thread(teams, connector, teams_bot):
    await set_recovery_channel(teams)
    assert (await teams.post(teams.installed(personal=ADA)))[0] == 201
    await open_case(teams)
    compensate = await walk_to(teams, Step.COMPENSATE)
    await teams.execute(compensate, "nothing_needed")
    connector.fail_next(RECOVERIES.id, status=403, code="MessageWritesBlocked")  # Amends was removed from the team
    await teams.execute(await wait_step(connector, Step.FOLLOW_UP), "no_follow_up")

    closing = await wait_answer(connector, "is closed")
    assert "I couldn't post the summary in" in closing.shown and "Riverside Bistro · Recoveries" in closing.shown
    assert summaries(connector) == [] and len(summaries(connector, personal_conversation(AMY))) == 1
    await connector.wait_for(lambda c: c.conversation == personal_conversation(ADA) and "couldn't be posted" in c.shown)
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.is_closed and case.summary is None


async def test_a_restart_between_opening_and_closing_loses_nothing(connector, clock, tmp_path, http):
    path = str(tmp_path / "amends.json")
    first = await RunningBot.start(teams_settings(), store=open_store(path), clock=clock)
    teams = TeamsDriver(bot_url=first.url, connector=connector, session=http)
    await set_recovery_channel(teams)
    await open_case(teams, channel=FLOOR)
    apologise = await wait_step(connector, Step.APOLOGISE)
    await first.stop()

    second = await RunningBot.start(teams_settings(), store=open_store(path), clock=clock)
    try:
        teams.bot_url = second.url
        assert (await teams.execute(apologise, "step_done"))[0] == 200  # a card posted before the restart
        assert len(connector.updates(apologise.id)) == 1
        compensate = await walk_to(teams, Step.COMPENSATE)
        await teams.execute(compensate, "nothing_needed")
        await teams.execute(await wait_step(connector, Step.FOLLOW_UP), "no_follow_up")
        [summary] = summaries(connector)  # proactively, from the reference stored before the restart
        assert "R-1001" in summary.shown
    finally:
        await second.stop()


async def test_recover_alone_sends_a_form_that_becomes_the_case_card(teams, connector, teams_bot):
    assert (await teams.say("recover"))[0] == 201
    form = await wait_answer(connector, "New recovery")

    status, body = await teams.execute(form, "new_case", {"what": "   ", "customer": ""})
    assert status == 200 and answer_of(body) == "Say what happened, e.g. cold soup, waited 40 min."
    status, body = await teams.execute(form, "new_case", {"what": "lost booking"}, user=BEN)
    assert "someone else's" in answer_of(body)
    assert await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad) == []

    status, body = await teams.execute(form, "new_case", {"what": "room not cleaned", "customer": "room 212"})
    assert status == 200 and body["type"] == CARD_TYPE and "R-1001 · open" in str(body["value"])
    [replaced] = connector.updates(form.id)  # the form turned into the case card, in place
    assert "room not cleaned" in replaced.shown and "room 212" in replaced.shown
    apologise = await wait_step(connector, Step.APOLOGISE)
    assert apologise.activity_id == form.id

    status, body = await teams.execute(form, "new_case", {"what": "room not cleaned"})  # a second tap
    assert "already opened a case" in answer_of(body)
    assert len(await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)) == 1


async def test_a_tap_on_someone_elses_case_is_refused_and_changes_nothing(teams, connector, teams_bot):
    await open_case(teams, channel=FLOOR)
    apologise = await wait_step(connector, Step.APOLOGISE)
    before = len(connector.calls)
    status, body = await teams.execute(apologise, "step_done", user=BEN)
    assert status == 200
    assert answer_of(body) == ("This is Amy Baker's case (R-1001); only they can work on it. "
                               "To start your own, type recover and what happened.")
    assert len(connector.calls) == before  # nothing posted, nothing updated: only Ben sees the answer
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).done == {}


async def test_a_double_tap_moves_the_checklist_once(teams, connector, teams_bot):
    await open_case(teams)
    apologise = await wait_step(connector, Step.APOLOGISE)
    first, second = teams.tap(apologise, "step_done"), teams.tap(apologise, "step_done")
    answers = await asyncio.gather(teams.post(first), teams.post(second))
    assert [status for status, _ in answers] == [200, 200]
    kinds = sorted(body["type"] for _, body in answers)
    assert kinds == sorted([CARD_TYPE, "application/vnd.microsoft.activity.message"])
    refused = next(body for _, body in answers if body["type"] != CARD_TYPE)
    assert "already done" in answer_of(refused)
    await wait_step(connector, Step.EMPATHISE)
    assert len([c for c in connector.posts() if "2/5" in c.card["fallbackText"]]) == 1


async def test_a_delivery_teams_resends_is_handled_once(teams, connector, teams_bot):
    message = teams.message("recover cold soup")
    assert (await teams.post(message))[0] == 201
    assert (await teams.post(message))[0] == 201
    assert [c.what_happened for c in await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)] == [
        "cold soup"]
    apologise = await wait_step(connector, Step.APOLOGISE)
    tap = teams.tap(apologise, "step_done")
    assert (await teams.post(tap))[1]["type"] == CARD_TYPE
    status, body = await teams.post(tap)
    assert status == 200 and answer_of(body) == "Got it already; nothing changed."
    assert len([c for c in connector.posts() if "2/5" in c.card["fallbackText"]]) == 1


async def test_added_to_a_team_it_says_how_to_start_and_how_to_choose_the_channel(teams, connector):
    assert (await teams.post(teams.installed()))[0] == 201
    welcome = await wait_answer(connector, "Hi, I'm Amends.")
    assert welcome.conversation == TEAM["id"]
    assert "@Amends recover" in welcome.shown and "admin channel here" in welcome.shown


async def test_added_to_a_persons_chat_it_greets_them_and_keeps_the_chat(teams, connector, teams_bot):
    assert (await teams.post(teams.installed(personal=ADA)))[0] == 201
    welcome = await wait_answer(connector, "Hi, I'm Amends.")
    assert welcome.conversation == personal_conversation(ADA) and "admin channel here" not in welcome.shown
    kept = await teams_bot.recovery.store.reference(workspace=TENANT, key=f"person:{ADA.aad}")
    assert kept["conversation"]["id"] == personal_conversation(ADA)


async def test_someone_joining_a_team_is_not_greeted(teams, connector):
    joined = teams.installed()
    joined["membersAdded"] = [{"id": BEN.mri, "aadObjectId": BEN.aad}]
    assert (await teams.post(joined))[0] == 201
    assert connector.calls == []


async def test_list_help_and_anything_else(teams, connector):
    await open_case(teams, "cold soup")
    await open_case(teams, "lost booking", case_id="R-1002")
    assert (await teams.say("recover list"))[0] == 201
    listed = await wait_answer(connector, "Your open cases")
    assert "R-1001" in listed.shown and "R-1002" in listed.shown and "lost booking" in listed.shown
    assert "next: Apologise" in listed.shown

    assert (await teams.say("Recover help"))[0] == 201
    helped = await wait_answer(connector, "Amends guides a service recovery")
    for spec in COMMANDS:
        assert f"recover {TEAMS_USAGE.get(spec.words, spec.usage)}" in helped.shown, spec.usage
    assert "recover admin grant <@person>" in helped.shown and "<#channel>" not in helped.shown

    assert (await teams.say("hello"))[0] == 201
    assert "Type recover and what happened" in (await wait_answer(connector, "Type recover")).shown
