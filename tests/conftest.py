"""Shared fixtures: the fake Slack Web API, the real aiohttp app on 127.0.0.1, and a signed-request driver."""

from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web

from app import RECOVERY, create_app
from bot.settings import Settings
from bot.store import open_store
from tests.doubles.slack_api import BOT_TOKEN, FakeSlack
from tests.doubles.slack_client import SlackDriver

SIGNING_SECRET = "test-signing-secret"


class FakeClock:
    """A clock tests move by hand: periods and durations without sleeping."""

    def __init__(self, now: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)):
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake_slack():
    fake = await FakeSlack().start()
    fake.add_user("U1", "amy")
    fake.add_user("U2", "ben")
    fake.add_user("UADMIN", "ada", admin=True)
    yield fake
    await fake.stop()
    assert fake.problems == [], f"the bot sent Slack something it would reject: {fake.problems}"


def bot_settings(fake: FakeSlack, **overrides) -> Settings:
    values = dict(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
                  db=":memory:", admins=frozenset({"UBOSS"}), host="127.0.0.1", port=0)
    values.update(overrides)
    return Settings(**values)


class RunningBot:
    """The real aiohttp app, served on 127.0.0.1 on a free port."""

    def __init__(self, app: web.Application, runner: web.AppRunner, url: str):
        self.app, self.runner, self.url = app, runner, url

    @property
    def recovery(self):
        return self.app[RECOVERY]

    @classmethod
    async def start(cls, settings: Settings, **kwargs) -> "RunningBot":
        app = create_app(settings, **kwargs)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return cls(app, runner, f"http://127.0.0.1:{port}")

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def bot(fake_slack, clock, tmp_path):
    running = await RunningBot.start(bot_settings(fake_slack), store=open_store(str(tmp_path / "amends.json")),
                                     clock=clock)
    yield running
    await running.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def slack(bot, fake_slack, http) -> SlackDriver:
    return SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
