"""The compensation catalogue (bot/catalogue.py): what admins add and remove, on every store backend; how
the compensate step offers it and records its values (a default, a % of the bill); the admin commands in
Slack and Teams, with every bad input refused with a sentence and nothing saved."""

import json
import time
import uuid
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from bot import commands
from bot.catalogue import (DEFAULT_CATALOGUE, CatalogueItem, CatalogueRefusal, catalogue, item, put_item,
                           remove_item)
from bot.checklist import Step
from bot.errors import InvalidAmount, Refusal
from bot.recovery import Recovery
from tests.doubles.slack_client import fixture_json
from tests.doubles.teams_driver import ADA, AMY, answer_of, open_case as teams_open_case, wait_answer
from tests.doubles.teams_driver import walk_to as teams_walk_to
from tests.flows import give, open_case, walk_to
from tests.test_store import W1, W2, FakeClock, _to_compensate, store  # noqa: F401  (store: the fixture)

pytest_plugins = ("tests.doubles.teams_fixtures",)

DESSERT = CatalogueItem("Free dessert", Decimal("8"), "🍰")
TWENTY_OFF = CatalogueItem("20% off the bill", percent=Decimal(20))


@pytest.fixture
def recovery(store):  # noqa: F811
    return Recovery(store=store, clock=FakeClock(), currency="USD", tz=ZoneInfo("UTC"))


# --- the domain, on every backend -------------------------------------------------------------

async def test_admins_add_and_remove_items_per_workspace(recovery):
    store = recovery.store
    assert [i.name for i in await catalogue(store, W1)] == list(DEFAULT_CATALOGUE)
    saved = await put_item(store, W1, CatalogueItem("  Free   dessert ", Decimal("8"), "🍰"), currency="USD")
    assert saved == DESSERT
    await put_item(store, W1, TWENTY_OFF, currency="USD")
    await put_item(store, W1, item("Room upgrade", "", ":star:", currency="USD"), currency="USD")
    items = await catalogue(store, W1)
    assert [i.name for i in items][-3:] == ["Free dessert", "20% off the bill", "Room upgrade"]
    assert [i.label("USD") for i in items][-3:] == ["🍰 Free dessert · $8", "20% off the bill", ":star: Room upgrade"]
    assert (await remove_item(store, W1, "free DESSERT")).name == "Free dessert"
    assert "Free dessert" not in [i.name for i in await catalogue(store, W1)]
    assert [i.name for i in await catalogue(store, W2)] == list(DEFAULT_CATALOGUE)  # another workspace: untouched


@pytest.mark.parametrize("name, value, emoji, words", [
    ("Free dessert", "-8", "", "can't be negative"),
    ("Free dessert", "$-8", "", "can't be negative"),
    ("Free dessert", "eight", "", "isn't an amount"),
    ("Free dessert", "8.505", "", "at most 2 decimals"),
    ("Free dessert", "0", "", "more than zero"),
    ("   ", "8", "", "Give the item a name"),
    ("x" * 41, "", "", "under 40 characters"),
    ("Birthday", "0%", "", "more than 0%"),
    ("Birthday", "150%", "", "at most 100%"),
    ("Birthday", "ten%", "", "isn't a percentage"),
    ("Cake", "8", "cake", "isn't an emoji"),
    ("voucher", "", "", "already has “voucher”"),
    ("VOUCHER", "5", "", "already has “VOUCHER”"),
])
async def test_a_bad_item_is_refused_with_a_sentence_and_nothing_saved(recovery, name, value, emoji, words):
    before = await recovery.store.reference(workspace=W1, key="config:catalogue")
    with pytest.raises(CatalogueRefusal) as refused:
        await put_item(recovery.store, W1, item(name, value, emoji, currency="USD"), currency="USD")
    assert words in refused.value.sentence
    assert await recovery.store.reference(workspace=W1, key="config:catalogue") == before


