"""Follow-through in Microsoft Teams, through /api/messages with the fake connector and an injected clock:
the follow-up reminder as a proactive message in the owner's chat with Amends and its three buttons, the
idle nudge, and the admin settings. The outbox runs on the test's clock (no sleeping)."""

import asyncio
import json
from datetime import datetime, timedelta, timezone

from bot.checklist import Step
from bot.followups import REMINDER
from cards.teams import CARD_TYPE
from bot.store import open_store
from tests.conftest import RunningBot
from tests.doubles.teams_driver import (ADA, AMY, BEN, FLOOR, TeamsDriver, answer_of, open_case,
                                        personal_conversation, teams_settings, wait_answer, wait_step, walk_to)

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DAY_AFTER = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)  # "tomorrow" of the test clock, at 10:00


def in_amys_chat(connector, words: str) -> list:
    return [c for c in connector.posts(personal_conversation(AMY)) if words in c.shown]


async def rounds(outbox, count: int = 2) -> None:
    for _ in range(count):
        seen = outbox.rounds
        outbox.wake()
        await asyncio.wait_for(outbox.after_round(seen), 5)


async def closed_with_follow_up(teams: TeamsDriver, teams_bot, clock, *, chat: bool = True):
    teams_bot.recovery.outbox.clock = clock
    if chat:  # Amy's 1:1 chat with Amends, kept for proactive messages
        assert (await teams.post(teams.installed(personal=AMY)))[0] == 201
    card = await open_case(teams, channel=FLOOR)
    compensate = await walk_to(teams, Step.COMPENSATE)
    assert (await teams.execute(compensate, "nothing_needed"))[0] == 200
    assert (await teams.execute(await wait_step(teams.connector, Step.FOLLOW_UP), "follow_up_tomorrow"))[0] == 200
    await wait_answer(teams.connector, "is closed")
    return card


async def reminder_in_chat(connector, teams_bot, clock, *, at: datetime = DAY_AFTER, count: int = 1):
    clock.current = at
    teams_bot.recovery.outbox.wake()
    return (await connector.wait_for(lambda c: c.method == "POST" and c.conversation == personal_conversation(AMY)
                                     and "Follow up with" in c.shown, count=count))[-1]


async def test_the_owner_is_reminded_in_their_chat_and_done_records_they_are_happy(teams, connector, teams_bot, clock):
    await closed_with_follow_up(teams, teams_bot, clock)
    reminder = await reminder_in_chat(connector, teams_bot, clock)
    assert reminder.activity_id is None and reminder.card["fallbackText"] == "Follow up with the customer of " \
        "R-1001: cold soup, table 4, waited 40 min"  # none was named
    assert [a["title"] for a in reminder.card["actions"]] == [
        "Done — they're happy", "Still unhappy — reopen", "Snooze a day"]

    status, body = await teams.execute(reminder, "reminder_done", user=BEN)
    assert status == 200 and "only they can work on it" in answer_of(body)
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).follow_up_outcome == ""

    status, body = await teams.execute(reminder, "reminder_done")
    assert status == 200 and body["type"] == CARD_TYPE and "they're happy" in str(body["value"])
    assert "actions" not in body["value"]
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.follow_up_outcome == "happy"

    status, body = await teams.execute(reminder, "reminder_done")  # a double tap
    assert "already followed up" in answer_of(body)
    assert await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001") == case
    await rounds(teams_bot.recovery.outbox)
    assert len(in_amys_chat(connector, "Follow up with")) == 1


async def test_still_unhappy_reopens_at_the_fix_step_under_the_case_card(teams, connector, teams_bot, clock):
    card = await closed_with_follow_up(teams, teams_bot, clock)
    reminder = await reminder_in_chat(connector, teams_bot, clock)
    status, body = await teams.execute(reminder, "reminder_reopen")
    assert status == 200 and "Reopened" in str(body["value"])

    fix_again = await wait_step(connector, Step.FIX, count=2)
    assert fix_again.conversation == card.conversation and fix_again.activity_id == card.id
    told = await wait_answer(connector, "is reopened")
    assert told.conversation == card.conversation and "Amy Baker" in told.shown
    assert "R-1001 · open" in connector.updates(card.id)[-1].shown
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert not case.is_closed and case.current_step is Step.FIX and len(case.reopenings) == 1

    status, body = await teams.execute(reminder, "reminder_reopen")  # a double tap
    assert "is open again" in answer_of(body)
    assert len([c for c in connector.posts() if "3/5" in c.card["fallbackText"]]) == 2


