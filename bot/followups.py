"""Follow-through after the checklist: the follow-up reminder on its day, a nudge for a case left idle,
and what the owner answers a reminder with (happy, still unhappy: reopen, or snooze a day).

Why through the outbox: a reminder is owed in the same write that closes the case, and a nudge when a
case opens, so both survive restarts and go out once even with several bot processes (the outbox's
lease). Each has its own lane ("reminder:R-1042", "nudge:R-1042"), so neither holds back the case's
own messages. On delivery the case is read again: a reminder for a case reopened, already answered or
moved to another date, and a nudge for a case closed, touched since or already nudged, send nothing.

Platform-neutral: the glue of each platform says how to reach the owner (handlers/*/followups.py).
"""

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

from bot.cases import Case, Reopening
from bot.checklist import Step
from bot.errors import BadCommand, Refusal, StepNotOpen
from bot.outbox import OutboxMessage, Retry

log = logging.getLogger(__name__)

REMINDER, NUDGE = "followup.reminder", "followup.nudge"  # outbox kinds
REMINDER_HOUR, IDLE_MINUTES = "config:reminder_hour", "config:idle_minutes"  # admin settings (store references)
DEFAULT_HOUR, DEFAULT_IDLE_MINUTES = 10, 15
IDLE_MINUTES_MAX = 24 * 60
HAPPY = "happy"
SNOOZE = timedelta(days=1)
KEPT_ON_REOPEN = (Step.APOLOGISE, Step.EMPATHISE)  # what was said and learned still stands


# --- admin settings ------------------------------------------------------------------------------

async def reminder_hour(store, *, workspace: str) -> int:
    stored = await store.reference(workspace=workspace, key=REMINDER_HOUR)
    return int((stored or {}).get("hour", DEFAULT_HOUR))


async def idle_after(store, *, workspace: str) -> timedelta:
    stored = await store.reference(workspace=workspace, key=IDLE_MINUTES)
    return timedelta(minutes=int((stored or {}).get("minutes", DEFAULT_IDLE_MINUTES)))


def _whole(text: str) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdecimal() and len(text) <= 5 else None  # isdigit() passes "²"; int() refuses it


async def set_reminder_hour(store, *, workspace: str, text: str) -> int:
    """`admin reminders <hour>`: the hour (0–23, workspace time) follow-up reminders arrive at."""
    hour = _whole(text)
    if hour is None or hour > 23:
        raise BadCommand(f"{text!r} isn't an hour. Give a whole hour from 0 to 23, e.g. `/recover admin reminders 10` "
                         "for 10:00.")
    await store.put_reference(workspace=workspace, key=REMINDER_HOUR, value={"hour": hour})
    return hour


async def set_idle_minutes(store, *, workspace: str, text: str) -> int:
    """`admin idle <minutes>`: how long an open case may sit untouched before its owner is nudged."""
    minutes = _whole(text)
    if minutes is None or not 1 <= minutes <= IDLE_MINUTES_MAX:
        raise BadCommand(f"{text!r} isn't a number of minutes. Give whole minutes from 1 to {IDLE_MINUTES_MAX}, "
                         "e.g. `/recover admin idle 15`.")
    await store.put_reference(workspace=workspace, key=IDLE_MINUTES, value={"minutes": minutes})
    return minutes


async def saying_reminder_hour(store, *, workspace: str, text: str, tz=None, now: datetime | None = None) -> str:
    """`admin reminders <hour>`, answered in a sentence (both platforms). With the workspace's `tz` and `now`,
    reminders already owed at the old hour move to the new one (bot/followups.move_reminders)."""
    old = await reminder_hour(store, workspace=workspace)
    hour = await set_reminder_hour(store, workspace=workspace, text=text)
    moved = 0
    if tz is not None and now is not None and hour != old:
        moved = await move_reminders(store, workspace=workspace, old=old, new=hour, tz=tz, now=now)
    also = f" The {moved} already scheduled move to it too." if moved > 1 else (
        " The one already scheduled moves to it too." if moved else "")
    return f"Saved. Follow-up reminders now arrive at {hour:02d}:00 (workspace time) on their day.{also}"


