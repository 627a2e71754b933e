"""Bot Framework authentication at /api/messages, both ways.

Off (no MicrosoftAppId, local development): activities without a token are served and replies
carry no token. On: tokens are checked by botbuilder against a local OpenID issuer (running in a
thread, since botbuilder fetches keys with blocking calls); a valid token is served, and a missing,
wrong-audience, wrong-key, wrong-issuer, expired or other-service token gets 401 and changes
nothing. Outbound calls use no token (NoOutboundTokens), so nothing reaches for login.microsoftonline.com.
"""

from dataclasses import replace

import pytest
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication

from bot.checklist import Step
from bot.store import open_store
from cards.teams import CARD_TYPE
from handlers.teams.adapter import bot_framework_config
from tests.conftest import RunningBot
from tests.doubles.bf_connector import NoOutboundTokens
from tests.doubles.oidc_issuer import KEY_ID, OpenIdIssuer, new_key
from tests.doubles.teams_driver import AMY, TeamsDriver, fixture, teams_settings, wait_step

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

APP_ID = "9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture(scope="session")
def issuer():
    running = OpenIdIssuer().start()
    yield running
    running.stop()


def secured(settings, *, metadata_url: str, token_issuer: str):
    """Authentication as production builds it from settings, but trusting the local issuer."""
    config = replace(bot_framework_config(settings), TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=metadata_url,
                     TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=token_issuer)
    return ConfigurationBotFrameworkAuthentication(config, credentials_factory=NoOutboundTokens(APP_ID))


@pytest.fixture
async def secured_bot(issuer, connector, clock, tmp_path):
    settings = teams_settings(microsoft_app_id=APP_ID, microsoft_app_password="not-used-by-the-fake")
    running = await RunningBot.start(settings, store=open_store(str(tmp_path / "amends.json")), clock=clock,
                                     teams_auth=secured(settings, metadata_url=issuer.metadata_url,
                                                        token_issuer="https://api.botframework.test"))
    yield running
    await running.stop()


@pytest.fixture
def signed(secured_bot, issuer, connector, http) -> TeamsDriver:
    driver = TeamsDriver(bot_url=secured_bot.url, connector=connector, session=http)
    driver.token = lambda: "Bearer " + issuer.token(audience=APP_ID, service_url=connector.service_url)
    return driver


async def test_with_no_app_id_authentication_is_off_and_replies_carry_no_token(teams, connector):
    assert (await teams.say("recover cold soup"))[0] == 201
    apologise = await wait_step(connector, Step.APOLOGISE)
    assert "Authorization" not in apologise.headers


async def test_a_valid_token_is_served_and_nothing_asks_microsoft_for_one(signed, connector, secured_bot):
    assert (await signed.say("recover cold soup"))[0] == 201
    apologise = await wait_step(connector, Step.APOLOGISE)
    assert "Authorization" not in apologise.headers  # NoOutboundTokens: no MSAL call was made to get one
    status, body = await signed.execute(apologise, "step_done")  # an invoke, authenticated the same way
    assert status == 200 and body["type"] == CARD_TYPE
    assert Step.APOLOGISE in (await secured_bot.recovery.case(workspace=TENANT, case_id="R-1001")).done


async def test_the_recovery_summary_is_posted_proactively_with_auth_on(signed, connector, secured_bot):
    from tests.doubles.teams_driver import ADA, RECOVERIES, walk_to
    assert (await signed.say("recover admin channel here", user=ADA, channel=RECOVERIES))[0] == 201
    assert (await signed.say("recover cold soup"))[0] == 201
    compensate = await walk_to(signed, Step.COMPENSATE)
    await signed.execute(compensate, "nothing_needed")
    await signed.execute(await wait_step(connector, Step.FOLLOW_UP), "no_follow_up")
    [summary] = await connector.wait_for(lambda c: c.conversation == RECOVERIES.id and "Recovered:" in c.shown)
    assert "Authorization" not in summary.headers