async def test_the_plain_api_checks_items_built_in_code_too(recovery):
    """What the App Home's forms call: a negative or typed-in default is checked the same way."""
    for bad, words in ((CatalogueItem("Cake", Decimal("-1")), "can't be negative"),
                       (CatalogueItem("Cake", "abc"), "isn't an amount"),
                       (CatalogueItem("Cake", Decimal("5"), percent=Decimal(10)), "not both")):
        with pytest.raises(CatalogueRefusal, match=words):
            await put_item(recovery.store, W1, bad, currency="USD")
    assert (await put_item(recovery.store, W1, CatalogueItem("Cake", "$7.50"), currency="USD")).default_amount == \
        Decimal("7.50")


async def test_an_edit_changes_an_item_where_it_stands_and_a_bad_one_changes_nothing(recovery):
    """What the App Home's catalogue form does when an item's name is typed again."""
    await put_item(recovery.store, W1, DESSERT, currency="USD")
    await put_item(recovery.store, W1, item("free DESSERT", "20%", ":cake:", currency="USD"), currency="USD",
                   edit=True)
    items = await catalogue(recovery.store, W1)
    assert [i.label("USD") for i in items] == [*DEFAULT_CATALOGUE, ":cake: free DESSERT · 20% off"]
    with pytest.raises(CatalogueRefusal, match="can't be negative"):
        await put_item(recovery.store, W1, CatalogueItem("voucher", Decimal(-1)), currency="USD", edit=True)
    assert await catalogue(recovery.store, W1) == items


def test_a_long_catalogue_is_listed_whole_in_slack_sections_of_at_most_3000_characters():
    from cards.slack import SECTION_MAX, catalogue_message
    from slack_sdk.models.blocks import Block

    items = [CatalogueItem("W" * 36 + f"{n:03d}", Decimal("999999.99"), ":" + "a" * 30 + ":") for n in range(50)]
    _, blocks = catalogue_message(items, currency="USD")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) > 1 and all(len(text) <= SECTION_MAX for text in sections)
    assert all(Block.parse(b) is not None for b in blocks)
    listed = "\n".join(sections)
    assert all(f"{i.name} · $999,999.99" in listed for i in items) and "…" not in listed


async def test_removing_an_unknown_or_the_last_item_is_refused(recovery):
    with pytest.raises(CatalogueRefusal, match="no “pony” in the catalogue. It has: comp item"):
        await remove_item(recovery.store, W1, "pony")
    for name in DEFAULT_CATALOGUE[:-1]:
        await remove_item(recovery.store, W1, name)
    with pytest.raises(CatalogueRefusal, match="at least one item"):
        await remove_item(recovery.store, W1, "other")
    assert [i.name for i in await catalogue(recovery.store, W1)] == ["other"]


async def test_giving_an_item_records_its_default_or_its_share_of_the_bill(recovery):
    await put_item(recovery.store, W1, DESSERT, currency="USD")
    await put_item(recovery.store, W1, TWENTY_OFF, currency="USD")
    case = await _to_compensate(recovery)
    given, entry = await recovery.give(workspace=W1, case_id=case.id, actor="U1", kind="free dessert", amount_text="")
    assert (given.compensation.kind, entry.amount) == ("Free dessert", Decimal("8"))  # blank: the default
    case = await _to_compensate(recovery)
    _, entry = await recovery.give(workspace=W1, case_id=case.id, actor="U1", kind="20% off the bill",
                                   amount_text="$45")
    assert (entry.kind, entry.amount) == ("20% off the bill", Decimal("9.00"))  # 20% of $45.00
    case = await _to_compensate(recovery)
    with pytest.raises(InvalidAmount, match="Type the bill: 20% of it"):
        await recovery.give(workspace=W1, case_id=case.id, actor="U1", kind="20% off the bill", amount_text="")
    with pytest.raises(Refusal, match="over your limit"):  # 20% of $200 is $40, over the $25 limit
        await recovery.give(workspace=W1, case_id=case.id, actor="U1", kind="20% off the bill", amount_text="200")
    with pytest.raises(Refusal, match="Pick one of: comp item, discount, voucher, refund, other, Free dessert"):
        await recovery.give(workspace=W1, case_id=case.id, actor="U1", kind="a pony", amount_text="5")
    assert len(await recovery.store.ledger(workspace=W1)) == 2


