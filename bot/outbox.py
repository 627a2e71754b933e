"""The outbox: messages the bot owes a channel, recorded before they are sent, sent by one background task.

Why: once a person's click is acknowledged, what follows from it (the summary managers read, the
case card turning "closed") must reach the channel even if Slack or Teams is rate-limiting or
down, or this process is killed. So such a message is first stored as an outbox message; the
sender delivers it and, only after the platform confirmed it and the returned ts / activity id
is stored, marks it sent (which removes it: memory and the table stay as small as what is owed).

The guarantee, exactly:
- A message is owed from the moment `owe` returns until it is confirmed sent: restarts resume it.
- Before every attempt the store durably records the attempt (`tried_at`). An attempt that was
  cut off with its outcome unknown (the process died mid-send, a timeout, a 5xx or a dropped
  connection after the request left) leaves the message *in doubt*; the next attempt first asks
  the platform whether it arrived (a sender's `deliver(in_doubt=True)`), and only sends if not.
  So a message is posted at most once as long as that check can be made (see docs/reliability.md
  for each sender's check and what happens when it can't).
- A case's messages go out in the order they were owed: only the oldest unsent message of each
  case is ever due, and the next one waits until it is sent.
- Retries back off exponentially with jitter; a Retry-After from the platform is honoured (the
  message waits at least that long, and so does the rest of that workspace's outbox).
"""

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from bot.clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxMessage:
    """One message owed to a channel. The store sets `seq` (the order owed) and the attempt fields."""

    key: str  # unique: this message and no other, e.g. "slack.summary:T1:R-1001"
    workspace: str
    case_id: str  # a case's messages are sent in the order they were owed
    kind: str  # which sender delivers it, e.g. "slack.summary"
    body: dict  # JSON-able: what that sender needs (a channel, a ts)
    owed_at: datetime
    due: datetime
    seq: int = 0
    attempts: int = 0
    tried_at: datetime | None = None  # set before each attempt; still set after it = outcome unknown
    error: str = ""

    @property
    def in_doubt(self) -> bool:
        """An earlier attempt may have reached the platform: check before sending again."""
        return self.tried_at is not None


class Retry(Exception):
    """A send that failed for now. `after`: the platform's Retry-After in seconds; `in_doubt`: the
    request may have arrived (a timeout, a 5xx, a dropped connection), so check before resending."""

    def __init__(self, reason: str, *, after: float | None = None, in_doubt: bool = False):
        super().__init__(reason)
        self.reason, self.after, self.in_doubt = reason, after, in_doubt


class Sender(Protocol):
    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        """Send the message (when `in_doubt`, first find out whether an earlier attempt arrived) and
        store what the platform returned before returning. Raise Retry to be called again later;
        any other exception is retried the same way, as in doubt."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits base·2ⁿ⁻¹ (at most `cap`), times 0.5–1."""

    base: float = 1.0
    cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int) -> float:
        full = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return full * (0.5 + self.rng.random() / 2)


# How many messages of different cases are sent at once; one case's are always one at a time.
SENDING_AT_ONCE = 8
DUE_BATCH = 64


