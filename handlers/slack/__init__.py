"""The Slack app: Bolt's AsyncApp with our listeners, background work and one error handler.

One workspace (SLACK_BOT_TOKEN), or many installed through Bolt's OAuth flow (SLACK_CLIENT_ID and
SLACK_CLIENT_SECRET; handlers/slack/oauth.py); over signed HTTP or Socket Mode (SLACK_APP_TOKEN;
handlers/slack/socket_mode.py). The listeners are the same in every mode.
"""

import logging
from dataclasses import dataclass

from aiohttp import ClientSession
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (AsyncConnectionErrorRetryHandler,
                                                         AsyncRateLimitErrorRetryHandler)
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, SystemClock
from bot.recovery import Recovery
from bot.settings import Settings
from handlers.slack.checklist import ChecklistHandlers
from handlers.slack.commands import RecoverCommand
from handlers.slack.followups import ReminderButtons
from handlers.slack.topups import TopUpHandlers
from handlers.slack.learning import LearningHandlers
from handlers.slack.home import SlackHome
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

    install_throttle: object = None  # handlers.slack.oauth.Throttle with OAuth

    @property
    def oauth(self):
        """Bolt's OAuth flow (GET /slack/install, /slack/oauth_redirect), or None for one workspace."""
        return self.bolt.oauth_flow

    async def install(self, path: str, request: AsyncBoltRequest) -> BoltResponse:
        """GET /slack/install: to Slack's consent page with a fresh state (throttled: each one is written
        to the store); GET /slack/oauth_redirect: Slack sends the installer back with a code."""
        if path == self.oauth.settings.install_path:
            if not self.install_throttle.take():
                return BoltResponse(status=429, body="Too many installs at once; try again in a minute.",
                                    headers={"Retry-After": "60"})
            return await self.oauth.handle_installation(request)
        return await self.oauth.handle_callback(request)

    async def client_for(self, workspace: str) -> AsyncWebClient | None:
        """A Web API client with the workspace's own bot token, for work outside a request (the outbox,
        reminders): the app's client with one workspace; None when that workspace has no installation."""
        installations = self.bolt.installation_store
        base = self.bolt.client
        if installations is None:
            return base
        bot = await installations.async_find_bot(enterprise_id=None, team_id=workspace)
        if bot is None and workspace.startswith("E"):  # an org-wide install is kept under its org's id
            bot = await installations.async_find_bot(enterprise_id=workspace, team_id=None, is_enterprise_install=True)
        if bot is None:
            return None
        return AsyncWebClient(token=bot.bot_token, base_url=base.base_url, session=base.session,
                              timeout=base.timeout, retry_handlers=list(base.retry_handlers))


def build_slack_app(*, settings: Settings, recovery: Recovery, session: ClientSession | None = None,
                    clock: Clock | None = None) -> SlackApp:
    client = AsyncWebClient(
        token=None if settings.slack_oauth else settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        # Honour Slack's Retry-After on 429 and retry a dropped connection, as slack_sdk recommends.
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2), AsyncConnectionErrorRetryHandler()],
    )
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _SameTokenNotice) for f in bolt_log.filters):
        bolt_log.addFilter(_SameTokenNotice())
    many = {}
    if settings.slack_oauth:
        from handlers.slack import oauth  # loads cryptography: only installs serving many workspaces pay for it
        oauth_settings = oauth.oauth_settings(settings=settings, store=recovery.store, clock=clock or SystemClock())
        many = {"oauth_settings": oauth_settings, "authorize": oauth.authorize(settings=oauth_settings, client=client),
                "user_facing_authorize_error_message": oauth.NOT_INSTALLED}
    # Answer Slack as soon as the ack function returns, instead of Bolt polling for ack() every
    # 10 ms; the rest of each listener runs afterwards as a task (handlers/slack/background.py).
    # Socket Mode acks the same way: its handler sends the envelope's ack when the listener returns.
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret, process_before_response=True,
                   **many)
    if many:
        # app_uninstalled and tokens_revoked: the installation store overwrites the workspace's tokens.
        app.enable_token_revocation_listeners()
    publisher = SlackPublisher(recovery=recovery, admins=settings.admins)
    background = Background(recovery=recovery)

    @app.error
    async def on_error(error, body, respond, client):
        """Errors raised before the ack (recording a form); background work reports its own."""
        await report(error, body=body, respond=respond, client=client)
        return BoltResponse(status=200, body="")

    RecoverCommand(recovery=recovery, publisher=publisher, admins=settings.admins, background=background).register(app)
    topups = TopUpHandlers(recovery=recovery, publisher=publisher, background=background, admins=settings.admins)
    topups.register(app)
    ChecklistHandlers(recovery=recovery, publisher=publisher, background=background, topups=topups).register(app)
    LearningHandlers(recovery=recovery, admins=settings.admins, background=background).register(app)
    SlackHome(recovery=recovery, admins=settings.admins, background=background).register(app)
    ReminderButtons(recovery=recovery, publisher=publisher, background=background).register(app)
    return SlackApp(bolt=app, background=background, install_throttle=oauth.Throttle() if many else None)