async def test_snooze_with_an_older_client_updates_the_reminder_in_place(teams, connector, teams_bot, clock):
    await closed_with_follow_up(teams, teams_bot, clock)
    reminder = await reminder_in_chat(connector, teams_bot, clock)
    assert (await teams.submit(reminder, "reminder_snooze"))[0] == 201
    [snoozed] = connector.updates(reminder.id)
    assert "Snoozed" in snoozed.shown and "Fri 27 Nov 2026 at 10:00" in snoozed.shown
    owed = [m.due for m in await teams_bot.recovery.store.owed_outbox() if m.kind == REMINDER]
    assert owed == [DAY_AFTER + timedelta(days=1)]
    await reminder_in_chat(connector, teams_bot, clock, at=owed[0], count=2)


async def test_an_idle_case_nudges_its_owner_once_in_their_chat(teams, connector, teams_bot, clock):
    teams_bot.recovery.outbox.clock = clock
    assert (await teams.post(teams.installed(personal=AMY)))[0] == 201
    card = await open_case(teams, channel=FLOOR)
    clock.advance(minutes=15)
    teams_bot.recovery.outbox.wake()
    [nudge] = await connector.wait_for(lambda c: c.method == "POST" and "has been open" in c.shown)
    assert nudge.conversation == personal_conversation(AMY)
    assert nudge.card["fallbackText"] == "R-1001 has been open 15 min — next: apologise"
    # the card, left as it was drawn at the open, is redrawn with its age (and when that was true)
    [aged] = await connector.wait_for(lambda c: c.method == "PUT" and c.activity_id == card.id)
    assert aged.conversation == card.conversation
    as_of = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"open 15 min as of {{{{TIME({as_of})}}}}" in aged.shown
    clock.advance(minutes=20)
    await rounds(teams_bot.recovery.outbox)
    assert len(in_amys_chat(connector, "has been open")) == 1

    assert (await teams.execute(await wait_step(connector, Step.APOLOGISE), "step_done"))[0] == 200
    await connector.wait_for(lambda c: c.method == "PUT" and c.activity_id == card.id and "open 35 min" in c.shown)


async def test_a_nudge_reads_the_owner_s_chat_once_for_the_message_and_the_redraw(teams, connector, teams_bot, clock,
                                                                                    monkeypatch):
    teams_bot.recovery.outbox.clock = clock
    assert (await teams.post(teams.installed(personal=AMY)))[0] == 201
    card = await open_case(teams, channel=FLOOR)
    store, chats = teams_bot.recovery.store, []
    real = store.reference

    async def counted(*, workspace, key):
        if key.startswith("person:"):
            chats.append(key)
        return await real(workspace=workspace, key=key)
    monkeypatch.setattr(store, "reference", counted)
    clock.advance(minutes=15)
    teams_bot.recovery.outbox.wake()
    await connector.wait_for(lambda c: c.method == "PUT" and c.activity_id == card.id and "open 15 min" in c.shown)
    assert len(in_amys_chat(connector, "has been open")) == 1
    assert len(chats) == 1


async def test_an_owner_who_never_chatted_with_amends_is_not_reached_and_nothing_breaks(teams, connector, teams_bot,
                                                                                        clock):
    await closed_with_follow_up(teams, teams_bot, clock, chat=False)
    clock.current = DAY_AFTER
    await rounds(teams_bot.recovery.outbox)
    assert [c for c in connector.calls if "Follow up with" in c.shown] == []
    assert [m for m in await teams_bot.recovery.store.owed_outbox() if m.kind == REMINDER] == []


async def test_admins_set_the_reminder_hour_and_idle_time_in_teams(teams, connector, teams_bot):
    assert (await teams.say("recover admin reminders 9", user=ADA))[0] == 201
    await wait_answer(connector, "arrive at 09:00")
    assert (await teams.say("recover admin idle 0", user=ADA))[0] == 201
    refused = await wait_answer(connector, "from 1 to 1440")
    assert "recover admin idle 15" in refused.shown and "/recover" not in refused.shown
    assert (await teams.say("recover admin idle 20"))[0] == 201  # Amy is no admin
    await wait_answer(connector, "Only Amends admins")
    store = teams_bot.recovery.store
    assert await store.reference(workspace=TENANT, key="config:reminder_hour") == {"hour": 9}
    assert await store.reference(workspace=TENANT, key="config:idle_minutes") is None


async def test_a_reminder_due_while_the_bot_was_down_loads_teams_and_goes_out_once(connector, clock, tmp_path, http):
    path = str(tmp_path / "amends.json")
    first = await RunningBot.start(teams_settings(), store=open_store(path), clock=clock)
    try:
        await closed_with_follow_up(TeamsDriver(bot_url=first.url, connector=connector, session=http), first, clock)
    finally:
        await first.stop()

    clock.current = DAY_AFTER + timedelta(hours=3)  # it fell due while the bot was down
    second = await RunningBot.start(teams_settings(), store=open_store(path), clock=clock)
    second.recovery.outbox.clock = clock
    try:  # no Teams request reaches the new process: the reminder loads the Teams glue itself
        await reminder_in_chat(connector, second, clock, at=clock.current)
        await rounds(second.recovery.outbox, 3)
    finally:
        await second.stop()
    assert len(in_amys_chat(connector, "Follow up with")) == 1


