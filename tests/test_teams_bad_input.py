"""Every bad input of the Slack spine gets the same sentence in Teams, and changes nothing.

Cards check what they can before Teams sends them (required inputs, ranges); these tests send
what an older client or a forged request could, to show the bot checks it again.
"""

import json
from decimal import Decimal

import pytest

from bot.checklist import Step
from bot.ledger import LedgerEntry
from cards.teams import ACTIVITY_MAX, CARD_TYPE
from tests.doubles.teams_driver import (ADA, AMY, BEN, CAL, FLOOR, RECOVERIES, Person, answer_of, open_case,
                                        wait_answer, wait_step, walk_to)

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


async def compensate_step(teams):
    await open_case(teams)
    return await walk_to(teams, Step.COMPENSATE)


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
async def test_a_bad_amount_gets_the_slack_sentence_and_records_nothing(teams, connector, teams_bot, amount, sentence):
    compensate = await compensate_step(teams)
    updates = len(connector.updates(compensate.id))
    status, body = await teams.execute(compensate, "give", {"amount": amount})
    assert status == 200 and sentence in answer_of(body)
    assert await teams_bot.recovery.store.ledger(workspace=TENANT) == []
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).current_step == Step.COMPENSATE
    assert len(connector.updates(compensate.id)) == updates  # the card is left as it was, to try again


async def test_the_card_checks_the_amount_before_teams_sends_it(teams, connector):
    compensate = await compensate_step(teams)
    amount = next(e for e in compensate.card["body"] if e.get("id") == "amount")
    # no maximum: over the allowance, the same amount can go to a manager ("Ask a manager")
    assert (amount["type"], amount["isRequired"], amount["min"], amount.get("max")) == ("Input.Number", True, 0.01, None)
    assert amount["errorMessage"] == "Type an amount: up to $25 yourself, more by asking a manager."
    give = next(a for a in compensate.card["actions"] if a["verb"] == "give")
    nothing = next(a for a in compensate.card["actions"] if a["verb"] == "nothing_needed")
    assert give.get("associatedInputs", "auto") == "auto" and nothing["associatedInputs"] == "none"


async def test_a_bad_amount_from_an_older_client_is_answered_in_the_conversation(teams, connector, teams_bot):
    compensate = await compensate_step(teams)
    assert (await teams.submit(compensate, "give", {"amount": "12abc"}))[0] == 201
    told = await wait_answer(connector, "isn't an amount")
    assert "'12abc' isn't an amount. Type a number, like 25 or 12.50." in told.shown
    assert await teams_bot.recovery.store.ledger(workspace=TENANT) == []


async def test_an_amount_over_what_is_left_of_the_budget_says_what_can_be_given(teams, connector, teams_bot, clock):
    recovery = teams_bot.recovery
    earlier = await recovery.open_case(workspace=TENANT, owner=AMY.aad, owner_name="Amy Baker", what_happened="earlier")
    await recovery.store.compensate_case(  # $90 given earlier this week, straight into the ledger
        workspace=TENANT, case_id=earlier.id, employee=AMY.aad, since=clock.now(), until=clock.now(),
        change=lambda case, spent: (case, LedgerEntry(workspace=TENANT, case_id=case.id, employee=AMY.aad, role="staff",
                                                      kind="voucher", amount=Decimal("90"), currency="USD",
                                                      at=clock.now())))
    await open_case(teams, case_id="R-1002")
    compensate = await walk_to(teams, Step.COMPENSATE, case_id="R-1002")
    assert "You can give up to $10 here · $10 left this week" in compensate.shown
    status, body = await teams.execute(compensate, "give", {"amount": "20"})
    assert answer_of(body).startswith("$20 is more than the $10 left in your weekly budget. You can give up to $10.")
    status, body = await teams.execute(compensate, "give", {"amount": "10"})
    assert body["type"] == CARD_TYPE
    assert sum(e.amount for e in await recovery.store.ledger(workspace=TENANT)) == Decimal("100")