def forged(issuer, connector) -> dict[str, str | None]:
    """Authorization headers Bot Framework never sends to this bot."""
    def token(**changes):
        return "Bearer " + issuer.token(**{"audience": APP_ID, "service_url": connector.service_url, **changes})
    return {
        "no token": None,
        "not a bearer token": "Basic YW15OnNlY3JldA==",
        "not a token at all": "Bearer not.a.jwt",
        "another bot's token": token(audience="11111111-2222-4333-8444-555555555555"),
        "signed with another key": token(key=new_key()),
        "an unknown key id": token(key_id=KEY_ID + "-rotated-out"),
        "another issuer": token(issuer="https://login.evil.example"),
        "expired": token(expires_in=-3600),
        "for another service url": token(service_url="https://smba.trafficmanager.net/evil/"),
    }


FORGERIES = ["no token", "not a bearer token", "not a token at all", "another bot's token", "signed with another key",
             "an unknown key id", "another issuer", "expired", "for another service url"]


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_missing_or_bad_token_gets_401_and_changes_nothing(signed, issuer, connector, secured_bot, forgery):
    header = forged(issuer, connector)[forgery]
    signed.token = None
    message = signed.message("recover cold soup")
    status, _ = await signed.post(message, headers={"Authorization": header} if header else None)
    assert status == 401
    tap = signed.message("x")
    tap.update(type="invoke", name="adaptiveCard/action",
               value={"action": {"type": "Action.Execute", "verb": "step_done", "data": {"value": "R-1001:apologise"}}})
    assert (await signed.post(tap, headers={"Authorization": header} if header else None))[0] == 401
    assert connector.calls == []
    assert await secured_bot.recovery.open_cases(workspace=TENANT, owner=AMY.aad) == []


async def test_signing_keys_that_cannot_be_fetched_are_a_503_not_a_401(connector, clock, http, issuer):
    settings = teams_settings(microsoft_app_id=APP_ID)
    dead = "http://127.0.0.1:9/v1/.well-known/openidconfiguration"  # the discard port: nothing answers
    bot = await RunningBot.start(settings, clock=clock, teams_auth=secured(
        settings, metadata_url=dead, token_issuer="https://api.botframework.test"))
    try:
        driver = TeamsDriver(bot_url=bot.url, connector=connector, session=http)
        driver.token = lambda: "Bearer " + issuer.token(audience=APP_ID, service_url=connector.service_url)
        assert (await driver.say("recover cold soup"))[0] == 503
        assert connector.calls == []
    finally:
        await bot.stop()


@pytest.mark.parametrize("content_type, body, status", [
    ("text/plain", b'{"type": "message"}', 415),
    ("application/json", b"{not json", 400),
    ("application/json", b"[1, 2, 3]", 400),
    ("application/json", b'{"text": "an activity has a type"}', 400),
])
async def test_a_body_that_is_not_an_activity_is_refused(teams_bot, http, connector, content_type, body, status):
    async with http.post(teams_bot.url + "/api/messages", data=body, headers={"Content-Type": content_type}) as resp:
        assert resp.status == status
    assert connector.calls == []


async def test_stock_botbuilder_still_answers_500_to_action_execute(http):
    """Why handlers/teams/adapter.py overrides process(): botbuilder 4.17.1 serialises the invoke answer twice.
    When this fails, botbuilder is fixed and the override's serialisation workaround can go."""
    from aiohttp import web
    from botbuilder.core import ActivityHandler
    from botbuilder.integration.aiohttp import CloudAdapter
    from botbuilder.schema import AdaptiveCardInvokeResponse

    class StockBot(ActivityHandler):
        async def on_adaptive_card_invoke(self, turn, invoke_value):
            return AdaptiveCardInvokeResponse(status_code=200, type=CARD_TYPE, value={"type": "AdaptiveCard"})

    adapter, bot = CloudAdapter(ConfigurationBotFrameworkAuthentication(bot_framework_config(teams_settings()))), StockBot()
    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        invoke = fixture("teams_invoke_action.json")
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/messages"
        async with http.post(url, json=invoke) as resp:
            assert resp.status == 500
    finally:
        await runner.cleanup()
