"""Retention: customer references and free-text notes are kept only as long as the workspace says.

An admin sets the number of days (default 365; `admin retention <days>`). Once a day a job erases,
from cases opened before then, the customer reference and every note people typed (step notes,
"what we'll change", a top-up's reason), and records when. Amounts, kinds, root causes, owners and
times stay, so the numbers (digest, export, budgets) still add up. What happened stays too: it is the
case's category in words, and people are asked not to put guests' details in it.

The job runs through the outbox (bot/outbox.py): one message per workspace per day, keyed by the day,
in its own lane. Each run owes the next day's and settles its own in one write, so the chain goes on
exactly once however many processes run; a day missed while the bot was down runs at start. A
watermark (the opening time up to which every case is erased) keeps each run to the cases not yet seen.
"""

import logging
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

from bot.cases import Case, StepDone
from bot.errors import BadCommand
from bot.outbox import OutboxMessage

log = logging.getLogger(__name__)

RETENTION_KEY = "config:retention_days"
WATERMARK_KEY = "config:retention_watermark"
DEFAULT_DAYS = 365
MIN_DAYS, MAX_DAYS = 1, 3650
KIND = "retention"
LANE = "retention"  # the outbox lane (case_id): never behind a case's own messages
RUN_AT = time(3, 0)  # local time of the daily run: a quiet hour
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


async def retention_days(store, *, workspace: str) -> int:
    kept = await store.reference(workspace=workspace, key=RETENTION_KEY)
    return int((kept or {}).get("days") or DEFAULT_DAYS)


def parse_days(text: str) -> int:
    try:
        days = int((text or "").strip())
    except ValueError:
        raise BadCommand(f"{(text or '')[:40]!r} isn't a number of days; e.g. `/recover admin retention 365`. "
                         "Nothing changed.") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise BadCommand(f"Keep customer references and notes between {MIN_DAYS} and {MAX_DAYS} days; "
                         "nothing changed.")
    return days


async def set_retention(store, *, workspace: str, text: str) -> int:
    days = parse_days(text)
    await store.put_reference(workspace=workspace, key=RETENTION_KEY, value={"days": days})
    return days


def _blank(done: dict) -> dict:
    return {step: StepDone(at=step_done.at) for step, step_done in done.items()}


def erase(case: Case, *, at: datetime) -> Case:
    """The case without its customer reference and typed notes; counts, categories and times stay."""
    if case.erased_at is not None:
        return case
    return replace(
        case, customer="", done=_blank(case.done), change_note="",
        top_up=replace(case.top_up, reason="") if case.top_up is not None else None,
        reopenings=tuple(replace(r, done=_blank(r.done)) for r in case.reopenings),
        erased_at=at)


async def run(store, *, workspace: str, now: datetime, today: date | None = None) -> list[str]:
    """Erase what is older than the workspace's retention; the ids of the cases erased now. `today`: the
    workspace's date now (in its time zone), remembered so a start the same day owes tomorrow's run."""
    cutoff = now - timedelta(days=await retention_days(store, workspace=workspace))
    mark = await store.reference(workspace=workspace, key=WATERMARK_KEY) or {}
    since = datetime.fromisoformat(mark["until"]) if mark.get("until") else EPOCH
    if since > cutoff:  # the retention was lengthened: what is older was erased already, nothing to undo
        since = cutoff
    erased = []
    for case in await store.cases(workspace=workspace, since=since, until=cutoff):
        if case.erased_at is None:
            await store.change_case(workspace=workspace, case_id=case.id, change=lambda c: erase(c, at=now))
            erased.append(case.id)
    await store.put_reference(workspace=workspace, key=WATERMARK_KEY,
                              value={"until": max(since, cutoff).isoformat(),
                                     "ran_on": (today or now.date()).isoformat()})
    if erased:
        log.info("retention: erased customer references and notes of %d case(s) in %s", len(erased), workspace)
    return erased


def job_key(workspace: str, day: date) -> str:
    return f"{KIND}:{workspace}:{day.isoformat()}"


def job(workspace: str, day: date, *, tz, now: datetime) -> OutboxMessage:
    """The run of `day`, due at RUN_AT local time that day."""
    due = datetime.combine(day, RUN_AT, tzinfo=tz).astimezone(timezone.utc)
    return OutboxMessage(key=job_key(workspace, day), workspace=workspace, case_id=LANE, kind=KIND,
                         body={"day": day.isoformat()}, owed_at=now, due=due)


async def seed(store, *, workspaces, tz, now: datetime) -> None:
    """Owe each workspace's next run (a key already owed is left as it is: two processes seed one)."""
    today = now.astimezone(tz).date()
    messages = []
    for workspace in workspaces:
        mark = await store.reference(workspace=workspace, key=WATERMARK_KEY) or {}
        day = today + timedelta(days=1) if mark.get("ran_on") == today.isoformat() else today
        messages.append(job(workspace, day, tz=tz, now=now))
    if messages:
        await store.add_outbox(messages=messages)


class RetentionJob:
    """The outbox's sender for kind "retention": run, then owe tomorrow's run and settle this one in one write."""

    def __init__(self, *, store, clock, tz):
        self.store, self.clock, self.tz = store, clock, tz

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        now = self.clock.now()
        today = now.astimezone(self.tz).date()
        await run(self.store, workspace=message.workspace, now=now, today=today)
        day = max(date.fromisoformat(message.body["day"]), today) + timedelta(days=1)
        # Workspaces that opened their first case since the last start join the chain here.
        others = [w for w in await self.store.workspaces() if w != message.workspace]
        await self.store.add_outbox(messages=[job(message.workspace, day, tz=self.tz, now=now),
                                              *(job(w, day, tz=self.tz, now=now) for w in others)],
                                    settles=message.key)

    async def start(self) -> None:
        """At start-up: every known workspace's next run."""
        await seed(self.store, workspaces=await self.store.workspaces(), tz=self.tz, now=self.clock.now())


async def admin_retention(recovery, *, workspace: str, text: str) -> str:
    """`admin retention <days>`: save it and make sure the workspace's daily run is owed; the admin's sentence."""
    days = await set_retention(recovery.store, workspace=workspace, text=text)
    await seed(recovery.store, workspaces=[workspace], tz=recovery.tz, now=recovery.outbox.clock.now())
    recovery.outbox.wake()
    return (f"Saved. Customer references and notes are kept {days} day(s), then erased by a daily job; "
            "amounts, causes and times stay for the numbers.")