async def test_with_the_budget_used_up_the_card_offers_only_nothing_needed(teams, connector, teams_bot, clock):
    await teams.say("recover admin limit staff 25 10/week", user=ADA)
    await wait_answer(connector, "Saved.")
    compensate = await compensate_step(teams)
    assert (await teams.execute(compensate, "give", {"amount": "10"}))[1]["type"] == CARD_TYPE
    await teams.execute(await wait_step(connector, Step.FOLLOW_UP), "no_follow_up")

    await open_case(teams, case_id="R-1002")
    compensate = await walk_to(teams, Step.COMPENSATE, case_id="R-1002")
    assert "budget is used up" in compensate.shown
    # nothing left to give: asking a manager (handlers/teams/topups.py) or "Nothing needed"
    assert [a["verb"] for a in compensate.card["actions"]] == ["top_up_ask", "nothing_needed"]


async def test_a_follow_up_date_in_the_past_or_beyond_a_year_is_refused(teams, connector, teams_bot):
    compensate = await compensate_step(teams)
    await teams.execute(compensate, "nothing_needed")
    follow_up = await wait_step(connector, Step.FOLLOW_UP)
    picker = next(e for e in follow_up.card["body"] if e.get("id") == "date")
    assert (picker["min"], picker["max"], picker["value"]) == ("2026-11-25", "2027-11-25", "2026-11-26")
    for typed, sentence in (("2026-11-01", "Pick today or a later date for the follow-up."),
                            ("2028-01-01", "Pick a follow-up date within a year."),
                            ("next tuesday", "Pick a date.")):
        status, body = await teams.execute(follow_up, "follow_up_pick", {"date": typed})
        assert answer_of(body) == sentence
    assert not (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).is_closed
    status, body = await teams.execute(follow_up, "follow_up_pick", {"date": "2026-12-01"})
    assert body["type"] == CARD_TYPE and "Tue 1 Dec 2026" in str(body["value"])


async def test_someone_else_cannot_give_on_a_case_even_with_a_bad_amount(teams, connector, teams_bot):
    compensate = await compensate_step(teams)
    status, body = await teams.execute(compensate, "give", {"amount": "abc"}, user=BEN)
    assert "Amy Baker's case" in answer_of(body)
    assert await teams_bot.recovery.store.ledger(workspace=TENANT) == []


async def test_a_button_from_an_unknown_or_forged_card_is_out_of_date(teams, connector, teams_bot):
    await open_case(teams)
    apologise = await wait_step(connector, Step.APOLOGISE)
    forged = teams.tap(apologise, "step_done")
    forged["value"]["action"]["data"]["value"] = "R-1001:not-a-step"
    status, body = await teams.post(forged)
    assert answer_of(body) == "That button is out of date; use the latest message in the case thread."
    forged = teams.tap(apologise, "step_done")
    forged["value"]["action"]["verb"] = "launch_rockets"
    assert "out of date" in answer_of((await teams.post(forged))[1])
    forged = teams.tap(apologise, "step_done")
    forged["value"]["action"]["data"]["value"] = "R-9999:apologise"
    assert answer_of((await teams.post(forged))[1]) == "There is no case R-9999 here."
    assert (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).done == {}


async def answer(connector, n: int = 1) -> str:
    """The n-th sentence the bot said (as a card) in the conversation."""
    said = await connector.wait_for(lambda c: c.method == "POST" and c.card and c.card["body"][0]["type"] == "RichTextBlock"
                                    and len(c.card["body"]) == 1, count=n)
    return "".join(run["text"] for run in said[n - 1].card["body"][0]["inlines"])


@pytest.mark.parametrize("text", ["recover admin limits", "recover admin limit server 30",
                                  "recover admin grant @Ben Carter"])
async def test_admin_commands_from_a_non_admin_are_refused_and_say_their_id(teams, connector, teams_bot, text):
    await teams.say(text, user=AMY, mentions=(BEN,))
    said = await answer(connector)
    assert said.startswith("Only Amends admins can do that") and AMY.aad in said
    assert await teams_bot.recovery.store.roles(workspace=TENANT) == []
    assert await teams_bot.recovery.store.granted_admins(workspace=TENANT) == set()


