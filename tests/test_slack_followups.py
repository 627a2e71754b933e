"""Follow-through in Slack, through the real HTTP entry point with the Slack double and an injected clock:
the follow-up reminder DM and its three buttons, the idle nudge, the admin settings, and a reminder that
fell due while the bot was down going out once on start. The outbox is driven by the test's clock (no sleeping)."""

import asyncio
import json
from datetime import datetime, timedelta, timezone

from bot.cases import MessageRef
from bot.checklist import Step
from bot.followups import REMINDER
from bot.store import open_store
from tests.conftest import SIGNING_SECRET, RunningBot, bot_settings
from tests.doubles.slack_client import SlackDriver
from tests.flows import open_case, step_posts, wait_step, walk_to

UTC = timezone.utc
DAY_AFTER = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # the follow-up "tomorrow" of the test clock, at 10:00
DM = "DBOTU1"  # the fake's DM channel with U1


def shown(call) -> str:
    return call.args.get("text", "") + json.dumps(call.args.get("blocks", []), ensure_ascii=False)


def dms(fake, words: str) -> list:
    return [c for c in fake.of("chat.postMessage") if c.args.get("channel") == DM and words in shown(c)]


async def rounds(outbox, count: int = 2) -> None:
    """Let the running outbox make `count` more rounds (after a wake), with a deadline."""
    for _ in range(count):
        seen = outbox.rounds
        outbox.wake()
        await asyncio.wait_for(outbox.after_round(seen), 5)


async def closed_with_follow_up(slack, fake, bot, clock):
    bot.recovery.outbox.clock = clock  # the outbox runs on the test's clock
    card = await open_case(slack, fake, "cold soup, table 4")
    compensate = await walk_to(slack, fake, card, Step.COMPENSATE)
    await slack.click(compensate, "nothing_needed")
    follow_up = await wait_step(fake, card, Step.FOLLOW_UP)
    await slack.click(follow_up, "follow_up_tomorrow")
    await fake.wait_for("chat.postMessage", where=lambda c: "is closed" in (c.args.get("text") or ""))
    return card


async def reminder_dm(fake, bot, clock, *, at: datetime = DAY_AFTER, count: int = 1):
    clock.current = at
    bot.recovery.outbox.wake()
    return (await fake.wait_for("chat.postMessage", count=count,
                                where=lambda c: c.args.get("channel") == DM and "Follow up with" in shown(c)))[-1]


async def test_the_owner_is_reminded_on_the_day_and_done_records_they_are_happy(slack, fake_slack, bot, clock):
    await closed_with_follow_up(slack, fake_slack, bot, clock)
    clock.current = DAY_AFTER - timedelta(minutes=1)
    await rounds(bot.recovery.outbox)
    assert dms(fake_slack, "Follow up with") == []  # not before its hour

    reminder = await reminder_dm(fake_slack, bot, clock)
    assert reminder.args["text"] == "Follow up with the customer of R-1001: cold soup, table 4"  # none was named
    for button in ("Done — they're happy", "Still unhappy — reopen", "Snooze a day"):
        assert button in shown(reminder)

    # Ben can't answer Amy's reminder: a sentence, and nothing changes
    await slack.click(reminder, "reminder_done", user="U2", user_name="ben")
    told = await fake_slack.wait_for("response_url", where=lambda c: "only they can work on it" in c.args["text"])
    assert "R-1001" in told[0].args["text"]
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).follow_up_outcome == ""

    await slack.click(reminder, "reminder_done")
    updated = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == reminder.answer["ts"])
    assert "they're happy" in shown(updated[-1]) and "actions" not in json.dumps(updated[-1].args["blocks"])
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.follow_up_outcome == "happy" and case.is_closed

    await slack.click(reminder, "reminder_done")  # a double press
    await fake_slack.wait_for("response_url", where=lambda c: "already followed up" in c.args["text"])
    assert await bot.recovery.case(workspace="T1", case_id="R-1001") == case
    await rounds(bot.recovery.outbox)
    assert len(dms(fake_slack, "Follow up with")) == 1  # said once


