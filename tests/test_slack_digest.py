"""The weekly digest and the export in Slack, through the real entry points: the digest (Block Kit, validated
by the fake) with its chart uploaded by files.uploadV2 into the post's thread, scheduled by an injected
clock (no sleeping), exactly one after a restart between "due" and "sent"; the export as two CSV files in
the admin's DM; every bad input a sentence that changes nothing."""

import asyncio
import csv
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot import digest as digests
from bot.checklist import Step
from bot.recovery import Recovery
from bot.store import open_store
from bot.store.tiny import TinyStore
from handlers.slack.digest import post_digest
from tests.conftest import SIGNING_SECRET, FakeClock, RunningBot, bot_settings
from tests.doubles.slack_client import SlackDriver
from tests.flows import give, open_case, walk_to
from tests.flows import next_slots

MONDAY_9 = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)  # the first default slot after the FakeClock's now
PNG = b"\x89PNG\r\n\x1a\n"
DEADLINE = 10.0


def digests_posted(fake) -> list:
    return [c for c in fake.of("chat.postMessage") if c.answer.get("ok") and "Weekly recovery digest" in c.args["text"]]


async def told(fake, words: str):
    return (await fake.wait_for("response_url", where=lambda c: words in c.args["text"]))[-1]


async def a_gift(slack, fake, amount="12.50"):
    card = await open_case(slack, fake, "cold soup, table 4")
    compensate = await walk_to(slack, fake, card, Step.COMPENSATE)
    status, _ = await give(slack, fake, compensate, amount)
    assert status == 200
    await fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card.answer["ts"]
                        and "5/5" in c.args["text"])


async def test_digest_now_posts_the_digest_and_its_chart_in_the_thread(slack, fake_slack, bot):
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await a_gift(slack, fake_slack)
    await slack.command("admin digest now", user="UADMIN", user_name="ada")
    await told(fake_slack, "Sent the last seven days' digest")
    [post] = digests_posted(fake_slack)
    assert post.args["channel"] == "CREC"
    shown = json.dumps(post.args["blocks"], ensure_ascii=False)
    for heading in ("Recoveries", "Spend by role", "Top root causes", "Repeat customers", "Recovered most",
                    "Recovered fastest", "Recognised by managers"):
        assert heading in shown
    assert "staff: $12.50 given (1) · limit $25 per case, $100 per person per week" in shown
    [chart] = fake_slack.shared
    assert (chart["channel"], chart["thread_ts"], chart["filename"]) == ("CREC", post.answer["ts"], "amends-digest.png")
    assert chart["data"][:8] == PNG and 5_000 < len(chart["data"]) < 200_000
    assert [c.method for c in fake_slack.calls if c.method.startswith("files") or c.method == "upload"] == \
        ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


@pytest.mark.parametrize("text, sentence", [
    ("admin digest now", "Only Amends admins"),
    ("admin digest monday 9", "Only Amends admins"),
    ("admin export", "Only Amends admins"),
])
async def test_digest_and_export_are_for_admins(slack, fake_slack, bot, text, sentence):
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await slack.command(text, user="U1")
    await told(fake_slack, sentence)
    assert digests_posted(fake_slack) == [] and fake_slack.shared == []
    assert await digests.schedule_of(bot.recovery.store, workspace="T1") == digests.DEFAULT


@pytest.mark.parametrize("text, sentence", [
    ("admin digest monday 24", "'24' isn't an hour. Use a whole hour from 0 to 23"),
    ("admin digest monday -1", "isn't an hour"),
    ("admin digest someday 9", "isn't a day of the week"),
    ("admin digest monday", "Say a day and an hour"),
    ("admin export 2026-11-20 2026-11-01", "The end (2026-11-01) is before the start (2026-11-20)"),
    ("admin export 2026-02-30", "2026-02-30 isn't a date on the calendar"),
    ("admin export 2026-11-01 2026-11-02 2026-11-03", "Give at most two dates"),
    ("admin export last-week", "isn't a date. Write it as YYYY-MM-DD"),
])
async def test_bad_digest_and_export_commands_get_a_sentence_and_change_nothing(slack, fake_slack, bot, text,
                                                                                 sentence):
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    before = await bot.recovery.store.owed_outbox()
    await slack.command(text, user="UADMIN", user_name="ada")
    await told(fake_slack, sentence)
    assert await bot.recovery.store.owed_outbox() == before
    assert await digests.schedule_of(bot.recovery.store, workspace="T1") == digests.DEFAULT
    assert fake_slack.shared == [] and fake_slack.of("files.getUploadURLExternal") == []