@pytest.mark.parametrize("text, mentions, sentence", [
    ("admin limit server abc", (), "per-case limit"),
    ("admin limit server 25 100/year", (), "isn't a budget"),
    ("admin limit server 25 100", (), "isn't a budget"),
    ("admin limit Server! 25", (), "can't be a role name"),
    ("admin limit server", (), "Usage: `recover admin limit"),
    ("admin role @Amy Baker chef", (AMY,), "There is no role 'chef'"),
    ("admin role amy staff", (), "'amy' isn't a person. Mention them with @, e.g. `recover admin role @amy server`."),
    ("admin role @Zed Unknown staff", ("ZED",), "can't find that person"),
    ("admin channel recoveries", (), "isn't a channel"),
    ("admin channel", (), "Usage: `recover admin channel here`"),
    ("admin grant", (), "Usage: `recover admin grant <@person>`"),
    ("admin frobnicate", (), "Admin commands:"),
])
async def test_bad_admin_commands_get_a_sentence_and_change_nothing(teams, connector, teams_bot, text, mentions,
                                                                    sentence):
    people = tuple(Person("29:1ZedUnknown", "not-in-this-team", "Zed Unknown") if m == "ZED" else m for m in mentions)
    await teams.say(f"recover {text}", user=ADA, channel=FLOOR, mentions=people)
    assert sentence in await answer(connector)
    store = teams_bot.recovery.store
    assert await store.roles(workspace=TENANT) == []
    assert await store.role_of(workspace=TENANT, person=AMY.aad) is None
    assert await teams_bot.recovery.recovery_channel(workspace=TENANT) is None


async def test_unknown_admin_commands_list_the_teams_ones(teams, connector):
    await teams.say("recover admin frobnicate", user=ADA)
    said = await answer(connector)
    assert "`recover admin channel here`" in said and "`recover admin grant <@person>`" in said
    assert "<#channel>" not in said


async def test_admins_set_limits_assign_roles_by_mention_and_the_allowance_follows(teams, connector, teams_bot):
    await teams.say("recover admin limit server 40 150/month", user=ADA)
    assert await answer(connector) == "Saved. server: $40 per case · $150 per month."
    await teams.say("recover admin role @Amy Baker server", user=ADA, channel=FLOOR, mentions=(AMY,))
    assert await answer(connector, 2) == "Amy Baker is now server."
    await teams.say("recover admin limits", user=ADA)
    limits = await wait_answer(connector, "Roles, limits and budgets")
    assert "server: $40 per case · $150 per month" in limits.shown and "staff: $25 per case" in limits.shown
    assert "Recovery channel: not set" in limits.shown
    allowance = await teams_bot.recovery.allowance(workspace=TENANT, person=AMY.aad)
    assert allowance.describe() == "You can give up to $40 here · $150 left this month"


async def test_an_admin_grants_admin_by_mention_and_it_holds(teams, connector, teams_bot):
    await teams.say("recover admin limits", user=CAL)
    assert (await answer(connector)).startswith("Only Amends admins")
    await teams.say("recover admin grant @Cal Diaz", user=ADA, channel=FLOOR, mentions=(CAL,))
    assert await answer(connector, 2) == "Saved. Cal Diaz is now an Amends admin."
    assert await teams_bot.recovery.store.granted_admins(workspace=TENANT) == {CAL.aad}
    await teams.say("recover admin channel here", user=CAL, channel=RECOVERIES)
    assert await answer(connector, 3) == "Saved. Recovery summaries will be posted in this channel."
    assert await teams_bot.recovery.recovery_channel(workspace=TENANT) == RECOVERIES.id


async def test_the_recovery_channel_is_chosen_in_a_channel_not_a_chat(teams, connector, teams_bot):
    await teams.say("recover admin channel here", user=ADA)
    assert "in the channel where summaries should go" in await answer(connector)
    assert await teams_bot.recovery.recovery_channel(workspace=TENANT) is None


async def test_a_reply_in_a_thread_sets_the_channel_itself_not_the_thread(teams, connector, teams_bot):
    await teams.say("recover admin channel here", user=ADA, channel=RECOVERIES, thread="1764000000000")
    await answer(connector)
    stored = await teams_bot.recovery.store.reference(workspace=TENANT, key="recovery_channel")
    assert stored["conversation"]["id"] == RECOVERIES.id and "activityId" not in stored


