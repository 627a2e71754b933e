"""Every bad input gets a clear sentence and changes nothing."""

import json
from decimal import Decimal

import pytest

from bot.checklist import Step
from bot.ledger import LedgerEntry
from tests.flows import give, open_case, opened_view, wait_step, walk_to


async def compensate_step(slack, fake_slack):
    card = await open_case(slack, fake_slack)
    return card, await walk_to(slack, fake_slack, card, Step.COMPENSATE)


@pytest.mark.parametrize("amount, sentence", [
    ("abc", "isn't an amount"),
    ("12abc", "isn't an amount"),
    ("-5", "can't be negative"),
    ("0", "more than zero"),
    ("2.505", "at most 2 decimals"),
    ("30", "over your limit of $25 per case"),
    ("99999999", "far more than any recovery"),
    ("", "Type an amount"),
])
async def test_a_bad_amount_is_refused_in_the_form_and_records_nothing(slack, fake_slack, bot, amount, sentence):
    card, compensate = await compensate_step(slack, fake_slack)
    status, body = await give(slack, fake_slack, compensate, amount)
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors" and sentence in answer["errors"]["amount"]
    assert await bot.recovery.store.ledger(workspace="T1") == []
    case = await bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.current_step == Step.COMPENSATE


async def test_an_amount_over_what_is_left_of_the_budget_says_what_can_be_given(slack, fake_slack, bot, clock):
    async def record(amount):  # earlier gifts this week, straight into the ledger
        store = bot.recovery.store
        await store.compensate_case(
            workspace="T1", case_id=(await bot.recovery.open_case(workspace="T1", owner="U1", owner_name="amy",
                                                                 what_happened="earlier")).id,
            employee="U1", since=clock.now(), until=clock.now(),
            change=lambda case, spent: (case, LedgerEntry(workspace="T1", case_id=case.id, employee="U1", role="staff",
                                                          kind="voucher", amount=Decimal(amount), currency="USD",
                                                          at=clock.now())))
    await record("90")
    card, compensate = await compensate_step(slack, fake_slack)
    assert "You can give up to $10 here · $10 left this week" in json.dumps(compensate.args["blocks"], ensure_ascii=False)
    status, body = await give(slack, fake_slack, compensate, "20")
    assert json.loads(body)["errors"]["amount"] == (
        "$20 is more than the $10 left in your weekly budget. You can give up to $10.")
    assert (await give(slack, fake_slack, compensate, "10"))[1] == ""
    assert sum(e.amount for e in await bot.recovery.store.ledger(workspace="T1")) == Decimal("100")


async def test_a_gift_in_a_new_week_has_the_whole_budget_again(slack, fake_slack, bot, clock):
    card, compensate = await compensate_step(slack, fake_slack)
    assert (await give(slack, fake_slack, compensate, "25"))[1] == ""
    allowance = await bot.recovery.allowance(workspace="T1", person="U1")
    assert allowance.left == Decimal("75")
    clock.advance(days=7)
    allowance = await bot.recovery.allowance(workspace="T1", person="U1")
    assert allowance.left == Decimal("100")


async def test_someone_else_cannot_open_the_gift_form_of_a_case(slack, fake_slack, bot):
    card, compensate = await compensate_step(slack, fake_slack)
    await slack.click(compensate, "give", user="U2", user_name="ben")
    told = await fake_slack.wait_for("response_url")
    assert "Amy's case" in told[0].args["text"]
    assert fake_slack.of("views.open") == []


