"""The Slack App Home: published on app_home_opened, admin forms with the commands' checks, within Slack's limits.

Through the real entry point (/slack/events) with signed Slack-shaped payloads; the fake Slack
validates every view (slack_sdk models, 100 blocks for a Home) and the fixtures assert it found nothing.
"""

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from slack_sdk.models.views import View

from bot.cases import Case, Compensation, MessageRef, StepDone
from bot.catalogue import catalogue
from bot.checklist import CHECKLIST
from bot.home import Home, RoleSpend, Team, WorkspaceSettings
from bot.managers import Managers
from bot.periods import Period
from bot.roles import Allowance, Budget, Role, default_role
from cards import slack_home as cards
from cards.slack import BUTTON_MAX, SECTION_MAX
from tests.doubles.slack_api import VIEW_BLOCKS_MAX
from tests.flows import open_case
from tests.doubles.slack_client import fixture_json
from tests.test_socket_mode import socket_bot, socket_double  # noqa: F401 — Socket Mode fixtures

ADMIN = dict(user="UADMIN", user_name="ada")  # a workspace admin in the fake Slack


async def home_of(slack, fake_slack, user="U1", *, count=1):
    status, _ = await slack.event({"user": user})
    assert status == 200
    return (await fake_slack.wait_for("views.publish", count=count, where=lambda c: c.args["user_id"] == user))[-1]


def shown(view_call) -> str:
    return json.dumps(view_call.args["view"]["blocks"], ensure_ascii=False)


