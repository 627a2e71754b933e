"""Learn, don't punish, in Slack through the real entry point: the root cause asked for on closing, a
returning guest pointed out, Recognise on a summary, and the admin commands for causes and retention."""

import json

from bot.checklist import Step
from bot.learning import PICK_A_CAUSE
from tests.flows import open_case, opened_view, wait_step, walk_to
from tests.test_slack_recovery import set_recovery_channel


def shown(call) -> str:
    return json.dumps(call.args.get("blocks") or [], ensure_ascii=False)


async def to_follow_up(slack, fake, **kwargs):
    card = await open_case(slack, fake, **kwargs)
    compensate = await walk_to(slack, fake, card, Step.COMPENSATE)
    await slack.click(compensate, "nothing_needed")
    return card, await wait_step(fake, card, Step.FOLLOW_UP)


async def told(fake, words: str):
    return (await fake.wait_for("response_url", where=lambda c: words in (c.args.get("text") or "")))[-1]


async def close(slack, fake, *, cause="wait", change="two hosts on Fridays"):
    await set_recovery_channel(slack, fake)
    card, follow_up = await to_follow_up(slack, fake)
    await slack.click(follow_up, "no_follow_up", values={"root_cause": cause, "change_note": change})
    return (await fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC"
                                and "Recovered" in c.args["text"]))[0]


async def test_closing_asks_what_caused_it_and_the_summary_shows_it(slack, fake_slack, bot):
    await set_recovery_channel(slack, fake_slack)
    card, follow_up = await to_follow_up(slack, fake_slack)
    inputs = {b["block_id"]: b for b in follow_up.args["blocks"] if b["type"] == "input"}
    assert [o["value"] for o in inputs["root_cause"]["element"]["options"]] == [
        "food", "wait", "staff", "booking", "billing", "facilities", "other"]
    assert "initial_option" not in inputs["root_cause"]["element"] and inputs["change_note"]["optional"]

    await slack.click(follow_up, "follow_up_tomorrow", values={"root_cause": None})  # nothing picked
    answer = await told(fake_slack, PICK_A_CAUSE)
    assert answer.args["response_type"] == "ephemeral"
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed

    await slack.click(follow_up, "follow_up_tomorrow", values={"root_cause": "wait",
                                                               "change_note": "two hosts on Fridays"})
    summary = (await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC"
                                         and "Recovered" in c.args["text"]))[0]
    assert "*Cause:* wait" in shown(summary) and "two hosts on Fridays" in shown(summary)
    assert any(e.get("action_id") == "recognise" for b in summary.args["blocks"] if b["type"] == "actions"
               for e in b["elements"])
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert (case.root_cause, case.change_note) == ("wait", "two hosts on Fridays")
    ticked = await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == follow_up.answer["ts"])
    assert "*Cause:* wait" in shown(ticked[-1]) and '"input"' not in shown(ticked[-1])


async def test_someone_elses_close_is_refused_before_the_cause(slack, fake_slack, bot):
    card, follow_up = await to_follow_up(slack, fake_slack)
    await slack.click(follow_up, "no_follow_up", user="U2", user_name="ben", values={"root_cause": None})
    await told(fake_slack, "Amy's case (R-1001)")
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed


async def test_pick_a_date_carries_the_cause_into_the_form(slack, fake_slack, bot):
    card, follow_up = await to_follow_up(slack, fake_slack)
    await slack.click(follow_up, "follow_up_pick", values={"root_cause": "staff", "change_note": "retrain"})
    form = await opened_view(fake_slack, 1)
    blocks = {b["block_id"]: b for b in form.answer["view"]["blocks"] if b["type"] == "input"}
    assert blocks["root_cause"]["element"]["initial_option"]["value"] == "staff"
    assert blocks["change_note"]["element"]["initial_value"] == "retrain"
    status, body = await slack.submit(form, {"root_cause": {"selected_option": None}})
    assert status == 200 and json.loads(body) == {"response_action": "errors", "errors": {"root_cause": PICK_A_CAUSE}}
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed
    status, body = await slack.submit(form, {"change_note": "retrain the new starters"})
    assert (status, body) == (200, "")
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.is_closed and (case.root_cause, case.change_note) == ("staff", "retrain the new starters")


async def test_an_admin_edits_the_causes(slack, fake_slack, bot):
    await slack.command("admin causes food, front desk, other", user="U2", user_name="ben")
    await told(fake_slack, "Only Amends admins")
    await slack.command("admin causes food, food", user="UADMIN", user_name="ada")
    await told(fake_slack, "food is listed twice")
    await slack.command("admin causes Food, front desk, other", user="UADMIN", user_name="ada")
    await told(fake_slack, "Saved. Closing a case now asks what caused it: food, front desk, other.")
    card, follow_up = await to_follow_up(slack, fake_slack)
    [cause] = [b for b in follow_up.args["blocks"] if b.get("block_id") == "root_cause"]
    assert [o["value"] for o in cause["element"]["options"]] == ["food", "front desk", "other"]
    await slack.click(follow_up, "no_follow_up", values={"root_cause": "wait"})  # an old list's option
    await told(fake_slack, "“wait” isn't one of this workspace's causes")
    await slack.click(follow_up, "no_follow_up", values={"root_cause": "front desk"})
    await fake_slack.wait_for("chat.postMessage", where=lambda c: "is closed" in (c.args.get("text") or ""))
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).root_cause == "front desk"