def test_a_percent_item_says_its_share_unless_its_name_already_does():
    assert TWENTY_OFF.label("USD") == "20% off the bill"
    assert CatalogueItem("Birthday", percent=Decimal(10), emoji="🎂").label("USD") == "🎂 Birthday · 10% off"
    assert CatalogueItem("Happy hour 20%", percent=Decimal(2)).label("USD") == "Happy hour 20% · 2% off"
    assert CatalogueItem("Staff 12.5%", percent=Decimal("2.5")).label("USD") == "Staff 12.5% · 2.5% off"


def test_a_percent_is_rounded_to_the_currencys_minor_units():
    assert TWENTY_OFF.value("44.99", currency="USD") == Decimal("9.00")  # 8.998
    assert CatalogueItem("x", percent=Decimal("12.5")).value("0.20", currency="USD") == Decimal("0.03")  # 0.025 up
    assert TWENTY_OFF.value("1,234", currency="JPY") == Decimal("247")  # 246.8, yen has no minor units
    with pytest.raises(InvalidAmount, match="rounds to nothing"):
        TWENTY_OFF.value("0.01", currency="USD")


# --- the command ------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, parsed", [
    ("admin catalogue", commands.ShowCatalogue()),
    ("admin catalogue add Free dessert 8 🍰", commands.AddCatalogueItem("Free dessert", "8", "🍰")),
    ("admin catalogue add Free dessert=$8.50", commands.AddCatalogueItem("Free dessert", "$8.50", "")),
    ('admin catalogue add "Table for 2" 10 :cake:', commands.AddCatalogueItem("Table for 2", "10", ":cake:")),
    ("admin catalogue add “Table for 2”", commands.AddCatalogueItem("Table for 2", "", "")),
    ("admin catalogue add 20% off the bill 20%", commands.AddCatalogueItem("20% off the bill", "20%", "")),
    ("admin catalogue add Drink on the house", commands.AddCatalogueItem("Drink on the house", "", "")),
    ("admin catalogue add Room upgrade :star:", commands.AddCatalogueItem("Room upgrade", "", ":star:")),
    ("admin catalogue add Free dessert=abc", commands.AddCatalogueItem("Free dessert", "abc", "")),
    # a negative value is read as one (and refused), not saved as part of the name
    ("admin catalogue add Free dessert $-8", commands.AddCatalogueItem("Free dessert", "$-8", "")),
    ("admin catalogue add Free dessert £-8 🍰", commands.AddCatalogueItem("Free dessert", "£-8", "🍰")),
    ("admin catalogue add Free dessert USD-8", commands.AddCatalogueItem("Free dessert", "USD-8", "")),
    ("admin catalogue remove Free dessert", commands.RemoveCatalogueItem("Free dessert")),
    ('admin catalogue remove "Free dessert"', commands.RemoveCatalogueItem("Free dessert")),
])
def test_the_catalogue_command_reads_names_values_and_emoji(typed, parsed):
    assert commands.parse(typed) == parsed


@pytest.mark.parametrize("typed", ["admin catalogue frob", "admin catalogue remove", 'admin catalogue add "x" 8 9',
                                   "admin catalogue add Free dessert="])
def test_a_catalogue_command_that_cant_be_read_says_how_to_write_it(typed):
    with pytest.raises(Refusal, match="Usage: `/recover admin catalogue"):
        commands.parse(typed)


# --- Slack ------------------------------------------------------------------------------------

async def _said(fake_slack, words: str):
    return (await fake_slack.wait_for("response_url", where=lambda c: words in c.args.get("text", "")))[0]