class Outbox:
    """Owes messages (recording them first) and runs the task that sends them."""

    def __init__(self, *, store, senders: Mapping[str, Sender] | None = None, clock: Clock | None = None,
                 backoff: Backoff | None = None, lease: timedelta = timedelta(seconds=30)):
        self.store = store
        self.senders: dict[str, Sender] = dict(senders or {})
        self.clock = clock or SystemClock()  # wall-clock time: due times must mean the same after a restart
        self.backoff = backoff or Backoff()
        # How long a claimed attempt keeps others off it; a process killed mid-send is retried after it.
        self.lease = lease
        self._wake = asyncio.Event()
        self._asleep_until: datetime | None | bool = False  # False: making a round; None: asleep until woken
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._paused: dict[str, datetime] = {}  # workspace → not before (a Retry-After)
        self._turns = asyncio.Semaphore(SENDING_AT_ONCE)
        self._unsendable: set[str] = set()  # keys already logged as having no sender
        self.rounds = 0  # rounds of the sending loop made; each ends having sent or found nothing due
        self._round = asyncio.Condition()

    def register(self, kind: str, sender: Sender) -> None:
        self.senders[kind] = sender
        self.wake()

    async def owe(self, messages: list[OutboxMessage], *, settles: str | None = None) -> None:
        """Record messages as owed (a key already owed is left as it is), settle the message keyed
        `settles` in the same write, and wake the sender."""
        await self.store.add_outbox(messages=messages, settles=settles)
        self.wake()

    async def owe_and_try(self, message: OutboxMessage, *, settles: str | None = None) -> bool:
        """Record one message as owed (settling `settles`, as owe does) and make its first attempt now, in
        the caller's task (so a person's answer can say how it went). True when it is no longer owed;
        otherwise the sender retries it."""
        await self.store.add_outbox(messages=[message], settles=settles)
        if message.kind in self.senders:
            current = [m for m in await self.store.due_outbox(now=self.clock.now(), limit=DUE_BATCH)
                       if m.key == message.key]
            if current:
                await self._send(current[0])
        if any(m.key == message.key for m in await self.store.owed_outbox()):
            self.wake()
            return False
        return True

    def wake(self) -> None:
        self._wake.set()

    def wake_by(self, due: datetime) -> None:
        """A message was owed for `due`: wake the sender only if it would otherwise sleep past then. (A case
        opened owes its idle nudge for 15 minutes later; waking for each would cost a round per request.)"""
        until = self._asleep_until
        if until is False or until is None or due < until:
            self.wake()

    async def after_round(self, seen: int) -> None:
        """Wait until the loop finishes a round after round number `seen` (tests: with a deadline)."""
        async with self._round:
            await self._round.wait_for(lambda: self.rounds > seen)

    # --- the task ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="amends-outbox")

    async def stop(self) -> None:
        """Stop sending; whatever is owed stays owed and goes out after the next start."""
        task, self._task = self._task, None
        if task is not None:
            # Python 3.11's wait_for can swallow a cancel that lands as the wake does: the loop also checks this.
            self._stopping = True
            self.wake()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                tried, held_until = await self._pass()
                wait = 0.0 if tried else await self._until_next(held_until)
            except Exception:  # the store is down, say: nothing is lost, try again soon
                log.exception("outbox: could not read what is owed; trying again shortly")
                wait = 5.0
            async with self._round:
                self.rounds += 1
                self._round.notify_all()
            if wait == 0.0:
                continue
            self._asleep_until = None if wait is None else self.clock.now() + timedelta(seconds=wait)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            finally:
                self._asleep_until = False

    async def _until_next(self, held_until: datetime | None) -> float | None:
        """Seconds until something can be sent (None: nothing is owed)."""
        due = await self.store.next_outbox_due(after=self.clock.now())
        moments = [t for t in (due, held_until) if t is not None]
        if not moments:
            return None
        return max(0.001, (min(moments) - self.clock.now()).total_seconds())

    async def send_due(self) -> bool:
        """One pass: send every message due now (heads of their cases only). True when any was tried."""
        return (await self._pass())[0]

    async def _pass(self) -> tuple[bool, datetime | None]:
        now = self.clock.now()
        due, held_until = [], None
        for message in await self.store.due_outbox(now=now, limit=DUE_BATCH):
            paused = self._paused.get(message.workspace)
            if message.kind not in self.senders:  # its platform is not set up (yet): it stays owed
                if message.key not in self._unsendable:
                    self._unsendable.add(message.key)
                    log.warning("outbox: nothing sends %s yet (%s); it stays owed", message.kind, message.key)
            elif paused is not None and paused > now:  # that workspace asked us to wait (Retry-After)
                held_until = paused if held_until is None else min(held_until, paused)
            else:
                due.append(message)
        if not due:
            return False, held_until
        await asyncio.gather(*(self._send(message) for message in due))
        return True, held_until

    async def _send(self, message: OutboxMessage) -> None:
        async with self._turns:
            sender = self.senders[message.kind]
            in_doubt = message.in_doubt
            # Claimed and recorded before the request leaves: a crash from here on leaves it in doubt.
            message = await self.store.try_outbox(key=message.key, at=self.clock.now(), lease=self.lease)
            if message is None:
                return  # sent or claimed meanwhile (another process, or an attempt made at once)
            try:
                await sender.deliver(message, in_doubt=in_doubt)
            except Exception as error:  # noqa: BLE001 — every failure is retried; the reason is logged
                failure = error if isinstance(error, Retry) else Retry(f"{type(error).__name__}: {error}",
                                                                       in_doubt=True)
                wait = self.backoff.delay(message.attempts)
                if failure.after is not None:
                    wait = max(wait, failure.after)
                    self._paused[message.workspace] = self.clock.now() + timedelta(seconds=failure.after)
                log.warning("outbox: %s not sent (attempt %d: %s); again in %.1f s", message.key,
                            message.attempts, failure.reason, wait)
                await self.store.retry_outbox(key=message.key, due=self.clock.now() + timedelta(seconds=wait),
                                              error=failure.reason[:200], in_doubt=failure.in_doubt)
                return
            await self.store.outbox_sent(key=message.key)
            log.info("outbox: %s sent (attempt %d)", message.key, message.attempts)