async def test_user_text_cannot_mention_format_or_forge_links(teams, connector, teams_bot):
    await teams.say("recover admin channel here", user=ADA, channel=RECOVERIES)
    await answer(connector)
    sneaky = "[your bill](https://evil.example) **now** <at>Ben Carter</at> &lt;b&gt; @channel"
    await open_case(teams, sneaky)
    compensate = await walk_to(teams, Step.COMPENSATE)
    await teams.execute(compensate, "nothing_needed")
    await teams.execute(await wait_step(connector, Step.FOLLOW_UP), "no_follow_up")
    await connector.wait_for(lambda c: c.conversation == RECOVERIES.id and "Recovered:" in c.shown)

    cards = [c.card for c in connector.calls if c.card]
    text_blocks = json.dumps([b for card in cards for b in _elements(card) if b.get("type") == "TextBlock"])
    for dangerous in ("evil.example", "**now**", "<at>", "@channel"):
        assert dangerous not in text_blocks, dangerous  # never where markdown renders
    runs = [b["text"] for card in cards for b in _elements(card) if b.get("type") == "TextRun"]
    assert any(sneaky in run for run in runs)  # shown as typed, as plain text
    assert not any("entities" in json.dumps(card.get("msteams", {})) for card in cards)  # no mention can fire


def _elements(card: dict) -> list[dict]:
    found = []
    for element in card.get("body", []):
        found.append(element)
        found += element.get("inlines", [])
    return found


async def test_text_over_the_limits_is_clipped_never_rejected(teams, connector, teams_bot):
    long_emoji = "😡 the soup was cold " * 400  # 8,000 characters, each emoji 12 bytes as botbuilder sends it
    card = await open_case(teams, long_emoji)
    assert "…" in card.shown and card.size <= ACTIVITY_MAX
    apologise = await wait_step(connector, Step.APOLOGISE)
    await teams.execute(apologise, "step_done", {"note": "🙏" * 2000})
    [ticked] = connector.updates(apologise.id)
    assert ticked.size <= ACTIVITY_MAX
    case = (await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad))[0]
    assert len(case.what_happened) == 2000 and case.what_happened.endswith("…")
    assert max(c.size for c in connector.calls if c.body) <= ACTIVITY_MAX


async def test_an_unexpected_failure_shows_a_reference_and_the_case_can_be_resumed(teams, connector, teams_bot, caplog):
    card = await open_case(teams)
    apologise = await wait_step(connector, Step.APOLOGISE)
    connector.fail_next(card.conversation, status=500, code="ServiceError")  # the next step's card is lost
    status, body = await teams.execute(apologise, "step_done")
    told = answer_of(body)
    assert status == 200 and "Something went wrong on our side (reference " in told and "Traceback" not in told
    reference = told.split("reference ")[1].split(")")[0]
    assert any(reference in record.getMessage() for record in caplog.records)
    assert Step.APOLOGISE in (await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")).done

    status, body = await teams.execute(apologise, "step_done")  # tapping again brings the lost step back
    assert "already done" in answer_of(body)
    await wait_step(connector, Step.EMPATHISE)


async def test_an_unexpected_failure_in_a_message_is_answered_with_a_reference(teams, connector, teams_bot):
    connector.fail_next(teams.message("x")["conversation"]["id"], status=500, code="ServiceError")
    assert (await teams.say("recover cold soup"))[0] == 201  # the case card is lost, the case is saved
    said = await answer(connector)
    assert said.startswith("Something went wrong on our side (reference ")
    assert [c.id for c in await teams_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad)] == ["R-1001"]


async def test_a_failed_in_place_update_does_not_stop_the_checklist(teams, connector):
    card = await open_case(teams)
    apologise = await wait_step(connector, Step.APOLOGISE)
    connector.fail_next(card.conversation, method="PUT", status=500, code="ServiceError")
    status, body = await teams.execute(apologise, "step_done")
    assert status == 200 and body["type"] == CARD_TYPE
    await wait_step(connector, Step.EMPATHISE)