async def test_slack_admins_edit_the_catalogue_and_the_give_form_offers_it(slack, fake_slack, bot):
    await slack.command("admin catalogue add Free dessert 8 :cake:", user="UADMIN", user_name="ada")
    await _said(fake_slack, "Saved. People can now give “:cake: Free dessert · $8”.")
    await slack.command("admin catalogue add Free dessert=-8", user="UADMIN", user_name="ada")
    await _said(fake_slack, "An amount can't be negative")
    await slack.command("admin catalogue add Cake", user="U1")
    await _said(fake_slack, "Only Amends admins can do that")
    await slack.command("admin catalogue remove refund", user="UADMIN", user_name="ada")
    await _said(fake_slack, "Removed “refund” from the catalogue")
    await slack.command("admin catalogue", user="UADMIN", user_name="ada")
    listed = await _said(fake_slack, "Compensation catalogue")
    shown = json.dumps(listed.args["blocks"], ensure_ascii=False)
    assert ":cake: Free dessert · $8" in shown and "refund" not in shown
    assert [i.name for i in await bot.recovery.kinds(workspace="T1")] == [
        "comp item", "discount", "voucher", "other", "Free dessert"]

    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    status, body = await give(slack, fake_slack, compensate, "", kind="Free dessert")
    assert (status, body) == (200, "")  # blank: the item's own value
    [form] = fake_slack.of("views.open")
    options = next(b for b in form.args["view"]["blocks"] if b.get("block_id") == "kind")["element"]["options"]
    assert [o["text"]["text"] for o in options][-1] == ":cake: Free dessert · $8"
    amount = next(b for b in form.args["view"]["blocks"] if b.get("block_id") == "amount")
    assert amount["optional"] and "Blank gives" in amount["hint"]["text"]
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert (entry.kind, entry.amount) == ("Free dessert", Decimal("8"))


async def test_slack_sends_a_typed_ampersand_escaped_and_the_item_keeps_what_the_admin_typed(slack, fake_slack, bot):
    await slack.command("admin catalogue add Fish &amp; chips 8", user="UADMIN", user_name="ada")  # as Slack sends it
    await _said(fake_slack, "Saved. People can now give “Fish &amp; chips · $8”.")  # escaped once: reads "&"
    assert [i.name for i in await bot.recovery.kinds(workspace="T1")][-1] == "Fish & chips"
    await slack.command("admin catalogue", user="UADMIN", user_name="ada")
    listed = json.dumps((await _said(fake_slack, "Compensation catalogue")).args["blocks"], ensure_ascii=False)
    assert "• Fish &amp; chips · $8" in listed and "&amp;amp;" not in listed  # escaped once, for mrkdwn
    await slack.command("admin catalogue remove Fish &amp; chips", user="UADMIN", user_name="ada")
    await _said(fake_slack, "Removed “Fish &amp; chips” from the catalogue")
    assert "Fish & chips" not in [i.name for i in await bot.recovery.kinds(workspace="T1")]


# --- Teams ------------------------------------------------------------------------------------

async def test_teams_admins_edit_the_catalogue_and_the_compensate_card_offers_it(teams, connector, teams_bot):
    await teams.say("recover admin catalogue add 20% off the bill 20%", user=ADA)
    await wait_answer(connector, "Saved. People can now give “20% off the bill”.")
    await teams.say("recover admin catalogue add Free dessert=eight", user=ADA)
    await wait_answer(connector, "'eight' isn't an amount")
    await teams.say("recover admin catalogue add Cake", user=AMY)
    await wait_answer(connector, "Only Amends admins can do that")
    await teams.say("recover admin catalogue", user=ADA)
    listed = await wait_answer(connector, "Compensation catalogue")
    assert "20% off the bill" in listed.shown

    await teams_open_case(teams)
    compensate = await teams_walk_to(teams, Step.COMPENSATE)
    kind = next(e for e in compensate.card["body"] if e.get("id") == "kind")
    assert kind["choices"][-1] == {"title": "20% off the bill", "value": "20% off the bill"}
    amount = next(e for e in compensate.card["body"] if e.get("id") == "amount")
    assert amount["label"] == "Value, or the bill for a % off (USD)"  # a card can't relabel it when one is picked
    status, body = await teams.execute(compensate, "give", {"kind": "20% off the bill", "amount": "200"})
    assert "over your limit" in answer_of(body)  # 20% of $200
    status, body = await teams.execute(compensate, "give", {"kind": "20% off the bill", "amount": "45"})
    assert status == 200 and "20% off the bill · $9" in str(body["value"])
    [entry] = await teams_bot.recovery.store.ledger(workspace="72f988bf-86f1-41af-91ab-2d7cd011db47")
    assert entry.amount == Decimal("9.00")