async def test_digest_now_without_a_channel_says_how_to_set_one(slack, fake_slack, bot):
    await slack.command("admin digest now", user="UADMIN", user_name="ada")
    await told(fake_slack, "No recovery channel is set")
    assert digests_posted(fake_slack) == []


async def test_the_schedule_moves_the_next_digest_and_off_stops_it(slack, fake_slack, bot):
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    [first] = [m for m in await bot.recovery.store.owed_outbox() if m.kind == digests.KIND]
    assert first.due == MONDAY_9
    await slack.command("admin digest friday 17", user="UADMIN", user_name="ada")
    answer = await told(fake_slack, "Saved: the digest goes to the recovery channel Fridays at 17:00")
    assert "Fri 27 Nov at 17:00" in answer.args["text"]
    assert [m.due for m in await bot.recovery.store.owed_outbox() if m.kind == digests.KIND] == \
        [datetime(2026, 11, 27, 17, tzinfo=timezone.utc)]
    await slack.command("admin digest off", user="UADMIN", user_name="ada")
    await told(fake_slack, "The weekly digest is off")
    assert [m for m in await bot.recovery.store.owed_outbox() if m.kind == digests.KIND] == []


async def until_sent(fake, count: int = 1) -> list:
    await fake.wait_for("files.completeUploadExternal", count=count, timeout=DEADLINE)
    return digests_posted(fake)


async def test_the_scheduled_digest_goes_out_when_its_hour_comes(slack, fake_slack, bot, clock):
    bot.recovery.outbox.clock = clock
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await a_gift(slack, fake_slack)
    clock.current = MONDAY_9 - timedelta(seconds=1)
    bot.recovery.outbox.wake()
    await bot.recovery.outbox.after_round(bot.recovery.outbox.rounds)
    assert digests_posted(fake_slack) == []
    clock.current = MONDAY_9 + timedelta(seconds=1)
    bot.recovery.outbox.wake()
    [post] = await until_sent(fake_slack)
    assert "0 closed · 1 opened · median time to recover — · $12.50 given" in json.dumps(post.args["blocks"],
                                                                                       ensure_ascii=False)
    assert post.args["metadata"]["event_payload"]["key"] == f"digest:T1:{MONDAY_9.isoformat()}"
    assert await next_slots(bot.recovery.outbox, [MONDAY_9 + digests.WEEK]) == [MONDAY_9 + digests.WEEK]