async def test_still_unhappy_reopens_the_case_at_the_fix_step_and_tells_the_channel(slack, fake_slack, bot, clock):
    card = await closed_with_follow_up(slack, fake_slack, bot, clock)
    reminder = await reminder_dm(fake_slack, bot, clock)
    await slack.click(reminder, "reminder_reopen")

    fix_again = (await fake_slack.wait_for(
        "chat.postMessage", count=2, where=lambda c: c.args.get("thread_ts") == card.answer["ts"]
        and "3/5" in (c.args.get("text") or "")))[-1]
    assert "step_done" in json.dumps(fix_again.args["blocks"])  # live again, with its buttons
    notice = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C1"
                                       and "is reopened" in (c.args.get("text") or ""))
    assert "thread_ts" not in notice[0].args and "still unhappy" in notice[0].args["text"]
    reopened_card = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"]
                                              and "· open" in c.args["text"])
    assert reopened_card
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert not case.is_closed and case.current_step is Step.FIX and len(case.reopenings) == 1
    assert await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == reminder.answer["ts"]
                                     and "reopened" in shown(c))

    await slack.click(reminder, "reminder_reopen")  # a double press: told, nothing changes
    await fake_slack.wait_for("response_url", where=lambda c: "is open again" in c.args["text"])
    assert len(step_posts(fake_slack, card, Step.FIX)) == 2

    # the checklist goes on from the fix step, and the next close reminds again
    await slack.click(fix_again, "step_done")
    # nothing was needed the first time, so this time something may be given (the ledger has no entry yet)
    compensate = (await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: c.args.get(
        "thread_ts") == card.answer["ts"] and "4/5" in (c.args.get("text") or "")))[-1]
    await slack.click(compensate, "nothing_needed")
    follow_up = (await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: c.args.get(
        "thread_ts") == card.answer["ts"] and "5/5" in (c.args.get("text") or "")))[-1]  # asked again
    await slack.click(follow_up, "follow_up_tomorrow")
    await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: "is closed" in (c.args.get("text") or ""))
    await reminder_dm(fake_slack, bot, clock, at=DAY_AFTER + timedelta(days=1), count=2)


async def test_snooze_reminds_again_a_day_later(slack, fake_slack, bot, clock):
    await closed_with_follow_up(slack, fake_slack, bot, clock)
    reminder = await reminder_dm(fake_slack, bot, clock)
    await slack.click(reminder, "reminder_snooze")
    updated = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == reminder.answer["ts"])
    assert "Fri 27 Nov 2026 at 10:00" in shown(updated[-1])
    [owed] = [m for m in await bot.recovery.store.owed_outbox() if m.kind == REMINDER]
    assert owed.due == DAY_AFTER + timedelta(days=1)

    await slack.click(reminder, "reminder_snooze")  # a double press owes nothing more
    await fake_slack.wait_for("chat.update", count=2, where=lambda c: c.args["ts"] == reminder.answer["ts"])
    assert [m.due for m in await bot.recovery.store.owed_outbox() if m.kind == REMINDER] == [owed.due]
    await reminder_dm(fake_slack, bot, clock, at=owed.due, count=2)


async def test_an_idle_case_nudges_its_owner_once(slack, fake_slack, bot, clock):
    bot.recovery.outbox.clock = clock
    card = await open_case(slack, fake_slack, "cold soup, table 4")
    clock.advance(minutes=14)
    await rounds(bot.recovery.outbox)
    assert dms(fake_slack, "has been open") == []
    clock.advance(minutes=1)
    bot.recovery.outbox.wake()
    [nudge] = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == DM
                                        and "has been open" in shown(c))
    assert nudge.args["text"] == "R-1001 has been open 15 min — next: apologise"
    # the card, left as it was drawn at the open, is redrawn with its age (and when that was true)
    aged = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"])
    opened = int(clock.now().timestamp()) - 15 * 60
    assert f"open 15 min as of <!date^{opened + 15 * 60}^{{time}}|" in shown(aged[-1])
    assert f"(opened <!date^{opened}^{{time}}|" in shown(aged[-1])
    clock.advance(minutes=30)
    await rounds(bot.recovery.outbox)
    assert len(dms(fake_slack, "has been open")) == 1
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).nudged_at is not None

    # the card shows how long it has been open when it is drawn
    await slack.click(step_posts(fake_slack, card, Step.APOLOGISE)[0], "step_done")
    drawn = await fake_slack.wait_for("chat.update", count=2, where=lambda c: c.args["ts"] == card.answer["ts"])
    assert "open 45 min" in shown(drawn[-1])