async def test_in_teams_an_item_with_its_own_value_is_given_in_one_tap(teams, connector, teams_bot):
    for typed in ("Free dessert 8 🍰", "Room upgrade 40"):  # $40 is over Amy's $25: no one-tap button
        await teams.say(f"recover admin catalogue add {typed}", user=ADA)
        await wait_answer(connector, "Saved. People can now give")
    await teams_open_case(teams)
    compensate = await teams_walk_to(teams, Step.COMPENSATE)
    [quick] = [e for e in compensate.card["body"] if e["type"] == "ActionSet"]
    assert [a["title"] for a in quick["actions"]] == ["🍰 Free dessert · $8"]
    tap = quick["actions"][0]
    assert (tap["verb"], tap["associatedInputs"], tap["data"]["kind"], tap["data"]["amount"]) == (
        "give", "none", "Free dessert", "8.00")
    status, body = await teams.post(teams.tap(compensate, "give") | {"value": {"action": {
        "type": "Action.Execute", "title": tap["title"], "verb": "give", "data": tap["data"]}}})
    assert status == 200 and "Free dessert · $8" in str(body["value"])
    [entry] = await teams_bot.recovery.store.ledger(workspace="72f988bf-86f1-41af-91ab-2d7cd011db47")
    assert (entry.kind, entry.amount) == ("Free dessert", Decimal("8"))


async def test_picking_an_item_in_the_slack_give_form_prefills_its_value(slack, fake_slack, bot):
    await put_item(bot.recovery.store, "T1", DESSERT, currency="USD")
    await put_item(bot.recovery.store, "T1", TWENTY_OFF, currency="USD")
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    await slack.click(compensate, "give")
    [opened] = await fake_slack.wait_for("views.open")

    async def pick(view: dict, name: str) -> dict:
        """Slack's block_actions when an item is picked in the form (dispatch_action on its input)."""
        payload = fixture_json("block_actions_home.json")
        payload["view"] = {**payload["view"], **view, "hash": "1700000000.h"}
        option = next(o for o in view["blocks"][1]["element"]["options"] if o["value"] == name)
        payload["actions"] = [{"type": "static_select", "action_id": "kind", "block_id": "kind",
                               "selected_option": option, "action_ts": f"{time.time():.6f}{uuid.uuid4().int % 10}"}]
        count = len(fake_slack.of("views.update"))
        assert (await slack.post(urlencode({"payload": json.dumps(payload)})))[0] == 200
        return (await fake_slack.wait_for("views.update", count=count + 1))[count]

    assert opened.args["view"]["blocks"][1]["dispatch_action"] is True
    dessert = await pick(opened.answer["view"], "Free dessert")
    assert dessert.args["view_id"] == opened.answer["view"]["id"] and dessert.args["hash"] == "1700000000.h"
    amount = dessert.args["view"]["blocks"][2]
    assert amount["element"]["initial_value"] == "8" and amount["element"]["action_id"] != "amount"
    assert dessert.args["view"]["blocks"][1]["element"]["initial_option"]["value"] == "Free dessert"
    twenty = await pick(dessert.answer["view"], "20% off the bill")
    assert twenty.args["view"]["blocks"][2]["label"]["text"] == "Bill (USD): 20% of it is given"
    assert "initial_value" not in twenty.args["view"]["blocks"][2]["element"]

    # the redrawn form records what is typed under the item's own input
    status, body = await slack.submit(twenty, {"amount": "45"})
    assert (status, body) == (200, "")
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert (entry.kind, entry.amount) == ("20% off the bill", Decimal("9.00"))