def buttons(view_call) -> list[str]:
    return [e["action_id"] for b in view_call.args["view"]["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def form(slack, fake_slack, home, action: str, **who):
    trigger = f"{action}-{len(fake_slack.of('views.open'))}"
    status, _ = await slack.click_view(home, action, trigger_id=trigger, **who)
    assert status == 200
    return (await fake_slack.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger))[0]


def option(value: str) -> dict:
    return {"selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}


async def errors_of(slack, opened, values, **who) -> dict:
    status, body = await slack.submit(opened, values, **{**ADMIN, **who})
    assert status == 200
    return json.loads(body)["errors"] if body else {}


# --- everyone -----------------------------------------------------------------------------------

async def test_opening_the_home_shows_my_cases_with_links_and_what_i_can_give(slack, fake_slack, bot):
    card = await open_case(slack, fake_slack)
    home = await home_of(slack, fake_slack)
    view = home.args["view"]
    assert view["type"] == "home" and home.answer["ok"]
    text = shown(home)
    assert "You can give up to $25 here · $100 left this week" in text
    link = f"https://amends-test.slack.com/archives/{card.answer['channel']}/p{card.answer['ts'].replace('.', '')}"
    assert f"<{link}|R-1001>" in text and "cold soup, table 4" in text and "next: Apologise" in text
    assert "Your team" not in text and "Settings" not in text and buttons(home) == []


async def test_each_cases_link_is_asked_of_slack_once_however_often_the_home_is_opened(slack, fake_slack, bot):
    await open_case(slack, fake_slack)
    for count in (1, 2, 3):
        assert "|R-1001>" in shown(await home_of(slack, fake_slack, count=count))
    assert len(fake_slack.of("chat.getPermalink")) == 1


async def test_the_messages_tab_publishes_nothing(slack, fake_slack, bot):
    assert (await slack.event({"user": "U2", "tab": "messages"}))[0] == 200
    await home_of(slack, fake_slack, "U1")  # a later delivery is published: the earlier one was skipped
    assert [c.args["user_id"] for c in fake_slack.of("views.publish")] == ["U1"]


async def test_a_manager_sees_the_team_and_a_plain_member_does_not(slack, fake_slack, bot):
    await bot.recovery.set_limit(workspace="T1", role="shift-lead", limit="50", budget="200/week")
    await bot.recovery.assign_role(workspace="T1", person="U2", role="shift-lead")
    await open_case(slack, fake_slack)
    assert "Your team" not in shown(await home_of(slack, fake_slack, "U2"))
    await slack.command("admin manager shift-lead on", **ADMIN)
    said = (await fake_slack.wait_for("response_url"))[0].args["text"]
    assert said.startswith("Saved. People in shift-lead are managers now")
    text = shown(await home_of(slack, fake_slack, "U2", count=2))
    assert "Your team" in text and "*Open cases (1)*" in text and "Amy · open" in text
    assert "*Recoveries this week*\\n0" in text and "Settings" not in text


async def test_the_manager_command_refuses_an_unknown_role_and_a_non_admin(slack, fake_slack, bot):
    await slack.command("admin manager chef on", **ADMIN)
    await slack.command("admin manager staff on", user="U1")
    said = [c.args["text"] for c in await fake_slack.wait_for("response_url", count=2)]
    assert any("There is no role 'chef'" in s for s in said) and any("Only Amends admins" in s for s in said)
    assert await bot.recovery.store.reference(workspace="T1", key="config:managing_roles") is None


async def test_slash_recover_home_points_to_the_tab(slack, fake_slack, bot):
    await slack.command("home")
    said = (await fake_slack.wait_for("response_url"))[0].args["text"]
    assert "Home" in said and "sidebar" in said
    assert await bot.recovery.open_cases(workspace="T1", owner="U1") == []


# --- admins -----------------------------------------------------------------------------------

async def test_an_admin_gets_the_settings_and_each_button_opens_its_form(slack, fake_slack, bot):
    home = await home_of(slack, fake_slack, "UADMIN")
    text = shown(home)
    assert "Your team" in text and "Settings (admins)" in text and "Recovery channel: not set" in text
    assert buttons(home) == ["home_roles", "home_assign", "home_channel", "home_catalogue"]
    titles = []
    for action in buttons(home):
        opened = await form(slack, fake_slack, home, action, **ADMIN)
        titles.append(opened.args["view"]["title"]["text"])
    assert titles == ["Roles and limits", "Assign a role", "Recovery channel", "Catalogue"]


@pytest.mark.parametrize("values, field, sentence", [
    ({"home_role_name": "", "home_per_case": "25"}, "home_role_name", "Type a role name"),
    ({"home_role_name": "server", "home_per_case": ""}, "home_per_case", "Type the most one case may cost"),
    ({"home_role_name": "Server!", "home_per_case": "25"}, "home_role_name", "can't be a role name"),
    ({"home_role_name": "server", "home_per_case": "abc"}, "home_per_case", "The per-case limit 'abc' isn't an amount"),
    ({"home_role_name": "server", "home_per_case": "-5"}, "home_per_case", "can't be negative"),
    ({"home_role_name": "server", "home_per_case": "25", "home_budget": "lots"}, "home_budget",
     "The budget 'lots' isn't an amount"),
])
async def test_the_roles_form_refuses_what_the_command_refuses_and_saves_nothing(slack, fake_slack, bot, values,
                                                                                 field, sentence):
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_roles", **ADMIN)
    errors = await errors_of(slack, opened, values)
    assert list(errors) == [field] and sentence in errors[field]
    assert await bot.recovery.store.roles(workspace="T1") == []
    assert len(fake_slack.of("views.publish")) == 1  # no re-publish


async def test_saving_a_role_changes_it_and_publishes_the_home_again(slack, fake_slack, bot):
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_roles", **ADMIN)
    values = {"home_role_name": "Server", "home_per_case": "30", "home_budget": "150", "home_period": option("month")}
    assert await errors_of(slack, opened, values) == {}
    role = await bot.recovery.store.role(workspace="T1", name="server")
    assert (role.limit, role.budget) == (Decimal("30"), Budget(Decimal("150"), Period.MONTH))
    again = await home_of(slack, fake_slack, "UADMIN", count=2)  # published after the save (and on this open)
    assert "server: $30 per case · $150 per month" in shown(again)
    opened = await form(slack, fake_slack, again, "home_roles", **ADMIN)
    assert await errors_of(slack, opened, {"home_role_name": "server", "home_per_case": "35"}) == {}
    role = await bot.recovery.store.role(workspace="T1", name="server")  # only the per-case limit changed:
    assert (role.limit, role.budget) == (Decimal("35"), Budget(Decimal("150"), Period.MONTH))  # as the command
    assert await errors_of(slack, opened, {"home_role_name": "server", "home_per_case": "35",
                                           "home_budget": "None"}) == {}
    assert (await bot.recovery.store.role(workspace="T1", name="server")).budget is None  # "none" removes it
    assert await errors_of(slack, opened, {"home_role_name": "staff", "home_per_case": "20",
                                           "home_budget": "60/day", "home_period": option("month")}) == {}
    staff = await bot.recovery.store.role(workspace="T1", name="staff")  # a period typed with the amount wins
    assert (staff.limit, staff.budget) == (Decimal("20"), Budget(Decimal("60"), Period.DAY))


async def test_the_roles_form_marks_a_role_managing_so_no_command_is_needed(slack, fake_slack, bot):
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_roles", **ADMIN)
    radio = next(b for b in opened.args["view"]["blocks"] if b.get("block_id") == "home_managing")["element"]
    assert radio["initial_option"]["value"] == "keep"
    values = {"home_role_name": "shift-lead", "home_per_case": "50", "home_managing": option("on")}
    assert await errors_of(slack, opened, {**values, "home_per_case": "lots"}) == {
        "home_per_case": "The per-case limit 'lots' isn't an amount. Type a number, like 25 or 12.50."}
    assert await bot.recovery.store.reference(workspace="T1", key="config:managing_roles") is None  # refused: nothing
    assert await errors_of(slack, opened, values) == {}
    assert await Managers(recovery=bot.recovery).managing_roles(workspace="T1") == {"shift-lead"}
    again = await home_of(slack, fake_slack, "UADMIN", count=2)
    assert "shift-lead: $50 per case · no period budget · *managing*" in shown(again)
    opened = await form(slack, fake_slack, again, "home_roles", **ADMIN)
    assert "shift-lead: $50 per case · no period budget · *managing*" in opened.args["view"]["blocks"][0]["text"]["text"]
    assert await errors_of(slack, opened, {"home_role_name": "shift-lead", "home_per_case": "60"}) == {}  # kept
    assert await Managers(recovery=bot.recovery).managing_roles(workspace="T1") == {"shift-lead"}
    assert await errors_of(slack, opened, {"home_role_name": "shift-lead", "home_per_case": "60",
                                           "home_managing": option("off")}) == {}
    assert await Managers(recovery=bot.recovery).managing_roles(workspace="T1") == set()


async def test_the_assign_form_checks_the_person_and_the_role(slack, fake_slack, bot):
    await bot.recovery.set_limit(workspace="T1", role="server", limit="25", budget=None)
    fake_slack.add_user("UBOTTY", "botty", is_bot=True)
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_assign", **ADMIN)
    assert [o["value"] for o in opened.args["view"]["blocks"][1]["element"]["options"]] == ["server", "staff"]
    assert await errors_of(slack, opened, {}) == {"home_person": "Pick a person.", "home_role": "Pick a role."}
    forged = await errors_of(slack, opened, {"home_person": {"selected_user": "U1"}, "home_role": option("chef")})
    assert list(forged) == ["home_role"] and "There is no role 'chef'" in forged["home_role"]
    bot_account = await errors_of(slack, opened, {"home_person": {"selected_user": "UBOTTY"},
                                                  "home_role": option("server")})
    assert "deactivated or a bot" in bot_account["home_person"]
    gone = await errors_of(slack, opened, {"home_person": {"selected_user": "U999"}, "home_role": option("server")})
    assert gone == {"home_person": "I can't find that person in this workspace."}  # as the command says it
    assert await bot.recovery.store.role_of(workspace="T1", person="U1") is None
    assert await errors_of(slack, opened, {"home_person": {"selected_user": "U1"}, "home_role": option("server")}) == {}
    assert await bot.recovery.store.role_of(workspace="T1", person="U1") == "server"


async def test_the_channel_form_saves_only_a_channel_the_bot_can_post_in(slack, fake_slack, bot):
    fake_slack.cannot_post.add("CSECRET")
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_channel", **ADMIN)
    assert await errors_of(slack, opened, {}) == {"home_channel": "Pick a channel."}
    refused = await errors_of(slack, opened, {"home_channel": {"selected_conversation": "CSECRET"}})
    assert "I can't post in that channel (not_in_channel)" in refused["home_channel"]
    assert await bot.recovery.recovery_channel(workspace="T1") is None
    assert await errors_of(slack, opened, {"home_channel": {"selected_conversation": "CRECOVER"}}) == {}
    assert await bot.recovery.recovery_channel(workspace="T1") == "CRECOVER"
    again = await home_of(slack, fake_slack, "UADMIN", count=2)
    assert "Recovery channel: <#CRECOVER>" in shown(again)
    assert await form(slack, fake_slack, again, "home_channel", **ADMIN)
    assert fake_slack.of("views.open")[-1].args["view"]["blocks"][1]["element"]["initial_conversation"] == "CRECOVER"


async def test_a_non_admin_forging_an_admin_button_is_told_and_nothing_opens(slack, fake_slack, bot):
    home = await home_of(slack, fake_slack, "UADMIN")
    await slack.click_view(home, "home_roles", user="U1", user_name="amy")
    told = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DBOTU1")
    assert "Only Amends admins can do that" in told[0].args["text"]
    assert fake_slack.of("views.open") == []


async def test_a_non_admin_forging_a_form_submission_changes_nothing(slack, fake_slack, bot):
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_roles", **ADMIN)
    errors = await errors_of(slack, opened, {"home_role_name": "server", "home_per_case": "999"}, user="U1",
                             user_name="amy")
    assert "Only Amends admins" in errors["home_role_name"]
    assert await bot.recovery.store.roles(workspace="T1") == []


# --- Slack's limits, with the worst a busy workspace can send ----------------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
WORST = "<!channel> *bold* " + "😡" * 3000


def a_case(n: int, *, closed: bool = False) -> Case:
    done = {s: StepDone(at=NOW) for s in CHECKLIST} if closed else {}
    case = Case(workspace="T1", id=f"R-{1000 + n}", owner="U1", owner_name=WORST, what_happened=WORST, customer=WORST,
                opened_at=NOW - timedelta(hours=n), done=done, card=MessageRef("C1", f"1.{n}"), root_cause=WORST)
    if closed:
        case = replace(case, closed_at=NOW, compensation=Compensation(kind=WORST, amount=Decimal(5), currency="USD"))
    return case


def busiest_home() -> Home:
    roles = tuple(Role(workspace="T1", name=f"role-{n}", limit=Decimal(25), budget=Budget(Decimal(100), Period.WEEK))
                  for n in range(200))
    return Home(person="U1", currency="USD", now=NOW, open_cases=tuple(a_case(n) for n in range(300)),
                allowance=Allowance(role=default_role("T1"), spent=Decimal(0), currency="USD"),
                recent=tuple(a_case(n, closed=True) for n in range(300)),
                team=Team(open_cases=tuple((a_case(n), timedelta(hours=n)) for n in range(500)),
                          spend=tuple(RoleSpend(role=r, spent=Decimal(50), people=3) for r in roles),
                          recoveries_this_week=300, median_time_to_recover=timedelta(minutes=7),
                          root_causes=tuple((WORST + str(n), n) for n in range(5)), week_starts=NOW),
                settings=WorkspaceSettings(roles=roles, managing=frozenset({"role-1"}), channel="C1",
                                           catalogue=tuple(WORST for _ in range(100))))


def test_the_busiest_home_fits_slacks_limits_and_says_how_many_more():
    view = cards.home_view(busiest_home(), links={f"R-{1000 + n}": f"https://x.slack.com/archives/C1/p{n}"
                                                  for n in range(300)})
    View(**view).validate_json()
    assert len(view["blocks"]) <= VIEW_BLOCKS_MAX
    texts = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section" and "text" in b]
    assert all(len(t) <= SECTION_MAX for t in texts)
    assert all(len(e["text"]["text"]) <= BUTTON_MAX for b in view["blocks"] if b["type"] == "actions"
               for e in b["elements"])
    joined = "\n".join(texts)
    for title, total in (("Your open cases", 300), ("Open cases (500)", 500), ("Recovered by you", 300),
                         ("Roles, limits and budgets", 200), ("Compensation catalogue", 100)):
        [section] = [t for t in texts if t.startswith(f"*{title}")]
        listed = section.count("\n• ")
        assert listed >= 5 and section.endswith(f"\n…and {total - listed} more"), title
    assert "<!channel>" not in json.dumps(view) and "&lt;!channel&gt;" in joined


def test_a_line_break_typed_in_what_happened_keeps_each_case_on_one_line():
    case = replace(a_case(1), what_happened="cold soup\n• R-9999 · <!here> fake\n\nline")
    home = replace(busiest_home(), open_cases=(case,), recent=(), team=None, settings=None)
    [mine] = [b["text"]["text"] for b in cards.home_view(home)["blocks"] if b["type"] == "section"
              and b["text"]["text"].startswith("*Your open cases")]
    assert mine.split("\n")[1:] == ["• R-1001 · cold soup • R-9999 · &lt;!here&gt; fake line · next: Apologise"]


def test_every_form_is_a_valid_view_even_with_many_roles():
    roles = [Role(workspace="T1", name=f"role-{n}", limit=Decimal(25)) for n in range(300)]
    for view in (cards.roles_form(roles, currency="USD"), cards.assign_form(roles), cards.channel_form(None),
                 cards.channel_form("C1"), cards.catalogue_form(tuple(WORST for _ in range(100)))):
        View(**view).validate_json()
        assert len(view["blocks"]) <= VIEW_BLOCKS_MAX


async def test_the_catalogue_form_adds_and_removes_with_the_commands_checks(slack, fake_slack, bot):
    opened = await form(slack, fake_slack, await home_of(slack, fake_slack, "UADMIN"), "home_catalogue", **ADMIN)
    for values, field, sentence in [
        ({"home_item_name": ""}, "home_item_name", "Type the name of the item"),
        ({"home_item_name": "Free dessert", "home_item_value": "-8"}, "home_item_value", "can't be negative"),
        ({"home_item_name": "Free dessert", "home_item_value": "lots"}, "home_item_value", "isn't an amount"),
        ({"home_item_name": "Free dessert", "home_item_value": "120%"}, "home_item_value", "at most 100%"),
        ({"home_item_name": "Free dessert", "home_item_emoji": "cake"}, "home_item_emoji", "isn't an emoji"),
        ({"home_item_name": "caviar", "home_item_remove": {"selected_options": [{"value": "remove"}]}},
         "home_item_name", "There is no “caviar”"),
    ]:
        errors = await errors_of(slack, opened, values)
        assert list(errors) == [field] and sentence in errors[field], (values, errors)
    assert await bot.recovery.store.reference(workspace="T1", key="config:catalogue") is None  # nothing saved
    assert await errors_of(slack, opened, {"home_item_name": "Free dessert", "home_item_value": "8",
                                           "home_item_emoji": "🍰"}) == {}
    again = await home_of(slack, fake_slack, "UADMIN", count=2)
    assert "🍰 Free dessert · $8" in shown(again)
    opened = await form(slack, fake_slack, again, "home_catalogue", **ADMIN)
    assert "Type an item's name to change it" in json.dumps(opened.args["view"])
    # an item's name typed again changes it where it stands (the command refuses a duplicate instead)
    assert await errors_of(slack, opened, {"home_item_name": "VOUCHER", "home_item_value": "15",
                                           "home_item_emoji": ":ticket:"}) == {}
    assert [i.label("USD") for i in await catalogue(bot.recovery.store, "T1")] == [
        "comp item", "discount", ":ticket: VOUCHER · $15", "refund", "other", "🍰 Free dessert · $8"]
    assert await errors_of(slack, opened, {"home_item_name": "voucher", "home_item_value": "-1"}) == {
        "home_item_value": "An amount can't be negative: '-1'."}  # a bad edit changes nothing either
    assert (await catalogue(bot.recovery.store, "T1"))[2].label("USD") == ":ticket: VOUCHER · $15"
    assert await errors_of(slack, opened, {"home_item_name": "voucher"}) == {}
    assert await errors_of(slack, opened, {"home_item_name": "free dessert", "home_item_value": "-8",
                                           "home_item_remove": {"selected_options": [{"value": "remove"}]}}) == {}
    await fake_slack.wait_for("views.publish", where=lambda c: "Free dessert" not in shown(c) and c.args["user_id"] ==
                              "UADMIN" and "voucher" in shown(c))  # published again after the removal
    assert [i.label("USD") for i in await catalogue(bot.recovery.store, "T1", default=bot.recovery.catalogue)] == [
        "comp item", "discount", "voucher", "refund", "other"]


async def test_a_redelivered_event_publishes_once(slack, fake_slack, bot):
    for _ in range(2):  # Slack retries with the same event_id when our answer was slow
        assert (await slack.event({"user": "U1"}, event_id="Ev0SAME", headers={"X-Slack-Retry-Num": "1"}))[0] == 200
    await slack.event({"user": "U2"})
    await fake_slack.wait_for("views.publish", where=lambda c: c.args["user_id"] == "U2")
    assert sorted(c.args["user_id"] for c in fake_slack.of("views.publish")) == ["U1", "U2"]


def test_the_fake_slack_refuses_a_home_slack_would_refuse(fake_slack):
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    too_many = fake_slack._answer("views.publish", {"user_id": "U1", "view": {"type": "home", "blocks": [section] * 101}})
    not_home = fake_slack._answer("views.publish", {"user_id": "U1", "view": {"type": "modal", "blocks": [section],
                                                                             "title": {"type": "plain_text", "text": "x"}}})
    no_user = fake_slack._answer("views.publish", {"view": {"type": "home", "blocks": [section]}})
    assert [a["ok"] for a in (too_many, not_home, no_user)] == [False, False, False]
    assert "101 blocks, over Slack's 100" in too_many["detail"] and "not a home view" in not_home["detail"]
    assert "no user_id" in no_user["detail"]
    fake_slack.problems.clear()  # found on purpose


async def test_the_home_is_published_over_socket_mode_too(socket_bot, socket_double, fake_slack):
    envelope = fixture_json("app_home_opened.json")
    ack = await socket_double.send("events_api", envelope, accepts_response_payload=False, retry_attempt=0,
                                   retry_reason="")
    assert ack["envelope_id"].startswith("envelope-")
    [published] = await fake_slack.wait_for("views.publish")
    assert published.args["user_id"] == "U1" and published.args["view"]["type"] == "home"