async def test_an_empty_note_is_refused_in_the_form(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    apologise = await wait_step(fake_slack, card, Step.APOLOGISE)
    await slack.click(apologise, "step_note")
    form = await opened_view(fake_slack, 1)
    status, body = await slack.submit(form, {"note": "  "})
    assert "Write a note" in json.loads(body)["errors"]["note"]
    assert (await bot.recovery.case(workspace="T1", case_id="R-1001")).done == {}


async def test_a_follow_up_date_in_the_past_is_refused_in_the_form(slack, fake_slack, bot):
    card, compensate = await compensate_step(slack, fake_slack)
    await slack.click(compensate, "nothing_needed")
    follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
    await slack.click(follow_up, "follow_up_pick")
    form = await opened_view(fake_slack, 1)
    status, body = await slack.submit(form, {"date": "2026-11-01"})
    assert "today or a later date" in json.loads(body)["errors"]["date"]
    assert not (await bot.recovery.case(workspace="T1", case_id="R-1001")).is_closed
    assert (await slack.submit(form, {"date": "2026-12-01"}))[1] == ""
    await fake_slack.wait_for("chat.postMessage", where=lambda c: "is closed" in c.args["text"])


async def answer(fake_slack, n=1):
    return (await fake_slack.wait_for("response_url", count=n))[n - 1].args["text"]


@pytest.mark.parametrize("text, sentence", [
    ("admin limits", "Only Amends admins"),
    ("admin limit server 30", "Only Amends admins"),
])
async def test_admin_commands_from_a_non_admin_are_refused(slack, fake_slack, bot, text, sentence):
    await slack.command(text, user="U1")
    assert sentence in await answer(fake_slack)
    assert await bot.recovery.store.roles(workspace="T1") == []


@pytest.mark.parametrize("text, sentence", [
    ("admin limit server abc", "per-case limit"),
    ("admin limit server 25 100/year", "isn't a budget"),
    ("admin limit server 25 100", "isn't a budget"),
    ("admin limit Server! 25", "can't be a role name"),
    ("admin limit server", "Usage"),
    ("admin role <@U1|amy> chef", "There is no role 'chef'"),
    ("admin role amy staff", "isn't a person"),
    ("admin role <@U999|ghost> staff", "can't find that person"),
    ("admin channel recoveries", "isn't a channel"),
    ("admin frobnicate", "Admin commands"),
])
async def test_bad_admin_commands_get_a_sentence_and_change_nothing(slack, fake_slack, bot, text, sentence):
    await slack.command(text, user="UADMIN", user_name="ada")
    assert sentence in await answer(fake_slack)
    assert await bot.recovery.store.roles(workspace="T1") == []
    assert await bot.recovery.store.role_of(workspace="T1", person="U1") is None
    assert await bot.recovery.recovery_channel(workspace="T1") is None


async def test_admins_set_limits_assign_roles_and_the_allowance_follows(slack, fake_slack, bot):
    await slack.command("admin limit server 40 150/month", user="UBOSS")  # AMENDS_ADMINS, not a workspace admin
    assert "server: $40 per case · $150 per month" in await answer(fake_slack)
    await slack.command("admin role <@U1|amy> server", user="UADMIN")
    assert "Amy is now server" in await answer(fake_slack, 2)
    await slack.command("admin limits", user="UADMIN")
    await fake_slack.wait_for("response_url", count=3)
    limits = json.dumps(fake_slack.of("response_url")[2].args["blocks"])
    assert "server: $40 per case" in limits and "staff: $25 per case" in limits
    allowance = await bot.recovery.allowance(workspace="T1", person="U1")
    assert allowance.describe() == "You can give up to $40 here · $150 left this month"


async def test_a_recovery_channel_the_bot_cannot_post_in_is_refused(slack, fake_slack, bot):
    fake_slack.cannot_post.add("CSECRET")
    await slack.command("admin channel <#CSECRET|secret>", user="UADMIN")
    assert "Invite me there first" in await answer(fake_slack)
    assert await bot.recovery.recovery_channel(workspace="T1") is None


async def test_user_text_cannot_ping_mention_or_forge_links(slack, fake_slack, bot):
    await slack.command("admin channel <#CREC|rec>", user="UADMIN")
    await answer(fake_slack)
    sneaky = "<!channel> & <@U2> <https://evil.example|your bill> &lt;!here&gt;"
    card = await open_case(slack, fake_slack, sneaky)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    await slack.click(compensate, "nothing_needed")
    follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
    await slack.click(follow_up, "no_follow_up")
    await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC" and "Recovered" in c.args["text"])
    sent = json.dumps([c.args for c in fake_slack.calls if c.method.startswith("chat.")])
    for dangerous in ("<!channel>", "<!here>", "<@U2>", "<https://evil"):
        assert dangerous not in sent, dangerous
    assert "&amp;" in sent and "your bill (https://evil.example)" in sent


async def test_text_over_slacks_limits_is_clipped_never_rejected(slack, fake_slack, bot):
    long_text = "the soup was cold " * 400  # 7,200 characters
    card = await open_case(slack, fake_slack, long_text)
    details = json.dumps(card.args["blocks"], ensure_ascii=False)
    assert "…" in details and len(details) < 5000
    case = (await bot.recovery.open_cases(workspace="T1", owner="U1"))[0]
    assert len(case.what_happened) == 2000 and case.what_happened.endswith("…")


async def test_list_and_help(slack, fake_slack, bot):
    await open_case(slack, fake_slack, "cold soup")
    await open_case(slack, fake_slack, "lost booking")
    await slack.command("list")
    listed = (await fake_slack.wait_for("response_url"))[0].args
    shown = json.dumps(listed["blocks"])
    assert "R-1001" in shown and "R-1002" in shown and "https://amends-test.slack.com/archives/C1/p" in shown
    await slack.command("help")
    helped = json.dumps((await fake_slack.wait_for("response_url", count=2))[1].args["blocks"])
    from bot.commands import COMMANDS
    from cards.text import escape
    for spec in COMMANDS:
        assert json.dumps(escape(spec.usage))[1:-1] in helped, spec.usage


async def test_a_card_slack_refuses_is_reported_as_saved(slack, fake_slack, bot):
    fake_slack.fail_next("chat.postMessage", error="fatal_error")
    await slack.command("cold soup")
    told = (await fake_slack.wait_for("response_url"))[0].args["text"]
    assert "R-1001 is saved, but Slack didn't take its card (fatal_error)" in told
    assert [c.id for c in await bot.recovery.open_cases(workspace="T1", owner="U1")] == ["R-1001"]


async def test_an_unexpected_failure_shows_a_reference_and_the_case_can_be_resumed(slack, fake_slack, bot, caplog):
    card = await open_case(slack, fake_slack)
    apologise = await wait_step(fake_slack, card, Step.APOLOGISE)
    fake_slack.fail_next("chat.postMessage", error="fatal_error")  # the next step's message is lost
    await slack.click(apologise, "step_done")
    told = (await fake_slack.wait_for("response_url"))[0].args["text"]
    assert "Something went wrong on our side (reference " in told and "Traceback" not in told
    reference = told.split("reference ")[1].split(")")[0]
    assert any(reference in record.getMessage() for record in caplog.records)
    assert Step.APOLOGISE in (await bot.recovery.case(workspace="T1", case_id="R-1001")).done  # what was saved is safe

    await slack.click(apologise, "step_done")  # tapping again brings the lost step back
    assert "already done" in (await fake_slack.wait_for("response_url", count=2))[1].args["text"]
    await wait_step(fake_slack, card, Step.EMPATHISE)


async def test_a_failed_in_place_update_does_not_stop_the_checklist(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    apologise = await wait_step(fake_slack, card, Step.APOLOGISE)
    fake_slack.fail_next("chat.update", error="fatal_error")
    await slack.click(apologise, "step_done")
    await wait_step(fake_slack, card, Step.EMPATHISE)
