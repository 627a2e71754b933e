"""Two workspaces installed side by side through OAuth, driven through the real /slack/events: one
workspace's people, admins, roles, cases, ledger and recovery channel can't be seen or touched from
the other. The same person (Enterprise Grid: one user id in several workspaces) is in both."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.checklist import Step
from bot.store import open_store
from tests.conftest import SIGNING_SECRET, RunningBot
from tests.doubles.slack_client import SlackDriver
from tests.doubles.slack_install import install, oauth_settings
from tests.flows import give, open_case, thread_posts, wait_step, walk_to

ONE, TWO = "xoxb-workspace-one", "xoxb-workspace-two"


@pytest.fixture
async def two(fake_slack, clock, tmp_path, http):
    db = str(tmp_path / "amends.json")
    running = await RunningBot.start(oauth_settings(fake_slack, signing_secret=SIGNING_SECRET, db=db),
                                     store=open_store(db), clock=clock)
    fake_slack.users["U1"]["teams"] = ["T1", "T2"]  # amy works in both
    fake_slack.add_user("UADMIN2", "zed", admin=True, team_id="T2")
    await install(http, running.url, fake_slack, team="T1", token=ONE)
    await install(http, running.url, fake_slack, team="T2", token=TWO)
    drivers = {team: SlackDriver(bot_url=running.url, signing_secret=SIGNING_SECRET, fake=fake_slack,
                                 session=http, team=team) for team in ("T1", "T2")}
    yield running, drivers
    await running.stop()


async def answer(fake, slack: SlackDriver, text: str, **who) -> str:
    """Run a command and return what the bot answered that person (via the command's response_url)."""
    before = len(fake.of("response_url"))
    status, _ = await slack.command(text, **who)
    assert status == 200
    return json.dumps((await fake.wait_for("response_url", count=before + 1))[before].args)


def by(fake, token: str) -> list:
    return [c for c in fake.calls if c.headers.get("Authorization") == f"Bearer {token}"]


async def test_two_workspaces_never_see_or_touch_each_others_records(two, fake_slack):
    bot, slack = two
    recovery = bot.recovery

    # Admins and roles: T1's admin sets T1's budget and channel; T2 sees neither, and can't be changed by her.
    assert "Saved" in await answer(fake_slack, slack["T1"], "admin limit staff 25 30/week", user="UADMIN")
    assert "Saved" in await answer(fake_slack, slack["T1"], "admin channel <#CREC1|recoveries>", user="UADMIN")
    t2_limits = await answer(fake_slack, slack["T2"], "admin limits", user="UADMIN2")
    assert "CREC1" not in t2_limits and "$30" not in t2_limits and "not set" in t2_limits
    refused = await answer(fake_slack, slack["T2"], "admin limit staff 1000 5000/week", user="UADMIN")
    assert "Only Amends admins" in refused
    assert await recovery.store.roles(workspace="T2") == []
    assert "Saved" in await answer(fake_slack, slack["T2"], "admin limit staff 25 40/week", user="UADMIN2")

    # Cases: T1's case can't be reached from T2, even with a click on its own button.
    card1 = await open_case(slack["T1"], fake_slack, "cold soup, table 4", channel="C1")
    apologise1 = await wait_step(fake_slack, card1, Step.APOLOGISE)
    before = len(fake_slack.of("response_url"))
    assert (await slack["T2"].click(apologise1, "step_done"))[0] == 200
    [told] = (await fake_slack.wait_for("response_url", count=before + 1))[before:]
    assert "There is no case R-1001 here" in told.args["text"]
    case1 = await recovery.case(workspace="T1", case_id="R-1001")
    assert case1.current_step == Step.APOLOGISE and await recovery.store.get_case(workspace="T2", case_id="R-1001") is None
    listed = await answer(fake_slack, slack["T2"], "list")
    assert "R-1001" not in listed and "/archives/C1/" not in listed

    # Ledger: amy gives 25 in T1 (budget 30/week), then 25 in T2 (budget 40/week). Were the ledgers
    # one, the second gift would be refused (50 > 40).
    compensate1 = await walk_to(slack["T1"], fake_slack, card1, Step.COMPENSATE)
    assert await give(slack["T1"], fake_slack, compensate1, "25") == (200, "")
    card2 = await open_case(slack["T2"], fake_slack, "wrong order, table 9", channel="C2")
    assert card2.headers["Authorization"] == f"Bearer {TWO}"
    compensate2 = await walk_to(slack["T2"], fake_slack, card2, Step.COMPENSATE)
    assert await give(slack["T2"], fake_slack, compensate2, "25") == (200, "")
    for team in ("T1", "T2"):
        entries = await recovery.store.ledger(workspace=team)
        assert [(e.amount, e.case_id) for e in entries] == [(Decimal("25"), "R-1001")], team

    # Recovery channel: T1's summary goes to T1's channel; T2's case closes without ever touching it.
    for team, card in (("T1", card1), ("T2", card2)):
        follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
        posted = len(thread_posts(fake_slack, card))
        assert (await slack[team].click(follow_up, "no_follow_up"))[0] == 200
        # The closing note in the thread comes after the case is recorded closed.
        await fake_slack.wait_for("chat.postMessage", count=posted + 1, where=lambda c, card=card: c.answer.get("ok")
                                  and c.args.get("thread_ts") == card.answer["ts"])
        case = await recovery.store.get_case(workspace=team, case_id="R-1001")
        assert case.is_closed, team
    # Whatever went to T1's recovery channel (its confirmation; the summary, see below) never used T2's token.
    await fake_slack.wait_for("chat.postMessage", count=2, where=lambda c: c.args.get("channel") == "CREC1")

    # Every Web API call was made with the token of the workspace it was for.
    t1_places, t2_places = {"C1", "CREC1"}, {"C2"}
    assert not [c for c in by(fake_slack, TWO) if c.args.get("channel") in t1_places]
    assert not [c for c in by(fake_slack, ONE) if c.args.get("channel") in t2_places]


async def test_a_request_for_a_workspace_that_never_installed_is_answered_and_does_nothing(two, fake_slack, http):
    bot, _ = two
    stranger = SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http, team="T3")
    calls = len(fake_slack.calls)
    status, _ = await stranger.command("cold soup")
    assert status == 200
    told = await fake_slack.wait_for("response_url", where=lambda c: "isn't installed" in c.args.get("text", ""))
    assert told and [c.method for c in fake_slack.calls[calls:]] == ["response_url"]
    assert await bot.recovery.store.get_case(workspace="T3", case_id="R-1001") is None


def test_the_fixture_file_is_the_recorded_shape():
    recorded = json.loads((Path(__file__).parent / "fixtures" / "oauth_v2_access.json").read_text())
    assert {"access_token", "team", "bot_user_id", "scope", "app_id", "authed_user"} <= set(recorded)


async def test_each_workspace_summary_goes_out_with_its_own_token(two, fake_slack):
    _, slack = two
    assert "Saved" in await answer(fake_slack, slack["T1"], "admin channel <#CREC1|recoveries>", user="UADMIN")
    card = await open_case(slack["T1"], fake_slack, "cold soup", channel="C1")
    compensate = await walk_to(slack["T1"], fake_slack, card, Step.COMPENSATE)
    await slack["T1"].click(compensate, "nothing_needed")
    follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
    await slack["T1"].click(follow_up, "no_follow_up")
    summary = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "CREC1"
                                        and c.args.get("text", "").startswith("Recovered"))
    assert [c.headers.get("Authorization") for c in summary] == [f"Bearer {ONE}"]
    assert summary[0].answer["ok"]