async def move_reminders(store, *, workspace: str, old: int, new: int, tz, now: datetime) -> int:
    """Reminders owed at the old hour of their day, not yet due, move to the new hour (a snoozed one keeps the
    time it promised; one whose new time has passed stays). Each is re-owed and the old one settled in one write."""
    moved = 0
    for message in await store.owed_outbox():
        if (message.kind != REMINDER or message.workspace != workspace or message.tried_at is not None
                or message.due <= now):
            continue
        on = date.fromisoformat(message.body["on"])
        due = reminder_at(on, hour=new, tz=tz)
        if message.due != reminder_at(on, hour=old, tz=tz) or due <= now:
            continue
        body = {**message.body, "due": due.isoformat()}
        later = OutboxMessage(key=f"reminder:{workspace}:{body['case']}:{body['round']}:{due.isoformat()}",
                              workspace=workspace, case_id=message.case_id, kind=REMINDER, body=body,
                              owed_at=now, due=due)
        await store.add_outbox(messages=[later], settles=message.key)
        moved += 1
    return moved


async def saying_idle_minutes(store, *, workspace: str, text: str) -> str:
    """`admin idle <minutes>`, answered in a sentence (both platforms)."""
    minutes = await set_idle_minutes(store, workspace=workspace, text=text)
    return f"Saved. A case left untouched for {minutes} min now nudges its owner, once."


# --- what is owed, and when ----------------------------------------------------------------------

def reminder_at(on: date, *, hour: int, tz) -> datetime:
    """The follow-up day at the admin's hour, in the workspace's time zone (as UTC)."""
    return datetime.combine(on, time(hour), tzinfo=tz).astimezone(timezone.utc)


def reminder(case: Case, *, due: datetime, now: datetime) -> OutboxMessage:
    """The reminder of this close of the case (a reopened case's next close owes its own)."""
    round_ = len(case.reopenings)
    return OutboxMessage(key=f"reminder:{case.workspace}:{case.id}:{round_}:{due.isoformat()}",
                         workspace=case.workspace, case_id=f"reminder:{case.id}", kind=REMINDER,
                         body={"case": case.id, "on": case.follow_up_on.isoformat(), "round": round_,
                               "due": due.isoformat()},
                         owed_at=now, due=due)


def reminders_on_close(case: Case, *, hour: int, tz, now: datetime) -> list[OutboxMessage]:
    """Owed in the write that closes the case: a reminder on its follow-up day, if it has one."""
    if case.follow_up_on is None or not case.owner:
        return []
    return [reminder(case, due=reminder_at(case.follow_up_on, hour=hour, tz=tz), now=now)]


def last_activity(case: Case) -> datetime:
    """When someone last moved the case: opened, taken, a step done, reopened."""
    moments = [case.opened_at, *(d.at for d in case.done.values())]
    moments += [t for t in (case.taken_at, case.reopenings[-1].at if case.reopenings else None) if t]
    return max(moments)


def nudge(case: Case, *, idle: timedelta, now: datetime) -> OutboxMessage:
    due = last_activity(case) + idle
    return OutboxMessage(key=f"nudge:{case.workspace}:{case.id}:{due.isoformat()}", workspace=case.workspace,
                         case_id=f"nudge:{case.id}", kind=NUDGE, body={"case": case.id}, owed_at=now, due=due)


def nudged_already(case: Case) -> bool:
    """Nudged once per opening: a reopened case may be nudged again."""
    if case.nudged_at is None:
        return False
    return not case.reopenings or case.nudged_at >= case.reopenings[-1].at


def nudges_for(case: Case, *, idle: timedelta, now: datetime) -> list[OutboxMessage]:
    """Owed in the write that opens (or takes, or reopens) a case: nudge its owner if it then sits idle."""
    if case.is_closed or not case.owner:
        return []  # nobody to nudge yet: taking it owes one
    return [nudge(case, idle=idle, now=now)]


