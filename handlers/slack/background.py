"""Work done after the ack: Slack gets its answer at once, the person gets the result moments later.

The app runs with process_before_response=True, so Bolt returns the HTTP response as soon as a
listener returns, with no polling for ack(). Each listener acks and hands its work to Background,
which runs it as a task. (Bolt's own lazy listeners would deep-copy every request, client and
connection pool included, which fails on a shared aiohttp session and costs CPU per request.)
A repeated delivery is dropped there (keyed in the store, off the ack path), a refusal becomes
its sentence, anything else the same reference-id answer the app's error handler gives, and
shutdown waits for work in flight.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.errors import sentence_for
from bot.recovery import Recovery
from handlers.slack.replies import tell

log = logging.getLogger(__name__)

Work = Callable[..., Awaitable[None]]


def delivery_key(body: dict) -> str | None:
    """A key that is the same for a redelivery of one request and differs for a new one.

    Slack retries Events API deliveries (X-Slack-Retry-Num) with the same event_id; a slash
    command has a fresh trigger_id per invocation; a click its own action_ts. A double click is
    two clicks: the case's state, not this key, makes the second one a no-op.
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


async def report(error: Exception, *, body: dict, respond, client) -> None:
    """A refusal is told as is; anything else gets a reference that is also in the log."""
    text = sentence_for(error, log=log)
    try:
        await tell(body=body, respond=respond, client=client, text=text)
    except Exception:  # the person can't be reached; the log has it
        log.exception("could not tell the person about an error")


# Work running at once. Acks are cheap, so under a burst acked work piles up; past this many the rest
# waits its turn, holding only its payload: acks stay fast and memory stays flat (see bench/).
RUNNING_AT_ONCE = 32


@dataclass(frozen=True)
class Origin:
    """The little a piece of work needs from its request's context (not Bolt's whole context)."""

    team_id: str | None


class Background:
    def __init__(self, *, recovery: Recovery, running_at_once: int = RUNNING_AT_ONCE):
        self.recovery = recovery
        self._tasks: set[asyncio.Task] = set()
        self._turns = asyncio.Semaphore(running_at_once)

    def acked(self, work: Work):
        """A listener that acks at once and runs `work(body=, client=, respond=, context=)` after."""
        async def listener(ack, body, client, respond, context) -> None:
            await ack()
            self.start(work, body=body, client=client, respond=respond, context=context)
        return listener

    def start(self, work: Work, *, body: dict, client, respond, context) -> None:
        """Run the work as a task that outlives the request; shutdown waits for it."""
        task = asyncio.create_task(self._run(work, body=body, client=client, respond=respond,
                                             context=Origin(team_id=context.team_id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Work, *, body: dict, client, respond, context: Origin) -> None:
        async with self._turns:
            try:
                key = delivery_key(body)
                if key is not None and not await self.recovery.first_time(key):
                    log.info("ignoring a repeated delivery: %s", key)
                    return
                await work(body=body, client=client, respond=respond, context=context)
            except Exception as error:
                await report(error, body=body, respond=respond, client=client)

    async def drain(self, *, timeout: float = 10.0) -> None:
        """Let work in flight finish (a promise to a guest may be on its way to Slack)."""
        if self._tasks:
            done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                log.warning("background work still running at shutdown was cancelled")
                task.cancel()