async def test_admins_set_the_reminder_hour_and_the_idle_time(slack, fake_slack, bot, clock):
    await closed_with_follow_up(slack, fake_slack, bot, clock)  # its reminder is owed tomorrow at 10:00
    await slack.command("admin reminders 8", user="UADMIN", user_name="ada")
    await fake_slack.wait_for("response_url", where=lambda c: "arrive at 08:00" in c.args["text"]
                              and "The one already scheduled moves to it too." in c.args["text"])
    assert [m.due for m in await bot.recovery.store.owed_outbox() if m.kind == REMINDER] == [
        DAY_AFTER - timedelta(hours=2)]
    await slack.command("admin idle 30", user="UADMIN", user_name="ada")
    await fake_slack.wait_for("response_url", where=lambda c: "untouched for 30 min" in c.args["text"])
    for typed, refusal in (("admin reminders 24", "from 0 to 23"), ("admin idle soon", "from 1 to 1440"),
                           ("admin reminders", "needs one hour")):
        await slack.command(typed, user="UADMIN", user_name="ada")
        await fake_slack.wait_for("response_url", where=lambda c, r=refusal: r in c.args["text"])
    await slack.command("admin idle 5", user="U1")
    await fake_slack.wait_for("response_url", where=lambda c: "Only Amends admins" in c.args["text"])
    store = bot.recovery.store
    assert await store.reference(workspace="T1", key="config:reminder_hour") == {"hour": 8}
    assert await store.reference(workspace="T1", key="config:idle_minutes") == {"minutes": 30}


async def test_a_reminder_due_while_the_bot_was_down_goes_out_once_on_start(fake_slack, clock, tmp_path, http):
    path = str(tmp_path / "amends.json")
    first = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    slack = SlackDriver(bot_url=first.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
    try:
        await closed_with_follow_up(slack, fake_slack, first, clock)
    finally:
        await first.stop()

    clock.current = DAY_AFTER + timedelta(hours=5)  # it fell due while the bot was down
    second = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    try:
        second.recovery.outbox.clock = clock
        await reminder_dm(fake_slack, second, clock, at=clock.current)
        await rounds(second.recovery.outbox, 3)
    finally:
        await second.stop()
    assert len(dms(fake_slack, "Follow up with")) == 1


async def test_the_reminder_names_the_customer_and_says_when_retention_erased_them(slack, fake_slack, bot, clock):
    """Review: a reminder said "Follow up with <what happened>" when no customer was named, and nothing when
    retention had erased the reference before the day (a short retention, a follow-up weeks away)."""
    from dataclasses import replace
    from bot.retention import erase
    await closed_with_follow_up(slack, fake_slack, bot, clock)
    store = bot.recovery.store
    await store.change_case(workspace="T1", case_id="R-1001",
                            change=lambda c: replace(c, customer="table 4 <!channel>"))
    reminder = await reminder_dm(fake_slack, bot, clock)
    assert reminder.args["text"] == "Follow up with table 4 &lt;!channel&gt; (R-1001)"
    assert "<!channel>" not in shown(reminder) and "erased" not in shown(reminder)

    await slack.click(reminder, "reminder_snooze")
    await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == reminder.answer["ts"])
    await store.change_case(workspace="T1", case_id="R-1001", change=lambda c: erase(c, at=clock.now()))
    again = await reminder_dm(fake_slack, bot, clock, at=DAY_AFTER + timedelta(days=1), count=2)
    assert again.args["text"] == "Follow up with the customer of R-1001"
    assert "details were erased" in shown(again) and "table 4 &lt;" not in shown(again)
    for button in ("Done — they're happy", "Still unhappy — reopen", "Snooze a day"):
        assert button in shown(again)


