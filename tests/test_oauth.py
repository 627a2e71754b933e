"""Installing Amends in many workspaces: Bolt's OAuth flow on our store, tokens sealed, state used once."""

import base64
import hashlib
import json
import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.store import open_store
from handlers.slack.oauth import (BOT_SCOPES, NOT_INSTALLED, STATE_WORKSPACE, Sealer, StoreInstallationStore,
                                  StoreOAuthStateStore, Throttle, installation_key)
from slack_sdk.oauth.installation_store.models.installation import Installation
from tests.conftest import SIGNING_SECRET, RunningBot
from tests.doubles.slack_api import CLIENT_ID, CLIENT_SECRET
from tests.doubles.slack_client import SlackDriver
from tests.doubles.slack_install import (SECRET_KEY, event_body, finish_install, install, oauth_settings,
                                         start_install)
from tests.flows import open_case

T1_TOKEN = "xoxb-t1-0123456789-sealed"


@pytest.fixture
async def oauth_bot(fake_slack, clock, tmp_path):
    db = str(tmp_path / "amends.json")
    running = await RunningBot.start(oauth_settings(fake_slack, signing_secret=SIGNING_SECRET, db=db),
                                     store=open_store(db), clock=clock)
    running.db = Path(db)
    yield running
    await running.stop()


def driver(bot, fake, http, team: str) -> SlackDriver:
    return SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake, session=http, team=team)


