"""`python app.py doctor`: each misconfiguration is found and named with its fix; exit 0 only when all is well."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.store import open_store
from handlers.doctor import Doctor, report
from tests.doubles.slack_api import APP_TOKEN, BOT_TOKEN, BOT_USER, CLIENT_ID, CLIENT_SECRET, FakeSlack
from tests.doubles.slack_install import SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


async def a_store_with_channel(path: Path, channel: str | None) -> str:
    store = open_store(str(path))
    await store.open()
    if channel:
        await store.set_recovery_channel(workspace="T1", channel=channel)
    await store.close()
    return str(path)


def settings_for(fake: FakeSlack, db: str, **overrides) -> Settings:
    values = dict(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url, db=db)
    values.update(overrides)
    return Settings(**values)


async def diagnose(settings: Settings) -> tuple[list, list]:
    findings = await Doctor(settings, timeout=5).run()
    return [f for f in findings if f.ok], [f for f in findings if not f.ok]


@pytest.fixture
async def healthy(fake_slack, tmp_path):
    """A workspace where everything is right: the token, its scopes, the channel and the bot in it."""
    fake_slack.add_channel("CREC", name="recoveries", members=["U1", BOT_USER])
    return settings_for(fake_slack, await a_store_with_channel(tmp_path / "amends.json", "CREC"))


async def test_all_well_says_so_and_finds_nothing(healthy):
    good, bad = await diagnose(healthy)
    assert bad == []
    said = " ".join(f.what for f in good)
    assert "accepts SLACK_BOT_TOKEN" in said and "every scope" in said and "#recoveries and the bot is in it" in said


async def test_a_token_slack_rejects(healthy, fake_slack):
    _, bad = await diagnose(Settings(**{**healthy.__dict__, "slack_bot_token": "xoxb-revoked"}))
    [problem] = bad
    assert "auth.test answered invalid_auth" in problem.what
    assert "Bot User OAuth Token" in problem.fix and "SLACK_BOT_TOKEN" in problem.fix


async def test_a_token_without_some_scopes_names_them_and_how_to_add_them(healthy, fake_slack):
    fake_slack.add_token("xoxb-narrow", team="T1", scopes=("commands", "chat:write"))
    _, bad = await diagnose(Settings(**{**healthy.__dict__, "slack_bot_token": "xoxb-narrow"}))
    [problem] = bad
    assert "lacks the scope(s) im:write, users:read, channels:read, groups:read" in problem.what
    assert "Reinstall to Workspace" in problem.fix


async def test_the_bot_outside_the_recovery_channel(healthy, fake_slack):
    fake_slack.add_channel("CREC", name="recoveries", members=["U1"])
    _, bad = await diagnose(healthy)
    [problem] = bad
    assert problem.what.startswith("The bot is not a member of the recovery channel #recoveries")
    assert problem.fix == "In Slack, open #recoveries and type /invite @Amends."


async def test_a_recovery_channel_that_is_gone(healthy, fake_slack):
    fake_slack.channels.clear()
    _, bad = await diagnose(healthy)
    assert [p.what.split(" (")[0] for p in bad] == ["The recovery channel CREC can't be seen by the bot"]


async def test_no_recovery_channel(fake_slack, tmp_path):
    _, bad = await diagnose(settings_for(fake_slack, await a_store_with_channel(tmp_path / "a.json", None)))
    [problem] = bad
    assert "No recovery channel" in problem.what and "/recover admin channel #that-channel" in problem.fix


async def test_missing_variables_each_with_where_to_find_them(fake_slack):
    _, bad = await diagnose(Settings(slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url,
                                     db=":memory:"))
    [problem] = bad
    assert problem.what.endswith("SLACK_BOT_TOKEN is not set.") and "OAuth & Permissions" in problem.fix
    _, bad = await diagnose(Settings(db=":memory:"))
    assert [p.what for p in bad] == ["Nothing is configured: neither Slack nor Teams."]


@pytest.mark.parametrize("teams, expected", [
    ({"microsoft_app_id": "9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"}, ["without MicrosoftAppPassword"]),
    ({"microsoft_app_password": "pw"}, ["MicrosoftAppPassword is set but MicrosoftAppId is not"]),
    ({"microsoft_app_id": "my-bot", "microsoft_app_password": "pw"}, ["is not a GUID"]),
    ({"microsoft_app_id": "9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "microsoft_app_password": "pw",
      "microsoft_app_type": "SingleTenant"}, ["MicrosoftAppTenantId is not set"]),
])
async def test_teams_variables(healthy, teams, expected):
    _, bad = await diagnose(Settings(**{**healthy.__dict__, **teams}))
    assert len(bad) == len(expected) and all(e in p.what for e, p in zip(expected, bad)), bad


async def test_a_store_that_cannot_be_opened(healthy, tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{ not json")
    in_a_file = tmp_path / "a-file"
    in_a_file.write_text("")
    for db in (str(garbage), str(in_a_file / "amends.json")):
        _, bad = await diagnose(Settings(**{**healthy.__dict__, "db": db}))
        assert len(bad) == 1 and "store" in bad[0].what and "AMENDS_DB" in bad[0].fix, (db, bad)
    assert garbage.read_text() == "{ not json"  # looked at, never touched


async def test_a_database_it_cannot_reach(healthy):
    _, bad = await diagnose(Settings(**{**healthy.__dict__, "db": "postgresql://amends:pw@127.0.0.1:1/amends"}))
    [problem] = bad
    assert problem.what.startswith("Can't open the store AMENDS_DB=postgresql://amends:***@127.0.0.1:1/amends")
    assert "pw@" not in problem.what and "PostgreSQL is running" in problem.fix


async def test_the_embedded_store_is_read_from_a_copy_and_left_as_it_was(healthy):
    path = Path(healthy.db)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    await diagnose(healthy)
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before


async def test_socket_mode_and_oauth_credentials_are_asked_of_slack(healthy, fake_slack):
    fake_slack.socket_url = "ws://127.0.0.1:9/never-used"
    good, bad = await diagnose(Settings(**{**healthy.__dict__, "slack_app_token": APP_TOKEN}))
    assert bad == [] and any("Socket Mode can connect" in f.what for f in good)
    _, bad = await diagnose(Settings(**{**healthy.__dict__, "slack_app_token": "xapp-wrong"}))
    assert len(bad) == 1 and "apps.connections.open answered invalid_auth" in bad[0].what
    oauth = dict(slack_bot_token="", slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET, secret_key=SECRET_KEY)
    good, bad = await diagnose(Settings(**{**healthy.__dict__, **oauth}))
    assert bad == [] and any("knows SLACK_CLIENT_ID" in f.what for f in good)
    _, bad = await diagnose(Settings(**{**healthy.__dict__, **oauth, "slack_client_secret": "wrong"}))
    assert len(bad) == 1 and "refused SLACK_CLIENT_ID / SLACK_CLIENT_SECRET (invalid_client_id)" in bad[0].what
    _, bad = await diagnose(Settings(**{**healthy.__dict__, **oauth, "secret_key": ""}))
    assert len(bad) == 1 and "AMENDS_SECRET_KEY is not set" in bad[0].what and "Fernet.generate_key" in bad[0].fix


async def run_cli(env: dict, cwd: Path) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AMENDS_", "Microsoft"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "app.py"), "doctor", cwd=cwd, env={**base, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, out.decode()


async def test_the_command_prints_each_problem_with_its_fix_and_exits_by_the_result(healthy, fake_slack, tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "AMENDS_DB": healthy.db}
    code, out = await run_cli(env, tmp_path)
    assert code == 1, out
    assert "BAD  Slack refused SLACK_BOT_TOKEN: auth.test answered invalid_auth." in out
    assert "fix: The token is wrong" in out and "1 problem. Fix it" in out
    code, out = await run_cli({**env, "SLACK_BOT_TOKEN": BOT_TOKEN}, tmp_path)
    assert code == 0 and out.rstrip().endswith("All well."), out
    assert BOT_TOKEN not in out and SIGNING_SECRET not in out
    code, out = await run_cli({**env, "AMENDS_TZ": "Mars/Olympus"}, tmp_path)
    assert code == 2 and "AMENDS_TZ" in out


def test_the_report_counts_problems():
    import io

    from handlers.doctor import Finding

    out = io.StringIO()
    report([Finding(True, "fine"), Finding(False, "broken", "mend it"), Finding(False, "also", "this")], out=out)
    assert "  ok   fine" in out.getvalue() and "       fix: mend it" in out.getvalue()
    assert "2 problems. Fix them" in out.getvalue()


async def test_slack_out_of_reach_is_said_once_with_what_to_check(healthy):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    _, bad = await diagnose(Settings(**{**healthy.__dict__, "slack_api_url": closed}))
    [problem] = bad
    assert problem.what.startswith(f"Can't reach Slack's Web API at {closed}") and "SLACK_API_URL" in problem.fix