async def test_restart_between_digest_due_and_digest_sent_sends_exactly_one(fake_slack, clock, tmp_path, http):
    path = str(tmp_path / "amends.json")
    first = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    try:
        first.recovery.outbox.clock = clock
        driver = SlackDriver(bot_url=first.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
        await driver.command("admin channel <#CREC|recoveries>", user="UADMIN", user_name="ada")
        await told(fake_slack, "Saved")
        await a_gift(driver, fake_slack)
    finally:
        await first.stop()
    clock.current = MONDAY_9 + timedelta(minutes=5)  # it fell due while the bot was down
    assert digests_posted(fake_slack) == []

    second = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    try:
        second.recovery.outbox.clock = clock
        second.recovery.outbox.wake()
        [post] = await until_sent(fake_slack)
        outbox = second.recovery.outbox
        owed = await next_slots(outbox, [MONDAY_9 + digests.WEEK])
        for _ in range(2):  # a couple more rounds: nothing else goes out
            seen = outbox.rounds
            outbox.wake()
            await asyncio.wait_for(outbox.after_round(seen), DEADLINE)
    finally:
        await second.stop()
    assert len(digests_posted(fake_slack)) == 1 and len(fake_slack.shared) == 1
    assert post.args["channel"] == "CREC" and "$12.50 given" in post.args["text"]
    assert owed == [MONDAY_9 + digests.WEEK]

    third = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    try:  # and a start after it was sent sends nothing more
        third.recovery.outbox.clock = clock
        seen = third.recovery.outbox.rounds
        third.recovery.outbox.wake()
        await asyncio.wait_for(third.recovery.outbox.after_round(seen), DEADLINE)
    finally:
        await third.stop()
    assert len(digests_posted(fake_slack)) == 1


async def test_export_sends_two_csv_files_to_the_admin_s_dm(slack, fake_slack, bot):
    await a_gift(slack, fake_slack, "12.50")
    await slack.command("admin export", user="UADMIN", user_name="ada")
    answer = await told(fake_slack, "Sent to our DM")
    assert "1 case(s) and 1 ledger entry, 2026-10-27 to 2026-11-25" in answer.args["text"]
    cases, ledger = fake_slack.shared
    assert cases["channel"] == ledger["channel"] == "DBOTUADMIN" and cases["thread_ts"] is None
    assert (cases["filename"], ledger["filename"]) == ("amends-cases_2026-10-27_2026-11-25.csv",
                                                      "amends-ledger_2026-10-27_2026-11-25.csv")
    entries = list(csv.DictReader(io.StringIO(ledger["data"].decode("utf-8"), newline="")))
    recorded = await bot.recovery.store.ledger(workspace="T1")
    assert sum(Decimal(e["amount"]) for e in entries) == sum(e.amount for e in recorded) == Decimal("12.50")
    [case] = list(csv.DictReader(io.StringIO(cases["data"].decode("utf-8"), newline="")))
    assert (case["case"], case["customer"], case["given_amount"]) == ("R-1001", "", "12.50")
    assert "1 case(s), 1 ledger entry" in cases["initial_comment"]


class StubClient:
    """Just enough of a Web API client to see what a send in doubt does."""

    def __init__(self, history: list[dict]):
        self.history, self.posted, self.uploaded = history, [], []

    async def conversations_history(self, **args):
        self.oldest = float(args["oldest"])
        return {"ok": True, "messages": self.history}

    async def chat_postMessage(self, **args):
        self.posted.append(args)
        return {"ok": True, "channel": args["channel"], "ts": "1700000001.000001"}

    async def files_upload_v2(self, **args):
        self.uploaded.append(args)
        return {"ok": True}


async def test_a_digest_in_doubt_is_looked_up_first_and_posted_only_if_it_never_arrived():
    store = TinyStore(path=None)
    recovery = Recovery(store=store, clock=FakeClock(), currency="USD", tz=timezone.utc)
    try:
        slot = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)  # long before this attempt
        digest = await digests.build(recovery, workspace="T1", since=slot - digests.WEEK, until=slot)
        key = f"digest:T1:{slot.isoformat()}"
        ours = {"ts": "1700000000.000009", "metadata": {"event_type": "amends_outbox", "event_payload": {"key": key}}}
        arrived = StubClient([{"ts": "1700000000.000008"}, ours])
        assert await post_digest(arrived, recovery, digest, channel="CREC", key=key, in_doubt=True) == ours["ts"]
        assert arrived.posted == [] and arrived.uploaded == []
        # looked up from (just before) the digest's own end, however long ago that was: not "the last 3 days"
        assert digest.until.timestamp() - 3600 == arrived.oldest
        lost = StubClient([{"ts": "1700000000.000008", "metadata": {"event_payload": {"key": "digest:T1:other"}}}])
        assert await post_digest(lost, recovery, digest, channel="CREC", key=key, in_doubt=True) == "1700000001.000001"
        [posted] = lost.posted
        assert posted["metadata"]["event_payload"]["key"] == key
        [chart] = lost.uploaded
        assert chart["thread_ts"] == "1700000001.000001" and chart["file"][:8] == PNG
    finally:
        await store.close()