async def test_a_reopened_case_closes_again_with_a_new_summary_card_and_reminder(teams, connector, teams_bot, clock):
    """Review: after "Still unhappy — reopen" the new fix card's buttons work in the case's conversation, and
    closing again posts a second summary, turns the card closed again and owes the next reminder."""
    from tests.doubles.teams_driver import RECOVERIES
    assert (await teams.say("recover admin channel here", user=ADA, channel=RECOVERIES))[0] == 201
    await wait_answer(connector, "Recovery summaries will be posted in this channel")
    card = await closed_with_follow_up(teams, teams_bot, clock)
    await connector.wait_for(lambda c: c.method == "POST" and c.conversation == RECOVERIES.id
                             and "Recovered: R-1001" in c.shown)
    reminder = await reminder_in_chat(connector, teams_bot, clock)
    assert (await teams.execute(reminder, "reminder_reopen"))[0] == 200

    fix_again = await wait_step(connector, Step.FIX, count=2)
    clock.advance(minutes=5)
    status, body = await teams.execute(fix_again, "step_done")
    assert status == 200 and "actions" not in body["value"]
    compensate = await wait_step(connector, Step.COMPENSATE, count=2)  # nothing was given: it is asked again
    assert (await teams.execute(compensate, "nothing_needed"))[0] == 200
    follow_up = await wait_step(connector, Step.FOLLOW_UP, count=2)
    assert (await teams.execute(follow_up, "follow_up_tomorrow"))[0] == 200
    await wait_answer(connector, "is closed", count=2)
    summaries = await connector.wait_for(lambda c: c.method == "POST" and c.conversation == RECOVERIES.id
                                         and "Recovered: R-1001" in c.shown, count=2)
    assert len(summaries) == 2
    await connector.wait_for(lambda c: c.method == "PUT" and c.activity_id == card.id
                             and "R-1001 · closed" in c.shown, count=2)
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.is_closed and case.follow_up_on == clock.now().date() + timedelta(days=1)
    await reminder_in_chat(connector, teams_bot, clock, at=datetime.combine(
        case.follow_up_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=10), count=2)


async def test_a_reopen_whose_fix_step_teams_refused_is_healed_by_tapping_again(teams, connector, teams_bot, clock):
    """Review: reopened, but Teams refused the fix step's card; a second tap on "Still unhappy" said its checklist
    was below the case card while nothing was there. Now it posts the missing step."""
    card = await closed_with_follow_up(teams, teams_bot, clock)
    reminder = await reminder_in_chat(connector, teams_bot, clock)
    connector.fail_next(card.conversation, status=502, code="BadGateway")  # the fix step's post
    await teams.execute(reminder, "reminder_reopen")
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert not case.is_closed and Step.FIX not in case.step_posts

    status, body = await teams.execute(reminder, "reminder_reopen")
    assert status == 200 and "is open again" in answer_of(body)
    fix_again = await wait_step(connector, Step.FIX, count=2)
    assert fix_again.conversation == card.conversation
    assert Step.FIX in (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).step_posts


def test_the_reminder_card_names_the_customer_or_says_their_details_were_erased():
    """Review: without a customer the reminder read "Follow up with <what happened>", and an erased reference
    went unexplained. Both cards stay valid Adaptive Cards."""
    from dataclasses import replace
    from bot.cases import Case
    from cards import teams as cards
    from tests.doubles.bf_connector import card_problems
    case = Case(workspace=TENANT, id="R-1042", owner="a", owner_name="Amy", what_happened="cold soup",
                customer="table 4 <at>Ben</at>", opened_at=DAY_AFTER, closed_at=DAY_AFTER)
    text, card = cards.reminder_card(case, due=DAY_AFTER)
    assert text == "Follow up with table 4 <at>Ben</at> (R-1042)" and not card_problems(card)
    assert {"type": "TextRun", "text": "table 4 <at>Ben</at>"} in card["body"][1]["inlines"]  # typed: no markdown
    erased = replace(case, customer="", erased_at=DAY_AFTER)
    text, card = cards.reminder_card(erased, due=DAY_AFTER)
    assert text == "Follow up with the customer of R-1042" and not card_problems(card)
    assert "details were erased" in json.dumps(card)
    text, _ = cards.reminder_card(replace(case, customer=""), due=DAY_AFTER)
    assert text == "Follow up with the customer of R-1042: cold soup"
