"""The pytest fixtures of the Teams tests: the fake connector, the real app serving /api/messages, a driver.

Test modules ask for them with `pytest_plugins = ("tests.doubles.teams_fixtures",)` (they live
outside tests/conftest.py so the Teams tests stay in files of their own).
"""

import pytest

from bot.store import open_store
from tests.conftest import RunningBot
from tests.doubles.bf_connector import FakeConnector
from tests.doubles.teams_driver import PEOPLE, TeamsDriver, teams_settings


@pytest.fixture
async def connector():
    fake = await FakeConnector().start()
    for person in PEOPLE:
        fake.add_member(id=person.mri, aad=person.aad, name=person.name)
    yield fake
    await fake.stop()
    assert fake.problems == [], f"the bot sent Teams something it would reject: {fake.problems}"


@pytest.fixture
async def teams_bot(connector, clock, tmp_path):
    running = await RunningBot.start(teams_settings(), store=open_store(str(tmp_path / "amends.json")), clock=clock)
    yield running
    await running.stop()


@pytest.fixture
def teams(teams_bot, connector, http) -> TeamsDriver:
    return TeamsDriver(bot_url=teams_bot.url, connector=connector, session=http)
