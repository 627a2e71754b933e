"""Retention: customer references and free-text notes are kept only as long as the workspace says.

An admin sets the number of days (default 365; `admin retention <days>`). Once a day a job erases,
from cases opened before then, the customer reference and every text people typed (what happened,
which for a survey or a forwarded message is the guest's own words; step notes, "what we'll change",
a top-up's reason), and records when. Amounts, kinds, root causes, owners and times stay, so the
numbers (digest, export, budgets) still add up.

The job runs through the outbox (bot/outbox.py): one message per day for all workspaces (those with a
first case since the last run included), keyed by the day, in its own lane. Each run owes the next
day's and settles its own in one write, so the chain goes on exactly once however many processes run;
every start owes the next run (even with no workspace yet), and a day missed while the bot was down
runs at start. A watermark per workspace (the opening time up to which every case is erased) keeps
each run to the cases not yet seen.
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
JOB_WORKSPACE = "_retention"  # the daily job is one for all workspaces: its outbox lane and bookkeeping live here
RAN_KEY = "config:retention_ran_on"  # the (local) day the job last ran, so a start that day owes tomorrow's
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


ERASED = "(details erased after the retention period)"  # what happened, once erased: it was free text


def erase(case: Case, *, at: datetime) -> Case:
    """The case without its customer reference and typed text; counts, categories and times stay. What
    happened goes too: it is free text, and often the guest's own words (a survey comment, a forwarded
    complaint) or their name; the category is the root cause and the kind given."""
    if case.erased_at is not None:
        return case
    return replace(
        case, customer="", what_happened=ERASED, done=_blank(case.done), change_note="",
        top_up=replace(case.top_up, reason="") if case.top_up is not None else None,
        reopenings=tuple(replace(r, done=_blank(r.done)) for r in case.reopenings),
        erased_at=at)


async def run(store, *, workspace: str, now: datetime) -> list[str]:
    """Erase what is older than the workspace's retention; the ids of the cases erased now."""
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
    await store.put_reference(workspace=workspace, key=WATERMARK_KEY, value={"until": max(since, cutoff).isoformat()})
    if erased:
        log.info("retention: erased customer references and notes of %d case(s) in %s", len(erased), workspace)
    return erased


def job_key(day: date) -> str:
    return f"{KIND}:{day.isoformat()}"


def job(day: date, *, tz, now: datetime) -> OutboxMessage:
    """The run of `day` (for every workspace), due at RUN_AT local time that day."""
    due = datetime.combine(day, RUN_AT, tzinfo=tz).astimezone(timezone.utc)
    return OutboxMessage(key=job_key(day), workspace=JOB_WORKSPACE, case_id=LANE, kind=KIND,
                         body={"day": day.isoformat()}, owed_at=now, due=due)


async def seed(store, *, tz, now: datetime) -> None:
    """Owe the next run: today's, or tomorrow's once today's has run (a key already owed is left as it is,
    so two processes starting owe it once). Owed even before any workspace has a case, so a workspace
    installed later is covered by the chain already running; with none yet, tomorrow's (no case can be
    old enough today)."""
    today = now.astimezone(tz).date()
    ran = await store.reference(workspace=JOB_WORKSPACE, key=RAN_KEY) or {}
    due_today = ran.get("on") != today.isoformat() and bool(await store.workspaces())
    day = today if due_today else today + timedelta(days=1)
    await store.add_outbox(messages=[job(day, tz=tz, now=now)])


class RetentionJob:
    """The outbox's sender for kind "retention": run for every workspace, then owe tomorrow's run and settle
    this one in one write (the chain goes on exactly once, however many processes run)."""

    def __init__(self, *, store, clock, tz):
        self.store, self.clock, self.tz = store, clock, tz

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        now = self.clock.now()
        today = now.astimezone(self.tz).date()
        for workspace in await self.store.workspaces():  # read now: those with a first case since are in
            try:
                await run(self.store, workspace=workspace, now=now)
            except Exception:  # noqa: BLE001 — one workspace must not stop the others' erasing, nor the chain;
                # its watermark is unchanged, so the next run erases what this one didn't
                log.exception("retention: the run for %s failed; the next daily run tries again", workspace)
        await self.store.put_reference(workspace=JOB_WORKSPACE, key=RAN_KEY, value={"on": today.isoformat()})
        day = max(date.fromisoformat(message.body["day"]), today) + timedelta(days=1)
        await self.store.add_outbox(messages=[job(day, tz=self.tz, now=now)], settles=message.key)

    async def start(self) -> None:
        """At start-up: the next run is owed (one missed while the bot was down is due at once)."""
        await seed(self.store, tz=self.tz, now=self.clock.now())


async def admin_retention(recovery, *, workspace: str, text: str) -> str:
    """`admin retention <days>`: save it and make sure the workspace's daily run is owed; the admin's sentence."""
    days = await set_retention(recovery.store, workspace=workspace, text=text)
    await seed(recovery.store, tz=recovery.tz, now=recovery.outbox.clock.now())
    recovery.outbox.wake()
    return (f"Saved. Customer references and notes are kept {days} day(s), then erased by a daily job; "
            "amounts, causes and times stay for the numbers.")
