"""Without an app id nothing on /api/messages is authenticated: only this machine may use it."""

import json

import aiohttp

from tests.doubles.teams_driver import AMY, TeamsDriver

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams


async def test_unauthenticated_teams_is_refused_to_anyone_but_this_machine(teams, connector, teams_bot):
    activity = teams.message("recover cold soup, table 4", user=AMY)
    # Another address: still loopback traffic (the tests never leave this machine), but not 127.0.0.1.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as elsewhere:
        async with elsewhere.post(teams.bot_url + "/api/messages", data=json.dumps(activity).encode(),
                                  headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 403
            assert "set MicrosoftAppId" in (await resp.json())["error"]
    assert connector.calls == []  # nothing was sent anywhere
    assert await teams_bot.recovery.open_cases(workspace=activity["conversation"]["tenantId"], owner=AMY.aad) == []

    status, _ = await TeamsDriver(bot_url=teams.bot_url, connector=connector, session=teams.session).post(activity)
    assert status == 201  # the same activity from this machine (the Bot Framework Emulator's case) is served
    opened = await teams_bot.recovery.open_cases(workspace=activity["conversation"]["tenantId"], owner=AMY.aad)
    assert [case.what_happened for case in opened] == ["cold soup, table 4"]