async def owe_nudge(recovery, case: Case) -> None:
    """Owe the nudge of a case already saved (a reopen's own write owes nothing else)."""
    idle = await idle_after(recovery.store, workspace=case.workspace)
    await recovery.outbox.owe(nudges_for(case, idle=idle, now=recovery.clock.now()))


# --- the owner's answers to a reminder -----------------------------------------------------------

def check_answer(case: Case, actor: str, due: datetime | None = None) -> None:
    """Only the owner answers a reminder, once, and only while the case is closed; and only its latest
    reminder (`due`: when the tapped one was due), not one from before the case was reopened and closed again."""
    case.check_actor(actor)
    if not case.is_closed:
        raise StepNotOpen(f"{case.id} is open again; its checklist is in the case thread. Nothing changed.")
    if case.follow_up_outcome == HAPPY:
        raise StepNotOpen(f"You already followed up on {case.id}: they're happy. Nothing changed.")
    if due is not None and case.reopenings and due <= case.reopenings[-1].at:
        raise StepNotOpen(f"That reminder is from before {case.id} was reopened; answer its latest one "
                          "instead. Nothing changed.")


def happy(case: Case, *, actor: str, due: datetime | None = None) -> Case:
    check_answer(case, actor, due)
    return replace(case, follow_up_outcome=HAPPY)


def reopen(case: Case, *, actor: str, at: datetime, due: datetime | None = None) -> Case:
    """Still unhappy: back to the fix step, keeping the history (Case.reopenings holds the undone steps).

    The ledger holds at most one entry per case, so a case already given something keeps that
    compensation (its step stays done) and goes from fix straight to follow-up; a case where nothing
    was needed may give something this time."""
    check_answer(case, actor, due)
    gave = case.compensation is not None and not case.compensation.nothing
    kept = {step: done for step, done in case.done.items()
            if step in KEPT_ON_REOPEN or (step == Step.COMPENSATE and gave)}
    undone = {step: done for step, done in case.done.items() if step not in kept}
    return replace(
        case, done=kept, closed_at=None, follow_up_on=None, follow_up_outcome="", summary=None,
        compensation=case.compensation if gave else None,
        step_posts={step: ref for step, ref in case.step_posts.items() if step not in undone},
        reopenings=(*case.reopenings, Reopening(at=at, done=undone, follow_up_on=case.follow_up_on,
                                                closed_at=case.closed_at)))


def recovering_time(case: Case) -> timedelta | None:
    """The time spent recovering a closed case: open to first close, then each reopening to its next close.
    The days between a close and the follow-up that reopened it are not (Case.time_to_recover counts them)."""
    if not case.is_closed:
        return None
    spent, start = timedelta(0), case.opened_at
    for reopening in case.reopenings:
        spent += (reopening.closed_at or reopening.at) - start
        start = reopening.at
    return spent + (case.closed_at - start)


def snoozed_until(due: datetime, *, now: datetime, tz=timezone.utc) -> datetime:
    """The next day at the same hour of the workspace's clock (a day is a calendar day there: across a
    clock change it is 23 or 25 hours), and never in the past (a reminder read late)."""
    local = due.astimezone(tz)
    days = 1
    while True:
        later = datetime.combine(local.date() + SNOOZE * days, local.time(), tzinfo=tz).astimezone(timezone.utc)
        if later > now:
            return later
        days += 1


def reminder_value(case_id: str, due: datetime) -> str:
    """What a reminder's buttons carry: the case and when that reminder was due (so snooze is exact)."""
    return f"{case_id}|{due.isoformat()}"


def read_reminder_value(value: str) -> tuple[str, datetime | None]:
    case_id, _, due = (value or "").partition("|")
    try:
        return case_id, datetime.fromisoformat(due) if due else None
    except ValueError:
        return case_id, None