async def test_a_reopened_case_closes_again_with_a_new_summary_and_the_card_closed(slack, fake_slack, bot, clock):
    """Review: closing a reopened case posts a second summary in the recovery channel (the first close's was
    sent, so its key is free again) and turns the card closed again."""
    from tests.test_slack_recovery import set_recovery_channel
    await set_recovery_channel(slack, fake_slack)
    card = await closed_with_follow_up(slack, fake_slack, bot, clock)

    def summaries():
        return [c for c in fake_slack.of("chat.postMessage") if c.args.get("channel") == "CREC"
                and "Recovered R-1001" in (c.args.get("text") or "")]
    await fake_slack.wait_for("chat.postMessage", where=lambda c: c in summaries())
    reminder = await reminder_dm(fake_slack, bot, clock)
    await slack.click(reminder, "reminder_reopen")
    fix_again = (await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: c.args.get(
        "thread_ts") == card.answer["ts"] and "3/5" in (c.args.get("text") or "")))[-1]
    await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"]
                              and "· open" in c.args["text"])
    clock.advance(hours=2)
    await slack.click(fix_again, "step_done")
    compensate = (await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: c.args.get(
        "thread_ts") == card.answer["ts"] and "4/5" in (c.args.get("text") or "")))[-1]
    await slack.click(compensate, "nothing_needed")
    follow_up = (await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: c.args.get(
        "thread_ts") == card.answer["ts"] and "5/5" in (c.args.get("text") or "")))[-1]
    await slack.click(follow_up, "no_follow_up")
    await fake_slack.wait_for("chat.postMessage", where=lambda c: c in summaries(), count=2)
    assert len(summaries()) == 2
    # the wait for the follow-up day is not read as a slow recovery: how long of it was recovering is said
    assert "1 d (reopened once; 2 h of it recovering)" in shown(summaries()[-1])
    await fake_slack.wait_for("chat.update", count=2, where=lambda c: c.args["ts"] == card.answer["ts"]
                              and "· closed" in c.args["text"])
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.is_closed and case.summary == MessageRef(channel="CREC", id=summaries()[-1].answer["ts"])


async def test_a_reopen_whose_fix_step_slack_refused_is_healed_by_tapping_again(slack, fake_slack, bot, clock):
    """Review: the case was reopened but Slack refused the fix step's post; a second tap on "Still unhappy"
    said "its checklist is in the case thread" while nothing was there. Now it posts the missing step."""
    card = await closed_with_follow_up(slack, fake_slack, bot, clock)
    reminder = await reminder_dm(fake_slack, bot, clock)
    fake_slack.fail_next("chat.postMessage", error="ratelimited")  # the fix step's post
    await slack.click(reminder, "reminder_reopen")
    await fake_slack.wait_for("chat.postMessage", where=lambda c: c.answer.get("error") == "ratelimited")
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert not case.is_closed and Step.FIX not in case.step_posts

    await slack.click(reminder, "reminder_reopen")
    await fake_slack.wait_for("response_url", where=lambda c: "is open again" in c.args["text"])
    fix_again = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get(
        "thread_ts") == card.answer["ts"] and "3/5" in (c.args.get("text") or "") and c.answer.get("ok"), count=2)
    assert "step_done" in json.dumps(fix_again[-1].args["blocks"])


async def test_a_reopened_case_left_idle_nudges_again_counting_from_the_reopening(slack, fake_slack, bot, clock):
    """Review: the nudge of a reopened case said "has been open 1 d 0 h" (since it was first opened)."""
    await closed_with_follow_up(slack, fake_slack, bot, clock)
    reminder = await reminder_dm(fake_slack, bot, clock)
    await slack.click(reminder, "reminder_reopen")
    await fake_slack.wait_for("chat.postMessage", where=lambda c: "is reopened" in (c.args.get("text") or ""))
    clock.advance(minutes=15)
    bot.recovery.outbox.wake()
    [nudge] = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == DM
                                        and "has been open" in shown(c))
    assert nudge.args["text"] == "R-1001 has been open again for 15 min — next: fix"