def on_disk(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def used(fake, token: str) -> list:
    return [c for c in fake.calls if c.headers.get("Authorization") == f"Bearer {token}"]


async def test_install_sends_the_installer_to_slack_with_our_scopes_and_a_state(oauth_bot, http, fake_slack):
    state, consent = await start_install(http, oauth_bot.url)
    assert consent["path"] == "/oauth/v2/authorize"  # beside SLACK_API_URL's /api/
    assert consent["client_id"] == CLIENT_ID
    assert consent["scope"].split(",") == list(BOT_SCOPES)
    assert len(state) >= 32
    digest = hashlib.sha256(state.encode()).hexdigest()
    record = await oauth_bot.recovery.store.reference(workspace=STATE_WORKSPACE,
                                                      key=f"slack-oauth-state:{int(digest, 16) % 4096}")
    assert record == {"digest": digest, "issued_at": "2026-11-25T12:00:00+00:00"}  # the state itself isn't kept


async def test_the_install_page_is_throttled(oauth_bot, http):
    """Each visit writes a state: a flood gets 429 instead of filling the store's queue."""
    statuses = []
    for _ in range(40):
        async with http.get(oauth_bot.url + "/slack/install", allow_redirects=False) as resp:
            statuses.append(resp.status)
    assert statuses[:20] == [302] * 20 and 429 in statuses and statuses.count(302) < 30


def test_the_throttle_refills_with_time():
    now = [0.0]
    throttle = Throttle(per_second=2, burst=3, now=lambda: now[0])
    assert [throttle.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert [throttle.take(), throttle.take()] == [True, False]
    now[0] += 100
    assert sum(throttle.take() for _ in range(10)) == 3


async def test_a_workspace_installs_and_its_token_is_used_for_its_requests_and_sealed_at_rest(
        oauth_bot, http, fake_slack):
    await install(http, oauth_bot.url, fake_slack, team="T1", token=T1_TOKEN)
    [exchange] = fake_slack.of("oauth.v2.access")
    auth = base64.b64decode(exchange.headers["Authorization"].removeprefix("Basic ")).decode()
    assert auth == f"{CLIENT_ID}:{CLIENT_SECRET}" and exchange.args["code"] == "code-T1"

    card = await open_case(driver(oauth_bot, fake_slack, http, "T1"), fake_slack)
    assert card.headers["Authorization"] == f"Bearer {T1_TOKEN}"

    record = await oauth_bot.recovery.store.reference(workspace="T1", key=installation_key(enterprise_id=None,
                                                                                           team_id="T1"))
    assert set(record) == {"team_id", "enterprise_id", "saved_at", "sealed"}
    opened = Sealer(SECRET_KEY).open(record["sealed"])
    assert opened["bot_token"] == T1_TOKEN and opened["team_id"] == "T1"
    assert T1_TOKEN.encode() not in on_disk(oauth_bot.db)  # neither the file nor its journal holds it


@pytest.mark.parametrize("how", ["forged", "replayed", "expired", "other browser"])
async def test_a_bad_state_is_refused_and_nothing_is_installed(oauth_bot, http, fake_slack, clock, how):
    fake_slack.add_install("code-T1", team="T1", token=T1_TOKEN)
    fake_slack.add_install("code-again", team="T1", token=T1_TOKEN)
    state, _ = await start_install(http, oauth_bot.url)
    if how == "forged":
        status, _ = await finish_install(http, oauth_bot.url, code="code-T1", state="made-up-state-" + "x" * 30)
    elif how == "replayed":
        assert (await finish_install(http, oauth_bot.url, code="code-T1", state=state))[0] == 200
        status, _ = await finish_install(http, oauth_bot.url, code="code-again", state=state)
    elif how == "expired":
        clock.advance(minutes=10, seconds=1)
        status, _ = await finish_install(http, oauth_bot.url, code="code-T1", state=state)
    else:  # the redirect reached a browser that never started the install
        status, _ = await finish_install(http, oauth_bot.url, code="code-T1", state=state, cookie="")
    assert status in (400, 401)
    exchanges = fake_slack.of("oauth.v2.access")
    assert [c.args["code"] for c in exchanges] == (["code-T1"] if how == "replayed" else [])


async def test_a_code_slack_refuses_installs_nothing(oauth_bot, http, fake_slack):
    state, _ = await start_install(http, oauth_bot.url)
    status, _ = await finish_install(http, oauth_bot.url, code="never-issued", state=state)
    assert status == 401
    assert fake_slack.of("oauth.v2.access")[0].answer == {"ok": False, "error": "invalid_code"}
    assert await oauth_bot.recovery.store.reference(workspace="T1", key=installation_key(
        enterprise_id=None, team_id="T1")) is None


@pytest.mark.parametrize("event", [
    {"type": "app_uninstalled"},
    {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}},
])
async def test_uninstalling_or_revoking_removes_the_token(oauth_bot, http, fake_slack, event):
    await install(http, oauth_bot.url, fake_slack, team="T1", token=T1_TOKEN)
    slack = driver(oauth_bot, fake_slack, http, "T1")
    await open_case(slack, fake_slack)
    key = installation_key(enterprise_id=None, team_id="T1")
    status, _ = await slack.post(event_body("T1", {**event, "event_ts": "1700000000.000100"}, event_id="Ev1"),
                                 headers={"Content-Type": "application/json"})
    assert status == 200
    record = await oauth_bot.recovery.store.reference(workspace="T1", key=key)
    assert record["sealed"] is None and record["removed"] in ("uninstalled", "bot token revoked")
    assert "xoxb" not in json.dumps(record)

    before = len(used(fake_slack, T1_TOKEN))
    status, _ = await slack.command("cold soup")
    assert status == 200
    told = await fake_slack.wait_for("response_url", where=lambda c: c.args.get("text") == NOT_INSTALLED)
    assert told and len(used(fake_slack, T1_TOKEN)) == before  # the old token is never used again


async def test_an_unsigned_uninstall_event_changes_nothing(oauth_bot, http, fake_slack):
    await install(http, oauth_bot.url, fake_slack, team="T1", token=T1_TOKEN)
    slack = driver(oauth_bot, fake_slack, http, "T1")
    status, _ = await slack.post(event_body("T1", {"type": "app_uninstalled"}, event_id="Ev2"),
                                 headers={"Content-Type": "application/json"}, secret="not-the-secret")
    assert status == 401
    record = await oauth_bot.recovery.store.reference(workspace="T1", key=installation_key(enterprise_id=None,
                                                                                           team_id="T1"))
    assert record["sealed"]


async def test_install_routes_answer_404_with_one_workspace(bot, http):
    async with http.get(bot.url + "/slack/install", allow_redirects=False) as resp:
        assert resp.status == 404 and "SLACK_CLIENT_ID" in await resp.text()


# --- the stores on their own ----------------------------------------------------------------

def an_installation(team: str = "T1", token: str = T1_TOKEN) -> Installation:
    return Installation(app_id="A1", team_id=team, team_name="Floor", bot_token=token, bot_id="B1",
                        bot_user_id="UBOT", bot_scopes=list(BOT_SCOPES), user_id="U1")


async def test_a_rotated_key_still_opens_old_installations_and_a_wrong_key_opens_none(clock, caplog):
    store = open_store(":memory:")
    await store.open()
    old, new = SECRET_KEY, Fernet.generate_key().decode()
    await StoreInstallationStore(store=store, sealer=Sealer(old), clock=clock).async_save(an_installation())
    rotated = StoreInstallationStore(store=store, sealer=Sealer(f"{new},{old}"), clock=clock)
    bot = await rotated.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == T1_TOKEN and bot.bot_scopes == list(BOT_SCOPES)
    wrong = StoreInstallationStore(store=store, sealer=Sealer(new), clock=clock)
    with caplog.at_level(logging.ERROR):
        assert await wrong.async_find_bot(enterprise_id=None, team_id="T1") is None
    assert "AMENDS_SECRET_KEY" in caplog.text and T1_TOKEN not in caplog.text
    await store.close()


async def test_installations_of_two_workspaces_are_apart_and_removing_one_keeps_the_other(clock):
    store = open_store(":memory:")
    await store.open()
    installations = StoreInstallationStore(store=store, sealer=Sealer(SECRET_KEY), clock=clock)
    await installations.async_save(an_installation("T1", "xoxb-one"))
    await installations.async_save(an_installation("T2", "xoxb-two"))
    await installations.async_delete_all(enterprise_id=None, team_id="T1")
    assert await installations.async_find_bot(enterprise_id=None, team_id="T1") is None
    assert (await installations.async_find_bot(enterprise_id=None, team_id="T2")).bot_token == "xoxb-two"
    assert await store.reference(workspace="T2", key=installation_key(enterprise_id=None, team_id="T1")) is None
    await store.close()


async def test_a_state_is_good_once_within_its_lifetime(clock):
    store = open_store(":memory:")
    await store.open()
    states = StoreOAuthStateStore(store=store, clock=clock)
    first, second = await states.async_issue(), await states.async_issue()
    assert first != second
    assert await states.async_consume(first) is True
    assert await states.async_consume(first) is False  # replayed
    assert await states.async_consume("never-issued") is False
    clock.advance(minutes=11)
    assert await states.async_consume(second) is False  # expired
    await store.close()


async def test_states_take_bounded_room_a_newer_one_replacing_an_older_in_its_slot(clock):
    store = open_store(":memory:")
    await store.open()
    states = StoreOAuthStateStore(store=store, clock=clock, slots=1)
    older = await states.async_issue()
    newer = await states.async_issue()
    assert await states.async_consume(older) is False  # pushed out: that install starts again
    assert await states.async_consume(newer) is True
    assert await store.reference(workspace=STATE_WORKSPACE, key="slack-oauth-state:0") == {
        "digest": hashlib.sha256(newer.encode()).hexdigest(), "consumed_at": "2026-11-25T12:00:00+00:00"}
    await store.close()


async def test_work_outside_a_request_gets_the_workspaces_own_client(oauth_bot, http, fake_slack, bot):
    from app import SLACK

    await install(http, oauth_bot.url, fake_slack, team="T1", token=T1_TOKEN)
    client = await oauth_bot.app[SLACK].client_for("T1")
    assert client.token == T1_TOKEN and client.base_url == fake_slack.api_url
    assert await oauth_bot.app[SLACK].client_for("T9") is None  # never installed there
    assert (await bot.app[SLACK].client_for("T1")).token == "xoxb-test-token"  # one workspace: the app's client


def test_oauth_settings_name_what_is_missing_and_never_print_secrets():
    from bot.settings import Settings

    settings = Settings.from_env({"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "client-secret-value",
                                  "AMENDS_SECRET_KEY": SECRET_KEY}, dotenv_path=None)
    assert settings.slack_oauth and settings.missing_for_slack() == ["SLACK_SIGNING_SECRET"]
    assert "client-secret-value" not in repr(settings) and SECRET_KEY not in repr(settings)
    assert Settings.from_env({"SLACK_CLIENT_ID": "1.2"}, dotenv_path=None).missing_for_slack() == [
        "SLACK_CLIENT_SECRET", "AMENDS_SECRET_KEY", "SLACK_SIGNING_SECRET"]
    socket = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, dotenv_path=None)
    assert socket.slack_socket_mode and socket.missing_for_slack() == []
    with pytest.raises(ValueError, match="AMENDS_SECRET_KEY must be a Fernet key.*Fernet.generate_key"):
        Settings.from_env({"AMENDS_SECRET_KEY": "hunter2"}, dotenv_path=None)
    rotated = Settings.from_env({"AMENDS_SECRET_KEY": f"{Fernet.generate_key().decode()}, {SECRET_KEY}"},
                                dotenv_path=None)
    Sealer(rotated.secret_key)  # both keys accepted


async def test_after_a_workspaces_first_request_its_acks_wait_on_no_web_api_call(oauth_bot, http, fake_slack):
    await install(http, oauth_bot.url, fake_slack, team="T1", token=T1_TOKEN)
    installed = len([c for c in used(fake_slack, T1_TOKEN) if c.method == "auth.test"])  # Bolt's, while installing
    slack = driver(oauth_bot, fake_slack, http, "T1")
    for text in ("cold soup", "lost booking", "rude moment"):
        await open_case(slack, fake_slack, text)
    # Bolt's authorize asks auth.test once for the token and then answers from memory.
    assert len([c for c in used(fake_slack, T1_TOKEN) if c.method == "auth.test"]) == installed + 1