async def test_an_admin_sets_the_retention(slack, fake_slack, bot):
    await slack.command("admin retention soon", user="UADMIN", user_name="ada")
    await told(fake_slack, "isn't a number of days")
    await slack.command("admin retention 90", user="UADMIN", user_name="ada")
    await told(fake_slack, "Saved. Customer references and notes are kept 90 day(s)")
    assert await bot.recovery.store.reference(workspace="T1", key="config:retention_days") == {"days": 90}
    assert [m.kind for m in await bot.recovery.store.owed_outbox() if m.kind == "retention"] == ["retention"]


async def open_from_form(slack, fake, *, customer: str, views: int):
    await slack.command("")
    form = await opened_view(fake, views)
    status, _ = await slack.submit(form, {"what": "cold soup", "customer": customer})
    assert status == 200
    return (await fake.wait_for("chat.postMessage", count=views,
                                where=lambda c: "thread_ts" not in c.args and "cold soup" in c.args["text"]))[-1]


async def test_a_returning_guest_is_pointed_out_in_the_new_cases_thread(slack, fake_slack, bot):
    first = await open_from_form(slack, fake_slack, customer="Table 4", views=1)
    await wait_step(fake_slack, first, Step.APOLOGISE)
    second = await open_from_form(slack, fake_slack, customer="table 4 ", views=2)
    note = (await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == second.answer["ts"]
                                      and "recovery for this guest" in c.args["text"]))[0]
    assert note.args["text"].startswith("2nd recovery for this guest in 90 days (R-1001)")
    await wait_step(fake_slack, second, Step.APOLOGISE)
    assert not [c for c in fake_slack.of("chat.postMessage") if c.args.get("thread_ts") == first.answer["ts"]
                and "recovery for this guest" in c.args["text"]]  # the first time is not a repeat


async def test_a_manager_recognises_a_summary_once_and_the_owner_hears_it(slack, fake_slack, bot):
    summary = await close(slack, fake_slack)
    await slack.click(summary, "recognise", user="U2", user_name="ben")  # not a manager
    await told(fake_slack, "Only managers can recognise")
    await slack.click(summary, "recognise", user="U1", user_name="amy")  # the owner, not a manager either
    await told(fake_slack, "Only managers can recognise")
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).recognised_by == ()

    await slack.click(summary, "recognise", user="UADMIN", user_name="ada")  # a workspace admin manages
    updated = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == summary.answer["ts"]))[-1]
    assert "Recognised by <@UADMIN>" in shown(updated)
    dm = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "recognised your recovery" in c.args["text"]))
    assert dm[0].args["channel"] == "DBOTU1" and "R-1001" in dm[0].args["text"]
    await slack.click(summary, "recognise", user="UADMIN", user_name="ada")
    await told(fake_slack, "You already recognised R-1001")
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).recognised_by == ("UADMIN",)


async def test_each_start_owes_every_workspaces_next_retention_run_once(fake_slack, clock, tmp_path):
    import asyncio
    from zoneinfo import ZoneInfo

    from bot.recovery import Recovery
    from bot.store import open_store
    from tests.conftest import RunningBot, bot_settings

    path = str(tmp_path / "amends.json")
    store = open_store(path)
    await store.open()
    await Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC")).open_case(
        workspace="T1", owner="U1", owner_name="Amy", what_happened="cold soup", customer="table 4")
    await store.close()
    for _ in range(2):  # a restart owes nothing twice
        running = await RunningBot.start(bot_settings(fake_slack), store=open_store(path), clock=clock)
        try:
            await asyncio.wait_for(running.recovery.outbox.after_round(0), 5)  # a run due already has run
            jobs = [m for m in await running.recovery.store.owed_outbox() if m.kind == "retention"]
        finally:
            await running.stop()
        assert [(m.workspace, m.case_id) for m in jobs] == [("_retention", "retention")]
        assert jobs[0].due.astimezone(ZoneInfo("UTC")).time().isoformat() == "03:00:00"


async def test_a_follow_up_message_posted_before_causes_were_asked_is_redrawn_with_them(slack, fake_slack, bot):
    import copy
    card, follow_up = await to_follow_up(slack, fake_slack)
    old = copy.deepcopy(follow_up)  # as it was drawn before closing asked for a cause: no inputs
    old.args["blocks"] = [b for b in old.args["blocks"] if b["type"] != "input"]
    await slack.click(old, "follow_up_tomorrow")
    await told(fake_slack, PICK_A_CAUSE)
    redrawn = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == follow_up.answer["ts"]))[-1]
    assert any(b.get("block_id") == "root_cause" for b in redrawn.args["blocks"])
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed


