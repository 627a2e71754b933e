"""A frontline employee recovers a customer in Slack, end to end, through the real HTTP entry point."""

import json
from datetime import date
from decimal import Decimal

from bot.checklist import Step
from tests.flows import give, open_case, opened_view, step_posts, thread_posts, wait_step, walk_to


async def set_recovery_channel(slack, fake, channel="CREC"):
    status, _ = await slack.command(f"admin channel <#{channel}|recoveries>", user="UADMIN", user_name="ada")
    assert status == 200
    answer = await fake.wait_for("response_url", where=lambda c: "Saved" in c.args["text"])
    return answer


async def test_a_whole_recovery_from_command_to_summary(slack, fake_slack, bot, clock):
    await set_recovery_channel(slack, fake_slack)
    card = await open_case(slack, fake_slack, "cold soup, table 4, waited 40 min")
    assert card.args["channel"] == "C1"
    assert "R-1001 · cold soup, table 4, waited 40 min · Amy · open" in card.args["text"]

    # apologise: one tap
    apologise = step_posts(fake_slack, card, Step.APOLOGISE)[0]
    assert any("sorry" in json.dumps(b) for b in apologise.args["blocks"]), "suggested words are shown"
    clock.advance(seconds=20)
    await slack.click(apologise, "step_done")
    empathise = await wait_step(fake_slack, card, Step.EMPATHISE)
    ticked = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == apologise.answer["ts"])
    assert "done" in ticked[-1].args["text"] and "actions" not in json.dumps(ticked[-1].args["blocks"])
    card_updates = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"])
    assert "✅ Apologise" in json.dumps(card_updates[-1].args["blocks"], ensure_ascii=False)

    # empathise: done with a note, through the note form
    await slack.click(empathise, "step_note")
    note_form = await opened_view(fake_slack, 1)
    status, body = await slack.submit(note_form, {"note": "They're celebrating an anniversary"})
    assert status == 200 and body == ""
    fix = await wait_step(fake_slack, card, Step.FIX)
    await slack.click(fix, "step_done")

    # compensate: the allowance is shown, the gift recorded at once
    compensate = await wait_step(fake_slack, card, Step.COMPENSATE)
    assert "You can give up to $25 here · $100 left this week" in json.dumps(compensate.args["blocks"], ensure_ascii=False)
    clock.advance(seconds=60)
    status, body = await give(slack, fake_slack, compensate, "15", kind="voucher")
    assert (status, body) == (200, "")
    ledger = await bot.recovery.store.ledger(workspace="T1")
    assert [(e.case_id, e.employee, e.kind, e.amount, e.currency) for e in ledger] == [
        ("R-1001", "U1", "voucher", Decimal("15"), "USD")]

    # follow up tomorrow: the case closes and the summary reaches the recovery channel
    follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
    clock.advance(seconds=20)
    await slack.click(follow_up, "follow_up_tomorrow")
    summary = (await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC"
                                         and "Recovered" in c.args["text"]))[0]
    shown = json.dumps(summary.args["blocks"], ensure_ascii=False)
    for expected in ("R-1001", "<@U1>", "cold soup, table 4, waited 40 min", "voucher · $15", "1 min 40 s",
                     "Thu 26 Nov 2026", "anniversary"):
        assert expected in shown, expected
    closing = await fake_slack.wait_for("chat.postMessage", where=lambda c: "is closed" in c.args["text"])
    assert "<#CREC>" in json.dumps(closing[0].args["blocks"])
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.is_closed and case.follow_up_on == date(2026, 11, 26) and case.summary.channel == "CREC"
    await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"]
                              and "closed" in c.args["text"])


async def test_with_no_recovery_channel_the_summary_stays_in_the_thread_and_admins_are_told(slack, fake_slack):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    await slack.click(compensate, "nothing_needed")
    follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
    await slack.click(follow_up, "no_follow_up")
    closing = await fake_slack.wait_for("chat.postMessage", where=lambda c: "is closed" in c.args["text"])
    assert "No recovery channel is set" in json.dumps(closing[0].args["blocks"])
    assert "/recover admin channel" in json.dumps(closing[0].args["blocks"])
    await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card.answer["ts"]
                              and "Recovered" in c.args["text"])
    told = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DBOTUBOSS")
    assert "/recover admin channel" in told[0].args["text"]


async def test_recover_alone_opens_a_form_and_an_empty_form_is_refused_in_place(slack, fake_slack, bot):
    status, body = await slack.command("", channel="C1")
    assert (status, body) == (200, "")
    form = await opened_view(fake_slack, 1)
    assert form.args["view"]["callback_id"] == "new_case"

    status, body = await slack.submit(form, {"what": "   ", "customer": ""})
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors" and "what happened" in answer["errors"]["what"].lower()
    assert await bot.recovery.open_cases(workspace="T1", owner="U1") == []

    status, body = await slack.submit(form, {"what": "room not cleaned", "customer": "room 212"})
    assert (status, body) == (200, "")
    posts = await fake_slack.wait_for("chat.postMessage", count=2)
    assert posts[0].args["channel"] == "C1" and "room not cleaned" in posts[0].args["text"]
    [case] = await bot.recovery.open_cases(workspace="T1", owner="U1")
    assert case.customer == "room 212"


