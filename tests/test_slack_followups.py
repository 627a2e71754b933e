"""Follow-through in Slack, through the real HTTP entry point with the Slack double and an injected clock:
the follow-up reminder DM and its three buttons, the idle nudge, the admin settings, and a reminder that
fell due while the bot was down going out once on start. The outbox is driven by the test's clock (no sleeping)."""

import asyncio
import json
from datetime import datetime, timedelta, timezone

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
    assert "Follow up with cold soup, table 4 (R-1001)" in reminder.args["text"]
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
    clock.advance(minutes=30)
    await rounds(bot.recovery.outbox)
    assert len(dms(fake_slack, "has been open")) == 1
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).nudged_at is not None

    # the card shows how long it has been open when it is drawn
    await slack.click(step_posts(fake_slack, card, Step.APOLOGISE)[0], "step_done")
    drawn = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"])
    assert "open 45 min" in shown(drawn[-1])


async def test_admins_set_the_reminder_hour_and_the_idle_time(slack, fake_slack, bot):
    await slack.command("admin reminders 8", user="UADMIN", user_name="ada")
    await fake_slack.wait_for("response_url", where=lambda c: "arrive at 08:00" in c.args["text"])
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