async def test_people_in_a_managing_role_recognise_too(slack, fake_slack, bot):
    summary = await close(slack, fake_slack)
    for n, command in enumerate(("admin limit shift-lead 50", "admin role <@U2|ben> shift-lead",
                                 "admin manager shift-lead on"), start=2):  # one at a time: each needs the last
        await slack.command(command, user="UADMIN", user_name="ada")
        await fake_slack.wait_for("response_url", count=n)  # its answer (the first was the channel's "Saved")
    await slack.click(summary, "recognise", user="U2", user_name="ben")
    updated = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == summary.answer["ts"]))[-1]
    assert "Recognised by <@U2>" in shown(updated)
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).recognised_by == ("U2",)


async def earlier_cases(recovery, workspace: str, n: int, *, customer: str = "table 9") -> None:
    """n earlier recoveries for the same guest, opened straight in the store (the note counts them)."""
    for _ in range(n):
        await recovery.open_case(workspace=workspace, owner="U9", owner_name="Zoe", what_happened="earlier",
                                 customer=customer)


async def test_a_returning_guest_is_pointed_out_on_a_case_opened_from_a_low_survey_score(fake_slack, clock, tmp_path,
                                                                                        http):
    from bot.store import open_store
    from tests.conftest import SIGNING_SECRET, RunningBot, bot_settings
    from tests.doubles.slack_client import SlackDriver
    from tests.test_csat import SECRET, map_soho, send
    running = await RunningBot.start(bot_settings(fake_slack, csat_secret=SECRET),
                                     store=open_store(str(tmp_path / "amends.json")), clock=clock)
    try:
        driver = SlackDriver(bot_url=running.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
        await map_soho(driver, fake_slack)
        await earlier_cases(running.recovery, "T1", 2, customer="Table 9")
        result = {"response_id": "resp-3", "score": 1, "customer": "table 9", "location": "soho"}
        assert await send(http, running, result) == (201, {"case": "R-1003", "posted": True})
        card = (await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CSOHO"
                                          and "thread_ts" not in c.args and "R-1003" in c.args["text"]))[0]
        note = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "recovery for this guest"
                                          in c.args["text"]))[0]
        assert note.args["thread_ts"] == card.answer["ts"] and note.args["channel"] == "CSOHO"
        assert note.args["text"].startswith("3rd recovery for this guest in 90 days (R-1001, R-1002)")
    finally:
        await running.stop()


async def test_a_returning_guest_is_pointed_out_on_a_case_opened_from_a_message(slack, fake_slack, bot):
    from tests.test_slack_shortcut import shortcut_body
    await earlier_cases(bot.recovery, "T1", 1)
    await slack.post(shortcut_body(fake_slack))
    form = await opened_view(fake_slack, 1)
    assert await slack.submit(form, {"what": "waited 50 min", "customer": "table 9"}) == (200, "")
    card = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "thread_ts" not in c.args))[0]
    note = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "recovery for this guest"
                                      in c.args["text"]))[0]
    assert note.args["thread_ts"] == card.answer["ts"]
    assert note.args["text"].startswith("2nd recovery for this guest in 90 days (R-1001)")


async def test_a_follow_up_message_offering_causes_an_admin_since_removed_is_redrawn_with_the_new_list(
        slack, fake_slack, bot):
    """Review: after `admin causes` replaced the list, the open follow-up message still offered the old one,
    every pick was refused, and the new causes could not be picked there."""
    card, follow_up = await to_follow_up(slack, fake_slack)
    await slack.command("admin causes kitchen, front desk, other", user="UADMIN", user_name="ada")
    await told(fake_slack, "Saved. Closing a case now asks what caused it")
    await slack.click(follow_up, "follow_up_tomorrow", values={"root_cause": "food"})  # from the old list
    answer = await told(fake_slack, "isn't one of this workspace's causes")
    assert "kitchen, front desk, other" in answer.args["text"]
    redrawn = (await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == follow_up.answer["ts"]))[-1]
    [select] = [b["element"] for b in redrawn.args["blocks"] if b.get("block_id") == "root_cause"]
    assert [o["value"] for o in select["options"]] == ["kitchen", "front desk", "other"]
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed
    await slack.click(follow_up, "no_follow_up", values={"root_cause": "front desk"})
    await fake_slack.wait_for("chat.postMessage", where=lambda c: "is closed" in (c.args.get("text") or ""))
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).root_cause == "front desk"


async def test_a_refused_cause_reads_the_workspaces_causes_once(slack, fake_slack, bot):
    """Review: a tap with a cause off the list read the workspace's causes twice (the check, then the redraw)."""
    from bot.learning import ROOT_CAUSES_KEY
    card, follow_up = await to_follow_up(slack, fake_slack)
    store, reads = bot.recovery.store, []
    real = store.reference

    async def counted(*, workspace, key):
        reads.append(key)
        return await real(workspace=workspace, key=key)

    store.reference = counted
    try:
        await slack.click(follow_up, "follow_up_tomorrow", values={"root_cause": "gone"})
        await told(fake_slack, "isn't one of this workspace's causes")
    finally:
        del store.reference
    assert reads.count(ROOT_CAUSES_KEY) == 1
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed
