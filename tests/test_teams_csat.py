"""Low survey scores in Teams (issue 7, part 3): a location mapped to a Teams channel, the unowned case
posted there by POST /api/csat, *Take it* through the real /api/messages, and the fake connector."""

import pytest

from bot.checklist import Step
from bot.csat import place_of
from bot.store import open_store
from handlers.csat import on_teams
from handlers.teams.commands import usage
from handlers.teams.csat import channel_key
from tests.conftest import SIGNING_SECRET, RunningBot, bot_settings
from tests.doubles.slack_client import SlackDriver
from tests.doubles.teams_driver import (ADA, AMY, BEN, FLOOR, TENANT, TeamsDriver, answer_of, is_step,
                                        teams_settings, wait_answer, wait_step)
from tests.test_csat import SECRET, map_soho as map_soho_in_slack, send

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector (and the driver's helpers)

LOW = {"response_id": "resp-9", "score": 2, "comment": "Cold steak <at>everyone</at>", "customer": "table 9",
       "location": "soho", "employee": "Ben"}


@pytest.fixture
async def csat_teams_bot(connector, clock, tmp_path):
    running = await RunningBot.start(teams_settings(csat_secret=SECRET), store=open_store(str(tmp_path / "a.json")),
                                     clock=clock)
    yield running
    await running.stop()


@pytest.fixture
def teams(csat_teams_bot, connector, http) -> TeamsDriver:
    return TeamsDriver(bot_url=csat_teams_bot.url, connector=connector, session=http)


async def map_soho(teams: TeamsDriver) -> None:
    assert (await teams.say("recover admin location soho here", user=ADA, channel=FLOOR))[0] == 201
    await wait_answer(teams.connector, "Saved. A low survey score from “soho” opens a case in this channel")


async def posted_card(connector):
    """The unowned case's card: a new post in the channel itself, not a reply in anyone's thread."""
    [card] = await connector.wait_for(lambda c: c.method == "POST" and c.conversation == FLOOR.id
                                      and "Take it" in c.shown)
    assert card.activity_id is None
    return card


def take(teams: TeamsDriver, card, person, *, fallback: bool = False) -> dict:
    """A tap on *Take it*, from the card's thread in the channel, as Teams sends it."""
    activity = teams.tap(card, "take", user=person, fallback=fallback)
    activity["conversation"]["id"] = f"{FLOOR.id};messageid={card.id}"
    return activity


async def everything(bot) -> list[tuple[str, str]]:
    return [(c.id, c.owner) for owner in ("", AMY.aad, BEN.aad) for c in
            await bot.recovery.open_cases(workspace=TENANT, owner=owner)]


async def test_a_low_score_opens_a_case_in_the_teams_channel_and_the_first_to_take_it_owns_it(
        teams, connector, csat_teams_bot, http):
    await map_soho(teams)
    assert await send(http, csat_teams_bot, LOW) == (201, {"case": "R-1001", "posted": True})
    card = await posted_card(connector)
    assert "waiting for someone to take it" in card.shown and "Cold steak" in card.shown
    assert "served by Ben" in card.shown and "table 9" in card.shown
    case = await csat_teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert (case.card.channel, case.card.id, case.owner) == (FLOOR.id, card.id, "")
    assert on_teams(await place_of(csat_teams_bot.recovery, "soho"))

    assert [c for c in connector.posts() if is_step(c, "R-1001", Step.APOLOGISE)] == []  # nobody's yet: no checklist

    # The survey tool retries: still one case, one card.
    assert await send(http, csat_teams_bot, LOW) == (200, {"case": "R-1001", "duplicate": True})

    status, body = await teams.post(take(teams, card, BEN))  # Ben is first: the card he sees is his case
    assert status == 200 and "Ben Carter" in str(body["value"]) and "Take it" not in str(body["value"])
    apologise = await wait_step(connector, Step.APOLOGISE)
    assert (apologise.conversation, apologise.activity_id) == (FLOOR.id, card.id)  # in the card's thread
    [updated] = connector.updates(card.id)  # and everyone else sees who took it, in place
    assert "Ben Carter" in updated.shown and "Take it" not in updated.shown and updated.card == body["value"]

    status, body = await teams.post(take(teams, card, AMY))  # Amy, a moment later: told, nothing changes
    assert status == 200 and answer_of(body) == "Ben Carter already took R-1001; nothing changed."
    assert len(connector.updates(card.id)) == 1
    assert await everything(csat_teams_bot) == [("R-1001", BEN.aad)]

    assert (await teams.execute(apologise, "step_done", user=BEN))[0] == 200  # and Ben's recovery goes on
    await wait_step(connector, Step.EMPATHISE)


async def test_an_older_client_takes_it_with_the_action_submit_fallback(teams, connector, csat_teams_bot, http):
    await map_soho(teams)
    await send(http, csat_teams_bot, LOW)
    card = await posted_card(connector)
    assert (await teams.post(take(teams, card, BEN, fallback=True)))[0] == 201
    await wait_step(connector, Step.APOLOGISE)
    assert "Ben Carter" in connector.updates(card.id)[-1].shown
    assert (await teams.post(take(teams, card, AMY, fallback=True)))[0] == 201
    told = await wait_answer(connector, "already took R-1001")
    assert told.conversation == f"{FLOOR.id};messageid={card.id}" and "Ben Carter already took" in told.shown
    assert await everything(csat_teams_bot) == [("R-1001", BEN.aad)]


async def test_a_take_on_an_owned_case_or_a_stale_button_changes_nothing(teams, connector, csat_teams_bot, http):
    await map_soho(teams)
    await send(http, csat_teams_bot, LOW)
    card = await posted_card(connector)
    await teams.post(take(teams, card, BEN))
    status, body = await teams.post(take(teams, card, BEN))  # Ben taps twice
    assert answer_of(body) == "R-1001 is already yours; nothing changed."
    forged = take(teams, card, AMY)
    forged["value"]["action"]["data"]["value"] = "R-1001:apologise"
    assert "out of date" in answer_of((await teams.post(forged))[1])
    assert await everything(csat_teams_bot) == [("R-1001", BEN.aad)]


async def test_a_card_teams_refuses_leaves_the_case_recorded_and_says_so(teams, connector, csat_teams_bot, http):
    await map_soho(teams)
    connector.fail_next(FLOOR.id, status=403, code="MessageWritesBlocked")  # Amends was removed from the team
    assert await send(http, csat_teams_bot, LOW) == (201, {"case": "R-1001", "posted": False})
    assert await everything(csat_teams_bot) == [("R-1001", "")]


@pytest.mark.parametrize("text, where, user, words", [
    ("admin location soho", FLOOR, ADA, "admin location <name> here"),
    ("admin location soho #floor", FLOOR, ADA, "isn't a channel I can find from here"),
    ("admin location Soho!! here", FLOOR, ADA, "can't be a location name"),
    ("admin location soho here", None, ADA, "this is our private chat"),
    ("admin location soho here", FLOOR, AMY, "Only Amends admins"),
])
async def test_bad_location_commands_are_refused_and_change_nothing(
        teams, connector, csat_teams_bot, http, text, where, user, words):
    assert (await teams.say(f"recover {text}", user=user, channel=where))[0] == 201
    told = await connector.wait_for(lambda c: c.method == "POST" and c.card is not None)
    assert words in told[0].shown, told[0].shown
    assert (await send(http, csat_teams_bot, LOW))[0] == 404
    assert await csat_teams_bot.recovery.store.reference(workspace=TENANT, key=channel_key(FLOOR.id)) is None
    assert await everything(csat_teams_bot) == []


async def test_one_bot_posts_each_location_s_case_on_its_own_platform(connector, fake_slack, clock, tmp_path, http):
    settings = bot_settings(fake_slack, csat_secret=SECRET, admins=frozenset({"UBOSS", ADA.aad}))
    both = await RunningBot.start(settings, clock=clock,
                                  store=open_store(str(tmp_path / "both.json")))
    try:
        slack = SlackDriver(bot_url=both.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
        teams = TeamsDriver(bot_url=both.url, connector=connector, session=http)
        await map_soho_in_slack(slack, fake_slack)
        assert (await teams.say("recover admin location mayfair here", user=ADA, channel=FLOOR))[0] == 201
        await wait_answer(connector, "Saved.")
        assert await send(http, both, {**LOW, "location": "mayfair"}) == (201, {"case": "R-1001", "posted": True})
        assert await send(http, both, {**LOW, "response_id": "r2"}) == (201, {"case": "R-1001", "posted": True})
        await posted_card(connector)  # mayfair's case (tenant's R-1001) in Teams
        await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CSOHO"
                                  and "R-1001" in c.args["text"])  # soho's (workspace T1's R-1001) in Slack
        assert [c for c in connector.posts() if "Take it" in c.shown and c.conversation != FLOOR.id] == []
    finally:
        await both.stop()


def test_help_in_teams_says_how_to_map_a_location():
    assert ("recover admin location <name> here",
            "where a low survey score from that location opens a case (see README, CSAT) (admins)") in usage()


async def test_a_returning_guest_is_pointed_out_under_a_case_from_a_low_score(teams, connector, csat_teams_bot, http):
    await map_soho(teams)
    await csat_teams_bot.recovery.open_case(workspace=TENANT, owner=AMY.aad, owner_name="Amy Baker",
                                            what_happened="earlier", customer="Table 9")
    assert await send(http, csat_teams_bot, LOW) == (201, {"case": "R-1002", "posted": True})
    card = await posted_card(connector)
    status, _ = await teams.post(take(teams, card, BEN))
    assert status == 200
    await wait_step(connector, Step.APOLOGISE, case_id="R-1002")
    [note] = [c for c in connector.posts() if "recovery for this guest" in c.shown]
    assert "2nd recovery for this guest in 90 days (R-1001)" in note.shown
    assert (note.conversation, note.activity_id) == (FLOOR.id, card.id)  # under the case's card, in its thread