async def test_a_chart_slack_refuses_does_not_post_the_digest_twice(slack, fake_slack, bot, clock):
    """The post is in when the chart's upload is rate-limited: retrying would post the digest a second time."""
    bot.recovery.outbox.clock = clock
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await a_gift(slack, fake_slack)
    fake_slack.fail_next("files.getUploadURLExternal", error="ratelimited", status=429, retry_after=1)
    clock.current = MONDAY_9 + timedelta(seconds=1)
    bot.recovery.outbox.wake()
    await fake_slack.wait_for("files.getUploadURLExternal", timeout=DEADLINE)
    assert await next_slots(bot.recovery.outbox, [MONDAY_9 + digests.WEEK]) == [MONDAY_9 + digests.WEEK]
    clock.current = MONDAY_9 + timedelta(minutes=5)  # long past any Retry-After: nothing more goes out
    seen = bot.recovery.outbox.rounds
    bot.recovery.outbox.wake()
    await asyncio.wait_for(bot.recovery.outbox.after_round(seen), DEADLINE)
    assert len(digests_posted(fake_slack)) == 1 and fake_slack.shared == []


async def test_digest_now_says_so_when_the_chart_could_not_be_uploaded(slack, fake_slack, bot):
    """An install made before files:write was asked for: the digest still arrives, and the admin is told why
    its chart didn't."""
    from tests.doubles.slack_api import BOT_SCOPES, BOT_TOKEN
    fake_slack.add_token(BOT_TOKEN, team="T1", scopes=[s for s in BOT_SCOPES if s != "files:write"])
    await bot.recovery.set_recovery_channel(workspace="T1", channel="CREC")
    await slack.command("admin digest now", user="UADMIN", user_name="ada")
    answer = await told(fake_slack, "but without its chart")
    assert "missing_scope" in answer.args["text"] and "files:write" in answer.args["text"]
    assert len(digests_posted(fake_slack)) == 1 and fake_slack.shared == []


async def test_a_schedule_set_before_any_recovery_channel_starts_when_one_is_chosen(slack, fake_slack, bot):
    await slack.command("admin digest friday 17", user="UADMIN", user_name="ada")
    await told(fake_slack, "Saved: Fridays at 17:00. It starts once a recovery channel is set")
    assert [m for m in await bot.recovery.store.owed_outbox() if m.kind == digests.KIND] == []
    await slack.command("admin channel <#CREC|recoveries>", user="UADMIN", user_name="ada")
    await told(fake_slack, "Recovery summaries will go to that channel")
    assert [m.due for m in await bot.recovery.store.owed_outbox() if m.kind == digests.KIND] == \
        [datetime(2026, 11, 27, 17, tzinfo=timezone.utc)]


def test_what_people_typed_is_escaped_in_the_slack_digest():
    from cards import digest as cards
    person = digests.Person(person="U9", name="<!channel> Zed", recoveries=2, median=timedelta(minutes=4),
                            recognitions=1)
    digest = digests.Digest(workspace="T1", since=MONDAY_9 - digests.WEEK, until=MONDAY_9, currency="USD", opened=2,
                            closed=2, spent=Decimal(0), spend=(), median=timedelta(minutes=4),
                            root_causes=(("<@U1> & <https://x.test|click>", 2),), unrecorded_causes=0,
                            repeat_customers=(("<!here>", 2),), most=(person,), fastest=(person,),
                            recognised=(person,), per_day=())
    text, blocks = cards.slack(digest, tz=timezone.utc)
    shown = json.dumps(blocks)
    assert "<!channel>" not in shown and "<!here>" not in shown and "<@U1>" not in shown and "<https" not in shown
    assert "&lt;!channel&gt; Zed: 2 recoveries" in shown
    assert "&lt;@U1&gt; &amp; &lt;https://x.test|click&gt; (2)" in shown
