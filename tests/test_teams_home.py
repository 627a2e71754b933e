"""`recover home` in Teams (no App Home there): the Home's content as an Adaptive Card 1.5 under 28 KB."""

import json
from dataclasses import replace

import pytest

from cards import teams as teams_cards
from cards.teams_home import home_card
from handlers.teams.publish import RECOVERY_CHANNEL
from handlers.teams.turns import card_activity
from tests.doubles.bf_connector import activity_problems, card_problems
from tests.doubles.teams_driver import ADA, AMY, BEN, RECOVERIES, open_case, wait_answer
from tests.test_slack_home import WORST, busiest_home
from tests.test_teams_cards import on_the_wire

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def every_home() -> dict[str, tuple[str, dict]]:
    busiest = busiest_home()
    return {
        "plain, empty": home_card(replace(busiest, open_cases=(), recent=(), team=None, settings=None)),
        "plain, busy": home_card(replace(busiest, team=None, settings=None)),
        "manager": home_card(replace(busiest, settings=None)),
        "admin, no channel": home_card(busiest),
        "admin, channel": home_card(busiest, channel_name=WORST),
        "admin, in a channel": home_card(busiest, in_channel=True),
        "admin, quiet team": home_card(replace(busiest, team=replace(busiest.team, open_cases=(), spend=(),
                                                                      root_causes=(), median_time_to_recover=None))),
    }


@pytest.mark.parametrize("name", list(every_home()))
def test_every_home_card_is_valid_1_5_and_fits_in_an_activity_with_the_worst_text(name):
    text, card = every_home()[name]
    assert card_problems(card) == []
    assert card["version"] == "1.5" and card["fallbackText"] == text and text
    size = on_the_wire(text, card)
    assert size <= teams_cards.ACTIVITY_MAX, f"{size} bytes"
    assert activity_problems(json.loads(json.dumps(card_activity(text, card).serialize())), size) == []


def test_typed_text_never_reaches_markdown():
    _, card = home_card(busiest_home(), channel_name=WORST)
    words = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert not any("<!channel>" in w or "😡" in w for w in words)  # typed text is only in TextRuns
    assert any(w.startswith("…and ") for w in words)  # the lists were cut to fit, and say so


async def test_recover_home_shows_mine_and_for_an_admin_the_team_and_settings(teams, connector, teams_bot):
    await open_case(teams, "cold soup, table 4")
    assert (await teams.say("recover home"))[0] == 201
    mine = await wait_answer(connector, "Your recoveries")
    assert "You can give up to $25 here · $100 left this week" in mine.shown
    assert "R-1001" in mine.shown and "cold soup, table 4" in mine.shown and "next: Apologise" in mine.shown
    assert "Your team" not in mine.shown and "Settings (admins)" not in mine.shown

    assert (await teams.say("recover home", user=ADA))[0] == 201
    admin = await wait_answer(connector, "Settings (admins)")
    assert "Your team" in admin.shown and "Open cases (1)" in admin.shown and "Amy Baker" in admin.shown
    assert "Recovery channel: not set" in admin.shown and "recover admin manager <role> on|off" in admin.shown


async def test_a_role_marked_managing_sees_the_team(teams, connector, teams_bot):
    recovery = teams_bot.recovery
    await recovery.set_limit(workspace=TENANT, role="shift-lead", limit="50", budget=None)
    await recovery.assign_role(workspace=TENANT, person=BEN.aad, role="shift-lead")
    assert (await teams.say("recover admin manager shift-lead on", user=AMY))[0] == 201
    assert "Only Amends admins" in (await wait_answer(connector, "Only Amends admins")).shown
    assert (await teams.say("recover admin manager chef on", user=ADA))[0] == 201
    assert "There is no role 'chef'" in (await wait_answer(connector, "There is no role")).shown
    assert (await teams.say("recover admin manager shift-lead on", user=ADA))[0] == 201
    await wait_answer(connector, "Saved. People in shift-lead are managers now")
    assert (await teams.say("recover home", user=BEN))[0] == 201
    ben = await wait_answer(connector, "Your team")
    assert "Settings (admins)" not in ben.shown and "shift-lead: $50 per case" in ben.shown


async def test_in_a_channel_the_home_shows_only_mine_and_points_to_the_chat(teams, connector, teams_bot):
    assert (await teams.say("recover home", user=ADA, channel=RECOVERIES))[0] == 201
    shared = await wait_answer(connector, "Your recoveries")
    assert shared.conversation.startswith(RECOVERIES.id)
    assert "only shown in your 1:1 chat" in shared.shown
    assert "Your team" not in shared.shown and "Settings (admins)" not in shared.shown


async def test_in_a_channel_the_home_does_not_look_up_the_recovery_channel_it_won_t_show(teams, connector, teams_bot,
                                                                                         monkeypatch):
    store, keys = teams_bot.recovery.store, []
    real = store.reference

    async def counted(*, workspace, key):
        keys.append(key)
        return await real(workspace=workspace, key=key)
    monkeypatch.setattr(store, "reference", counted)
    assert (await teams.say("recover home", user=ADA, channel=RECOVERIES))[0] == 201
    await wait_answer(connector, "Your recoveries")
    assert RECOVERY_CHANNEL not in keys
    assert (await teams.say("recover home", user=ADA))[0] == 201  # in the 1:1 chat the settings name it
    await connector.wait_for(lambda c: "Settings (admins)" in c.shown)
    assert RECOVERY_CHANNEL in keys