# --- the close marker ---------------------------------------------------------------------------
CLOSED = "closed"
# The platform glue owes a closed case's messages moments after the close; the marker, recorded in the
# close's own write, waits this long before standing in for it (a crash in between, or a long queue).
CLOSE_GRACE = timedelta(seconds=20)


def closed_key(workspace: str, case_id: str) -> str:
    return f"{CLOSED}:{workspace}:{case_id}"


def close_marker(case) -> OutboxMessage:
    """Recorded in the same write that closes `case`: until the platform glue settles it by owing the
    case's own messages (summary, closed card), it stands for them, so a crash between the close and
    that step loses nothing."""
    now = datetime.now(timezone.utc)
    return OutboxMessage(key=closed_key(case.workspace, case.id), workspace=case.workspace, case_id=case.id,
                         kind=CLOSED, body={}, owed_at=now, due=now + CLOSE_GRACE)


class AfterClose:
    """Delivers a close marker the glue never settled: asks each platform what the case owes (the first
    that claims the workspace answers) and owes it, settling the marker in the same write."""

    def __init__(self, outbox: "Outbox", recovery, platforms):
        self.outbox, self.recovery, self.platforms = outbox, recovery, list(platforms)

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        case = await self.recovery.case(workspace=message.workspace, case_id=message.case_id)
        for platform in self.platforms:
            owed_now = await platform(case)
            if owed_now is not None:
                log.warning("outbox: %s was closed but its messages were never owed (a crash?); owing %s",
                            case.id, [m.key for m in owed_now] or "nothing")
                await self.outbox.store.add_outbox(messages=owed_now, settles=message.key)
                return


class Deferred:
    """Stands in for a platform's sender until its glue is loaded: `load()` builds the glue, which
    registers the real sender for `kind` (so a Teams summary owed before a restart goes out without
    waiting for the first Teams request)."""

    def __init__(self, outbox: Outbox, kind: str, load):
        self.outbox, self.kind, self.load = outbox, kind, load

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        self.load()
        real = self.outbox.senders.get(self.kind)
        if real is None or real is self:
            raise Retry(f"loading the sender of {self.kind} registered none")
        await real.deliver(message, in_doubt=in_doubt)


def owed(*, key: str, workspace: str, case_id: str, kind: str, body: dict, now: datetime | None = None) -> OutboxMessage:
    """A message owed from now."""
    now = now or datetime.now(timezone.utc)
    return OutboxMessage(key=key, workspace=workspace, case_id=case_id, kind=kind, body=body, owed_at=now, due=now)


def as_doc(message: OutboxMessage) -> dict:
    """The message as a JSON document (the embedded store's row)."""
    return {"key": message.key, "workspace": message.workspace, "case_id": message.case_id, "kind": message.kind,
            "body": message.body, "owed_at": message.owed_at.isoformat(), "due": message.due.isoformat(),
            "seq": message.seq, "attempts": message.attempts,
            "tried_at": None if message.tried_at is None else message.tried_at.isoformat(), "error": message.error}


def from_doc(doc: dict) -> OutboxMessage:
    return OutboxMessage(key=doc["key"], workspace=doc["workspace"], case_id=doc["case_id"], kind=doc["kind"],
                         body=doc["body"], owed_at=datetime.fromisoformat(doc["owed_at"]),
                         due=datetime.fromisoformat(doc["due"]), seq=doc["seq"], attempts=doc["attempts"],
                         tried_at=None if doc["tried_at"] is None else datetime.fromisoformat(doc["tried_at"]),
                         error=doc.get("error", ""))