async def test_where_the_bot_cannot_post_the_case_goes_to_a_dm(slack, fake_slack, bot):
    fake_slack.cannot_post.add("GPRIVATE")
    card = await open_case(slack, fake_slack, "lost booking", channel="GPRIVATE")
    assert card.args["channel"] == "DBOTU1"
    told = await fake_slack.wait_for("response_url")
    assert "DM" in told[0].args["text"] and told[0].args["response_type"] == "ephemeral"
    # a DM between two people is the same: the bot can't post there
    card = await open_case(slack, fake_slack, "wrong order", channel="D0PEOPLE")
    assert card.args["channel"] == "DBOTU1"
    assert len(await bot.recovery.open_cases(workspace="T1", owner="U1")) == 2


async def test_a_click_on_someone_elses_case_is_refused_and_changes_nothing(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    apologise = step_posts(fake_slack, card, Step.APOLOGISE)[0]
    updates_before = len(fake_slack.of("chat.update"))
    status, _ = await slack.click(apologise, "step_done", user="U2", user_name="ben")
    assert status == 200
    told = await fake_slack.wait_for("response_url")
    assert "Amy's case (R-1001)" in told[0].args["text"]
    assert told[0].args["response_type"] == "ephemeral" and told[0].args["replace_original"] is False
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.done == {} and len(fake_slack.of("chat.update")) == updates_before


async def test_a_double_click_moves_the_checklist_once(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    apologise = step_posts(fake_slack, card, Step.APOLOGISE)[0]
    first = slack.click_body(apologise, "step_done")
    second = slack.click_body(apologise, "step_done")
    assert (await slack.post(first))[0] == 200
    assert (await slack.post(second))[0] == 200
    told = await fake_slack.wait_for("response_url")
    assert "already done" in told[0].args["text"]
    await wait_step(fake_slack, card, Step.EMPATHISE)
    assert len(step_posts(fake_slack, card, Step.EMPATHISE)) == 1


async def test_a_double_submitted_gift_is_recorded_once(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    await slack.click(compensate, "give")
    view = await opened_view(fake_slack, 1)
    assert (await slack.submit(view, {"amount": "10"})) == (200, "")
    status, body = await slack.submit(view, {"amount": "10"})
    assert "already done" in json.loads(body)["errors"]["amount"]
    assert len(await bot.recovery.store.ledger(workspace="T1")) == 1


async def test_a_retried_delivery_opens_one_case(slack, fake_slack, bot):
    body = slack.command_body("cold soup")
    assert (await slack.post(body))[0] == 200
    assert (await slack.post(body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))[0] == 200
    await fake_slack.wait_for("chat.postMessage", count=2)
    await open_case(slack, fake_slack, "a later, different command")  # drains the bot's queue deterministically
    cases = await bot.recovery.open_cases(workspace="T1", owner="U1")
    assert [c.what_happened for c in cases] == ["cold soup", "a later, different command"]


async def test_a_forged_or_stale_signature_is_refused_and_changes_nothing(slack, fake_slack, bot):
    import time
    forged = await slack.command("cold soup", secret="not-the-secret")
    stale = await slack.command("cold soup", timestamp=int(time.time()) - 301)
    assert forged[0] == 401 and stale[0] == 401
    assert fake_slack.calls == [] and await bot.recovery.open_cases(workspace="T1", owner="U1") == []


async def test_buttons_posted_before_a_restart_keep_working(fake_slack, clock, tmp_path, http):
    from tests.conftest import SIGNING_SECRET, RunningBot, bot_settings
    from tests.doubles.slack_client import SlackDriver
    from bot.store import open_store

    path = str(tmp_path / "amends.json")
    first = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    driver = SlackDriver(bot_url=first.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
    card = await open_case(driver, fake_slack)
    apologise = step_posts(fake_slack, card, Step.APOLOGISE)[0]
    await first.stop()

    second = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
    try:
        driver.bot_url = second.url
        await driver.click(apologise, "step_done")
        await wait_step(fake_slack, card, Step.EMPATHISE)
        case = await second.recovery.case(workspace="T1", case_id="R-1001")
        assert Step.APOLOGISE in case.done and case.step_posts[Step.EMPATHISE].id
    finally:
        await second.stop()


async def test_slack_rate_limits_are_waited_out(slack, fake_slack, bot):
    fake_slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=0)
    card = await open_case(slack, fake_slack)
    assert card.answer["ok"] and [c.answer.get("error") for c in fake_slack.of("chat.postMessage")][0] == "ratelimited"


async def test_thread_messages_are_one_per_step_in_order(slack, fake_slack):
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    await slack.click(compensate, "nothing_needed")
    await wait_step(fake_slack, card, Step.FOLLOW_UP)
    titles = [c.args["text"] for c in thread_posts(fake_slack, card)]
    assert [t.split(" · ")[1] for t in titles] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
