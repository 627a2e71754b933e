"""The Slack app: Bolt's AsyncApp with our listeners, background work and one error handler."""

import logging
from dataclasses import dataclass

from aiohttp import ClientSession
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (AsyncConnectionErrorRetryHandler,
                                                         AsyncRateLimitErrorRetryHandler)
from slack_sdk.web.async_client import AsyncWebClient

from bot.recovery import Recovery
from bot.settings import Settings
from handlers.slack.checklist import ChecklistHandlers
from handlers.slack.commands import RecoverCommand
from handlers.slack.publish import SlackPublisher
from handlers.slack.background import Background, report


class _SameTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our client wins; it is the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


@dataclass(frozen=True)
class SlackApp:
    bolt: AsyncApp
    background: Background


def build_slack_app(*, settings: Settings, recovery: Recovery, session: ClientSession | None = None) -> SlackApp:
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        # Honour Slack's Retry-After on 429 and retry a dropped connection, as slack_sdk recommends.
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2), AsyncConnectionErrorRetryHandler()],
    )
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _SameTokenNotice) for f in bolt_log.filters):
        bolt_log.addFilter(_SameTokenNotice())
    # Answer Slack as soon as the ack function returns, instead of Bolt polling for ack() every
    # 10 ms; the rest of each listener runs afterwards as a task (handlers/slack/background.py).
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret, process_before_response=True)
    publisher = SlackPublisher(recovery=recovery, admins=settings.admins)
    background = Background(recovery=recovery)

    @app.error
    async def on_error(error, body, respond, client):
        """Errors raised before the ack (recording a form); background work reports its own."""
        await report(error, body=body, respond=respond, client=client)
        return BoltResponse(status=200, body="")

    RecoverCommand(recovery=recovery, publisher=publisher, admins=settings.admins, background=background).register(app)
    ChecklistHandlers(recovery=recovery, publisher=publisher, background=background).register(app)
    return SlackApp(bolt=app, background=background)