class FollowUps:
    """What the owner does with a reminder; every change is checked, then recorded in one write."""

    def __init__(self, recovery):
        self.recovery = recovery

    async def done(self, *, workspace: str, case_id: str, actor: str, due: datetime | None = None) -> Case:
        return await self.recovery.store.change_case(workspace=workspace, case_id=case_id,
                                                     change=lambda case: happy(case, actor=actor, due=due))

    async def reopen(self, *, workspace: str, case_id: str, actor: str, due: datetime | None = None) -> Case:
        now = self.recovery.clock.now()
        case = await self.recovery.store.change_case(workspace=workspace, case_id=case_id,
                                                     change=lambda case: reopen(case, actor=actor, at=now, due=due))
        await owe_nudge(self.recovery, case)
        return case

    async def snooze(self, *, workspace: str, case_id: str, actor: str, due: datetime | None) -> datetime:
        """Owe the same reminder a day later (a new key; the same key again on a double press)."""
        if due is None:
            raise Refusal("That button is out of date; wait for the next reminder.")
        case = await self.recovery.case(workspace=workspace, case_id=case_id)
        check_answer(case, actor, due)
        until = snoozed_until(due, now=self.recovery.clock.now(), tz=self.recovery.tz)
        current = reminder(case, due=due, now=due)
        await self.recovery.outbox.owe([reminder(case, due=until, now=self.recovery.clock.now())], settles=current.key)
        return until


# --- delivery ------------------------------------------------------------------------------------

class FollowUpSender:
    """Delivers reminders and nudges: decides from the case as it is now whether anything is said, and
    asks the case's platform to say it. `which(case)` names the platform ("slack", "teams"); a platform
    whose glue is not loaded yet is loaded by `loaders[name]()` (which registers it)."""

    def __init__(self, recovery, *, which: Callable[[Case], str]):
        self.recovery = recovery
        self.which = which
        self.platforms: dict[str, object] = {}
        self.loaders: dict[str, Callable[[], object]] = {}

    def platform(self, case: Case):
        name = self.which(case)
        if name not in self.platforms and name in self.loaders:
            self.loaders[name]()
        found = self.platforms.get(name)
        if found is None:
            raise Retry(f"{name} is not set up to reach people yet")
        return found

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        case = await self.recovery.store.get_case(workspace=message.workspace, case_id=message.body.get("case", ""))
        if case is None:
            log.warning("%s dropped: no such case", message.key)
            return
        if message.kind == REMINDER:
            await self._remind(message, case)
        else:
            await self._nudge(message, case)

    async def _remind(self, message: OutboxMessage, case: Case) -> None:
        current = (case.is_closed and not case.follow_up_outcome and case.owner and case.follow_up_on is not None
                   and case.follow_up_on.isoformat() == message.body.get("on")
                   and len(case.reopenings) == message.body.get("round"))
        if not current:
            log.info("%s: %s was reopened, answered or rescheduled since; no reminder", message.key, case.id)
            return
        due = datetime.fromisoformat(message.body["due"])
        if due > self.recovery.clock.now():  # only when the outbox's clock and the domain's disagree (tests)
            raise Retry("not due yet by the domain's clock")
        await self.platform(case).remind(case, due=due)

    async def _nudge(self, message: OutboxMessage, case: Case) -> None:
        if case.is_closed or not case.owner or nudged_already(case):
            return
        idle = await idle_after(self.recovery.store, workspace=case.workspace)
        now = self.recovery.clock.now()
        if last_activity(case) + idle > now:  # touched since: owe the next check instead, in the same lane
            later = nudge(case, idle=idle, now=now)
            if later.key == message.key:  # only when the outbox's clock and the domain's disagree (tests)
                raise Retry("not due yet by the domain's clock")
            await self.recovery.outbox.store.add_outbox(messages=[later], settles=message.key)
            return
        await self.platform(case).nudge(case, now=now)

        def mark(stored: Case) -> Case:
            return replace(stored, nudged_at=now)
        await self.recovery.store.change_case(workspace=case.workspace, case_id=case.id, change=mark)

