"""Installing the bot in a workspace the way a browser does: /slack/install → Slack → /slack/oauth_redirect."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
from cryptography.fernet import Fernet

from bot.settings import Settings
from tests.doubles.slack_api import CLIENT_ID, CLIENT_SECRET, FakeSlack

SECRET_KEY = Fernet.generate_key().decode()
STATE_COOKIE = "slack-app-oauth-state"


def oauth_settings(fake: FakeSlack, *, signing_secret: str, db: str, **overrides) -> Settings:
    values = dict(slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET, slack_signing_secret=signing_secret,
                  secret_key=SECRET_KEY, slack_api_url=fake.api_url, db=db, host="127.0.0.1", port=0)
    values.update(overrides)
    return Settings(**values)


async def start_install(http: aiohttp.ClientSession, bot_url: str) -> tuple[str, dict]:
    """GET /slack/install: the state Slack will hand back, and the query of the consent page it points to."""
    async with http.get(bot_url + "/slack/install", allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = urlsplit(resp.headers["Location"])
        cookie = resp.cookies[STATE_COOKIE].value
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == cookie  # the browser is bound to the state it started with
    return query["state"], {"path": location.path, **query}


async def finish_install(http: aiohttp.ClientSession, bot_url: str, *, code: str, state: str,
                         cookie: str | None = None) -> tuple[int, str]:
    """Slack sends the installer back to /slack/oauth_redirect with the code and the state."""
    headers = {"Cookie": f"{STATE_COOKIE}={state if cookie is None else cookie}"} if cookie != "" else {}
    async with http.get(bot_url + "/slack/oauth_redirect", params={"code": code, "state": state},
                        headers=headers, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def install(http: aiohttp.ClientSession, bot_url: str, fake: FakeSlack, *, team: str, token: str,
                  code: str | None = None, **kwargs) -> None:
    """The whole flow for one workspace: it ends installed, with `token` as its bot token."""
    code = code or f"code-{team}"
    fake.add_install(code, team=team, token=token, **kwargs)
    state, _ = await start_install(http, bot_url)
    status, body = await finish_install(http, bot_url, code=code, state=state)
    assert status == 200, body


def event_body(team: str, event: dict, *, event_id: str) -> str:
    """An Events API delivery (JSON), as Slack posts it to /slack/events."""
    return json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A0KRD7HC3", "event": event,
                       "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
                       "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": "UBOT",
                                           "is_bot": True, "is_enterprise_install": False}]})
