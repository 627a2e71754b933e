"""Socket Mode: Slack's requests arrive over a websocket we open, so no public URL is needed.

Bolt's AsyncSocketModeHandler (slack_sdk's aiohttp client) feeds every envelope to the same
AsyncApp, listeners and middleware as POST /slack/events, and sends each ack back over the socket
(the listeners return right after ack(); their work runs in handlers/slack/background.py tasks, so
acks stay as fast as over HTTP). The aiohttp server keeps serving /healthz and /api/messages.

slack_sdk retries a failed connect forever; a refused SLACK_APP_TOKEN would then only be a
traceback every few seconds. So the first URL is asked for here: a refusal is logged once with the
fix and Socket Mode stays off; a network failure is retried with backoff. Once connected, slack_sdk
reconnects by itself.
"""

import asyncio
import logging

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

REFUSED = {"invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "account_inactive",
           "missing_scope", "app_missing_action_url"}
RETRY_AFTER_MAX = 60.0


class SocketMode:
    def __init__(self, *, bolt: AsyncApp, app_token: str, ping_interval: float = 10):
        self.handler = AsyncSocketModeHandler(bolt, app_token, ping_interval=ping_interval)
        self.connected = asyncio.Event()
        self.refused: str | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Connect in the background: the HTTP server (and /healthz) is up meanwhile."""
        self._task = asyncio.create_task(self._connect(), name="slack-socket-mode")

    async def _connect(self) -> None:
        client, delay = self.handler.client, 1.0
        while True:
            try:
                client.wss_uri = await client.issue_new_wss_url()
                break
            except SlackApiError as error:
                code = (error.response.get("error") if error.response is not None else None) or "unknown_error"
                if code in REFUSED:
                    self.refused = code
                    log.error("Slack Socket Mode is off: apps.connections.open refused SLACK_APP_TOKEN (%s). Use "
                              "the app-level token (xapp-…) with the connections:write scope from the app's Basic "
                              "Information page, and turn Socket Mode on (or run `python app.py doctor`).", code)
                    return
                log.warning("Slack Socket Mode: apps.connections.open failed (%s); retrying in %.0f s", code, delay)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                log.warning("Slack Socket Mode: can't reach Slack (%s); retrying in %.0f s", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_AFTER_MAX)
        await self.handler.connect_async()
        self.connected.set()
        log.info("Slack Socket Mode: connected; Slack's requests arrive over the websocket")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.handler.close_async()
