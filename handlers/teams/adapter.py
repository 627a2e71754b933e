"""botbuilder's CloudAdapter over our settings, with its HTTP edge made strict.

`CloudAdapter.process` (botbuilder 4.17.1) has three faults this subclass removes, keeping the
rest of the adapter (authentication, connector clients, turn pipeline) as botbuilder ships it:

- An invoke response is serialised twice (`ActivityHandler` already turns it into a dict, then
  `process` passes the dict to msrest again), so every Action.Execute is answered 500. Here the
  body is serialised exactly once: a msrest model is serialised, a dict is sent as it is.
- Some bad tokens raise something other than PermissionError (no Authorization header with a
  custom issuer → AttributeError; a token signed with another key → a jwt error; an unknown key
  id → IndexError), which botbuilder lets out as 500. Authentication runs first, on its own:
  anything it raises is a 401, and the activity never reaches the bot.
- A missing Content-Type is a KeyError (500) and a body that is not JSON a 500: here 415 and 400.
"""

import logging
from dataclasses import dataclass, field

import requests
from aiohttp import web
from botbuilder.core import Bot, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.auth import BotFrameworkAuthentication
from msrest.exceptions import DeserializationError
from msrest.serialization import Model

from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotFrameworkConfig:
    """The attributes ConfigurationBotFrameworkAuthentication reads, filled from our frozen settings.

    The last two stay None in production (Bot Framework's public cloud); tests point them at a
    local OpenID issuer, which switches botbuilder to its parameterised authentication."""

    APP_ID: str
    APP_PASSWORD: str = field(repr=False)
    APP_TYPE: str
    APP_TENANTID: str
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str | None = None
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str | None = None


def bot_framework_config(settings: Settings) -> BotFrameworkConfig:
    return BotFrameworkConfig(APP_ID=settings.microsoft_app_id, APP_PASSWORD=settings.microsoft_app_password,
                              APP_TYPE=settings.microsoft_app_type, APP_TENANTID=settings.microsoft_app_tenant_id)


def bot_framework_authentication(settings: Settings) -> BotFrameworkAuthentication:
    """Inbound tokens checked against MicrosoftAppId (off when it is empty); outbound calls signed with it."""
    return ConfigurationBotFrameworkAuthentication(bot_framework_config(settings))


class TeamsAdapter(CloudAdapter):
    async def process(self, request: web.Request, bot: Bot, ws_response: web.WebSocketResponse = None) -> web.Response:
        """POST /api/messages: 401 for anything not authenticated, 201 for an activity, the invoke's answer for an invoke."""
        if request.content_type != "application/json":
            return web.json_response({"error": "Bot Framework activities are application/json"}, status=415)
        try:
            body = await request.json()
            activity = Activity().deserialize(body) if isinstance(body, dict) else None
        except (ValueError, DeserializationError):
            activity = None
        if activity is None or not activity.type:
            return web.json_response({"error": "the body is not a Bot Framework activity"}, status=400)

        try:
            authenticated = await self.bot_framework_authentication.authenticate_request(
                activity, request.headers.get("Authorization"))
        except requests.RequestException as error:
            # The signing keys could not be fetched: our side, not the caller's; the channel retries a 5xx.
            log.error("could not fetch the Bot Framework signing keys to check a token: %s", error)
            return web.json_response({"error": "can't check tokens right now"}, status=503)
        except Exception as error:  # noqa: BLE001 — every way authentication fails is a refusal
            log.warning("refused an unauthenticated activity (%s: %s)", type(error).__name__, error)
            return web.json_response({"error": "unauthorized"}, status=401)

        invoke = await self.process_activity(authenticated, activity, bot.on_turn)
        if invoke is None:
            return web.Response(status=201)
        answer = serializer_helper(invoke.body) if isinstance(invoke.body, Model) else invoke.body
        if answer is None:
            return web.Response(status=invoke.status)
        return web.json_response(answer, status=invoke.status)
