"""The Slack app: Bolt's AsyncApp with our listeners, one dedupe middleware and one error handler."""

import logging
import uuid

from aiohttp import ClientSession
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (AsyncConnectionErrorRetryHandler,
                                                         AsyncRateLimitErrorRetryHandler)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import Refusal
from bot.recovery import Recovery
from bot.settings import Settings
from handlers.slack.checklist import ChecklistHandlers
from handlers.slack.commands import RecoverCommand
from handlers.slack.publish import SlackPublisher
from handlers.slack.replies import tell

log = logging.getLogger(__name__)


def delivery_key(body: dict) -> str | None:
    """A key that is the same for a redelivery of one request and differs for a new one.

    Slack retries Events API deliveries (X-Slack-Retry-Num) with the same event_id; a slash
    command has a fresh trigger_id per invocation; a click has its own action_ts. A double
    click is two clicks: the case's state, not this key, makes the second one a no-op.
    """
    team = (body.get("team") or {}).get("id") or body.get("team_id", "")
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{team}:{body['trigger_id']}"
    if body.get("type") == "block_actions" and body.get("actions"):
        action = body["actions"][0]
        return f"action:{team}:{(body.get('user') or {}).get('id')}:{action.get('action_id')}:{action.get('action_ts')}"
    return None


def build_slack_app(*, settings: Settings, recovery: Recovery, session: ClientSession | None = None) -> AsyncApp:
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        # Honour Slack's Retry-After on 429 and retry a dropped connection, as slack_sdk recommends.
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2), AsyncConnectionErrorRetryHandler()],
    )
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret)
    publisher = SlackPublisher(recovery=recovery, admins=settings.admins)

    @app.middleware
    async def once_per_delivery(body, next, logger):
        key = delivery_key(body)
        if key is not None and not await recovery.first_time(key):
            logger.info("ignoring a repeated delivery: %s", key)
            return BoltResponse(status=200, body="")
        await next()

    @app.error
    async def on_error(error, body, respond, client, logger):
        """A known refusal is told as is; anything else gets a reference that is also in the log."""
        if isinstance(error, Refusal):
            text = error.sentence
        else:
            reference = uuid.uuid4().hex[:8]
            log.exception("unhandled error, reference %s", reference, exc_info=error)
            text = (f"Something went wrong on our side (reference {reference}). What was already saved is safe; "
                    "try again, and if it keeps happening give your admin that reference.")
        try:
            await tell(body=body, respond=respond, client=client, text=text)
        except Exception:  # the person can't be reached; the log has it
            log.exception("could not tell the person about an error")
        return BoltResponse(status=200, body="")

    RecoverCommand(recovery=recovery, publisher=publisher, admins=settings.admins).register(app)
    ChecklistHandlers(recovery=recovery, publisher=publisher).register(app)
    return app
