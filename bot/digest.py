"""The weekly digest: what a week of recoveries looked like, for the managers in the recovery channel.

Pure reading of the store (cases, ledger, roles); the platform glue renders and sends it. The digest
is scheduled through the outbox (bot/outbox.py): one owed message per slot, keyed by workspace and slot,
on its own lane, so a digest due while the bot was down goes out once on start and never twice; the
sender sends it and, in one write, settles it and owes the next slot.

Counting, kept honest:
- recoveries: cases *closed* in the week (opened earlier or not); opened: cases opened in the week;
- spend by role: what the ledger recorded in the week under each role, shown beside the role's
  per-case limit and per-person budget (a budget is per person and period, not a team total);
- median time to recover, top root causes, repeat customers (two or more cases opened in the week),
  and recognition: who recovered most, who fastest (median, two recoveries or more), and the
  managers' Recognise taps each person received.
"""

import logging
import statistics
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from bot.cases import Case
from bot.errors import BadCommand
from bot.followups import recovering_time  # a reopened case: not the days waiting for its follow-up
from bot.outbox import OutboxMessage, Retry
from bot.roles import Role
from bot.store.base import customer_key

log = logging.getLogger(__name__)

KIND = "digest"  # the outbox kind, and its lane (case_id): never a case's own lane
SCHEDULE = "config:digest"  # store.reference key of the admin-set day and hour
WEEK = timedelta(days=7)
# A digest covers the time since the previous one (so moving the schedule loses no day and counts none twice),
# but never more than this: after a long outage or with no previous one, it is the week before its slot.
LONGEST = timedelta(days=15)
# Moving the schedule never brings a digest within a day of the previous one (no second digest the same day).
GAP = timedelta(days=1)
TOP = 5
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- what a week looked like ---------------------------------------------------------------------

@dataclass(frozen=True)
class RoleSpend:
    role: str
    spent: Decimal
    gifts: int
    limit: Decimal | None  # the role's per-case limit (None: the role no longer exists)
    budget: Decimal | None  # per person and period
    period: str = ""  # "week", "day", "month"


@dataclass(frozen=True)
class Person:
    person: str
    name: str
    recoveries: int
    median: timedelta | None
    recognitions: int = 0


@dataclass(frozen=True)
class Digest:
    workspace: str
    since: datetime
    until: datetime
    currency: str
    opened: int
    closed: int
    spent: Decimal
    spend: tuple[RoleSpend, ...]
    median: timedelta | None
    root_causes: tuple[tuple[str, int], ...]
    unrecorded_causes: int
    repeat_customers: tuple[tuple[str, int], ...]
    most: tuple[Person, ...]
    fastest: tuple[Person, ...]
    recognised: tuple[Person, ...]
    per_day: tuple[tuple[date, int], ...]

    @property
    def quiet(self) -> bool:
        return not (self.opened or self.closed or self.spent)


def _median(durations: list[timedelta]) -> timedelta | None:
    return timedelta(seconds=statistics.median(d.total_seconds() for d in durations)) if durations else None


def summarise(*, workspace: str, since: datetime, until: datetime, cases: list[Case], entries, roles: list[Role],
              currency: str, tz) -> Digest:
    """The digest from what the store holds: `cases` opened or closed in [since, until), ledger `entries`
    given in [since, until), and the workspace's roles."""
    opened = [c for c in cases if since <= c.opened_at < until]
    closed = [c for c in cases if c.closed_at is not None and since <= c.closed_at < until]

    by_role: dict[str, list] = defaultdict(list)
    for entry in entries:
        by_role[entry.role].append(entry)
    known = {role.name: role for role in roles}
    spend = []
    for name in sorted(set(by_role) | set(known)):
        role, given = known.get(name), by_role.get(name, [])
        spend.append(RoleSpend(role=name, spent=sum((e.amount for e in given), Decimal(0)), gifts=len(given),
                               limit=role.limit if role else None,
                               budget=role.budget.amount if role and role.budget else None,
                               period=role.budget.period.value if role and role.budget else ""))

    causes: Counter[str] = Counter()
    said: dict[str, str] = {}  # "Kitchen " and "kitchen" are one cause, shown as first written
    for case in closed:
        cause = " ".join(case.root_cause.split())
        if cause:
            causes[said.setdefault(cause.lower(), cause)] += 1
    customers: dict[str, list[Case]] = defaultdict(list)
    for case in opened:
        if customer_key(case.customer):
            customers[customer_key(case.customer)].append(case)
    repeat = sorted(((found[0].customer.strip(), len(found)) for found in customers.values() if len(found) >= 2),
                    key=lambda pair: (-pair[1], pair[0].lower()))

    people: dict[str, list[Case]] = defaultdict(list)
    for case in closed:
        if case.owner:
            people[case.owner].append(case)
    tallies = [Person(person=owner, name=mine[-1].owner_name or owner, recoveries=len(mine),
                      median=_median([recovering_time(c) for c in mine]),
                      recognitions=sum(len(c.recognised_by) for c in mine))
               for owner, mine in people.items()]
    most = sorted(tallies, key=lambda p: (-p.recoveries, p.median, p.name.lower()))[:3]
    fastest = sorted((p for p in tallies if p.recoveries >= 2), key=lambda p: (p.median, -p.recoveries))[:3]
    recognised = sorted((p for p in tallies if p.recognitions), key=lambda p: (-p.recognitions, p.name.lower()))[:3]

    # Every local day the window touches (a slot at 9:00 makes the first and last partial; a week across a
    # clock change is 167 or 169 hours): each recovery in `closed` lands in one bar.
    first, last = since.astimezone(tz).date(), (until - timedelta(microseconds=1)).astimezone(tz).date()
    days = [first + timedelta(days=n) for n in range(max(1, (last - first).days + 1))]
    closed_on = Counter(c.closed_at.astimezone(tz).date() for c in closed)
    return Digest(workspace=workspace, since=since, until=until, currency=currency, opened=len(opened),
                  closed=len(closed), spent=sum((e.amount for e in entries), Decimal(0)), spend=tuple(spend),
                  median=_median([recovering_time(c) for c in closed]),
                  root_causes=tuple(sorted(causes.items(), key=lambda kv: (-kv[1], kv[0].lower()))[:TOP]),
                  unrecorded_causes=sum(1 for c in closed if not c.root_cause.strip()),
                  repeat_customers=tuple(repeat[:TOP]), most=tuple(most), fastest=tuple(fastest),
                  recognised=tuple(recognised), per_day=tuple((d, closed_on.get(d, 0)) for d in days))


async def build(recovery, *, workspace: str, since: datetime, until: datetime) -> Digest:
    """The digest of [since, until) for a workspace, read from the store."""
    store = recovery.store
    # Opened in the window, and recovered in it whenever they opened (one list: a case can be both).
    cases = {c.id: c for c in await store.cases(workspace=workspace, since=since, until=until)}
    cases.update({c.id: c for c in await store.closed_cases(workspace=workspace, since=since, until=until)})
    cases = list(cases.values())
    entries = await store.ledger(workspace=workspace, since=since, until=until)
    roles = await recovery.roles(workspace=workspace)
    return summarise(workspace=workspace, since=since, until=until, cases=cases, entries=entries, roles=roles,
                     currency=recovery.currency, tz=recovery.tz)


async def last_seven_days(recovery, *, workspace: str) -> Digest:
    """`admin digest now`: the seven days up to this moment (and what happened in it)."""
    until = recovery.clock.now() + timedelta(seconds=1)
    return await build(recovery, workspace=workspace, since=until - WEEK, until=until)


# --- when it is sent --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    day: int = 0  # Monday
    hour: int = 9
    on: bool = True

    def describe(self) -> str:
        if not self.on:
            return "off"
        return f"{DAYS[self.day].title()}s at {self.hour:02d}:00"


DEFAULT = Schedule()


def parse_schedule(words: list[str]) -> Schedule:
    """`off`, or `<monday..sunday> <hour 0-23>`; anything else is a BadCommand saying what to type."""
    if len(words) == 1 and words[0].lower() == "off":
        return Schedule(on=False)
    if len(words) != 2:
        raise BadCommand("Say a day and an hour, e.g. `/recover admin digest monday 9`, or `/recover admin digest "
                         "off`, or `/recover admin digest now`.")
    day_word, hour_word = words[0].lower(), words[1]
    matches = [n for n, name in enumerate(DAYS) if len(day_word) >= 3 and name.startswith(day_word)]
    if len(matches) != 1:
        raise BadCommand(f"{words[0]!r} isn't a day of the week. Use monday, tuesday, … sunday.")
    if not hour_word.isdecimal() or not 0 <= int(hour_word) <= 23:  # isdigit() passes "²", which int() refuses
        raise BadCommand(f"{hour_word!r} isn't an hour. Use a whole hour from 0 to 23, e.g. 9 or 17.")
    return Schedule(day=matches[0], hour=int(hour_word))


async def schedule_of(store, *, workspace: str) -> Schedule:
    stored = await store.reference(workspace=workspace, key=SCHEDULE)
    if not stored:
        return DEFAULT
    return Schedule(day=int(stored.get("day", 0)), hour=int(stored.get("hour", 9)), on=bool(stored.get("on", True)))


def next_slot(schedule: Schedule, *, after: datetime, tz) -> datetime:
    """The first scheduled moment strictly after `after` (the day and hour in the workspace's time zone), in UTC."""
    local = after.astimezone(tz)
    day = local.date() + timedelta(days=(schedule.day - local.weekday()) % 7)
    while True:
        slot = datetime.combine(day, time(schedule.hour), tzinfo=tz).astimezone(timezone.utc)
        if slot > after:
            return slot
        day += WEEK


def week_before(slot: datetime, tz) -> datetime:
    """The same local day and hour a week earlier (wall-clock: a week that crosses a clock change is 167 or 169 h)."""
    local = slot.astimezone(tz)
    return datetime.combine(local.date() - WEEK, local.time(), tzinfo=tz).astimezone(timezone.utc)


def following_slot(schedule: Schedule, *, previous: datetime | None, now: datetime, tz) -> datetime:
    """The next slot after now, and at least GAP after the previous digest's slot (when there was one)."""
    return next_slot(schedule, after=max(now, previous + GAP) if previous is not None else now, tz=tz)


def window(message: OutboxMessage, tz) -> tuple[datetime, datetime]:
    """What a slot's digest covers: from the previous digest's slot (or a week) up to its own slot."""
    slot = datetime.fromisoformat(message.body["slot"])
    since = message.body.get("since")
    since = datetime.fromisoformat(since) if since else None
    if since is None or not timedelta(0) < slot - since <= LONGEST:
        since = week_before(slot, tz)
    return since, slot


def slot_key(workspace: str, slot: datetime) -> str:
    return f"{KIND}:{workspace}:{slot.astimezone(timezone.utc).isoformat()}"


def slot_message(workspace: str, slot: datetime, *, now: datetime, since: datetime | None = None) -> OutboxMessage:
    body = {"slot": slot.astimezone(timezone.utc).isoformat()}
    if since is not None:  # the previous digest's slot: this one picks up where it stopped
        body["since"] = since.astimezone(timezone.utc).isoformat()
    return OutboxMessage(key=slot_key(workspace, slot), workspace=workspace, case_id=KIND, kind=KIND,
                         body=body, owed_at=now, due=slot)


async def owed_slots(store, *, workspace: str) -> list[OutboxMessage]:
    return [m for m in await store.owed_outbox() if m.kind == KIND and m.workspace == workspace]


async def seed(recovery, *, workspace: str, owed: list[OutboxMessage] | None = None) -> OutboxMessage | None:
    """Owe the workspace's next digest, unless one is owed already, it is off, or there is no channel to send it to.
    `owed`: the outbox as read once for many workspaces (start-up), instead of reading it here."""
    store = recovery.store
    schedule = await schedule_of(store, workspace=workspace)
    if not schedule.on or not await store.recovery_channel(workspace=workspace):
        return None
    if owed is None:
        owed = await store.owed_outbox()
    if any(m.kind == KIND and m.workspace == workspace for m in owed):
        return None
    now = recovery.clock.now()
    message = slot_message(workspace, next_slot(schedule, after=now, tz=recovery.tz), now=now)
    await recovery.outbox.owe([message])
    return message


async def seed_all(recovery) -> None:
    """At start-up: every workspace with a recovery channel has its next digest owed (one missed while the
    bot was down is still owed, and goes out now). The outbox is read once, not once per workspace."""
    owed = await recovery.store.owed_outbox()
    for workspace in await recovery.store.workspaces():
        await seed(recovery, workspace=workspace, owed=owed)


async def set_schedule(recovery, *, workspace: str, schedule: Schedule) -> datetime | None:
    """Keep the admin's day and hour and move the owed digest to the new slot in one write. The next slot
    (None when off, or without a recovery channel yet).

    A digest whose slot has already come (it is being sent, or waits for a retry) is never dropped: it goes
    out, and its sender owes the next one on the new schedule. A digest moved keeps its start (the previous
    digest's slot), so no day goes unreported or is reported twice, and it never comes within a day of the
    previous one."""
    store = recovery.store
    await store.put_reference(workspace=workspace, key=SCHEDULE,
                              value={"day": schedule.day, "hour": schedule.hour, "on": schedule.on})
    owed = await owed_slots(store, workspace=workspace)
    now = recovery.clock.now()
    channel = await store.recovery_channel(workspace=workspace)
    if schedule.on and channel:
        current = [m for m in owed if datetime.fromisoformat(m.body["slot"]) <= now]
        if current:  # it goes out as it is; what follows it is on the new schedule (DigestSender.deliver)
            return following_slot(schedule, previous=datetime.fromisoformat(current[0].body["slot"]), now=now,
                                  tz=recovery.tz)
    nxt, new = None, []
    if schedule.on and channel:
        since = next((m.body["since"] for m in owed if m.body.get("since")), None)
        since = datetime.fromisoformat(since) if since else None
        nxt = following_slot(schedule, previous=since, now=now, tz=recovery.tz)
        new = [slot_message(workspace, nxt, now=now, since=since)]
    stale = [m.key for m in owed if not new or m.key != new[0].key]  # the same slot again: it stays owed
    await recovery.outbox.owe(new, settles=stale[0] if stale else None)
    for key in stale[1:]:
        await recovery.outbox.owe([], settles=key)
    return nxt


# --- sending it ----------------------------------------------------------------------------------------

# A platform's way to send a digest: None when the workspace is not its own; otherwise it sent it
# (raise bot.outbox.Retry to be called again). `key` names this digest (for a check when in doubt).
Platform = Callable[..., Awaitable[bool | None]]


class DigestSender:
    """The outbox's sender of kind "digest": sends the slot's digest through the platform that claims the
    workspace, then settles the slot and owes the next one in the same write (so the chain holds exactly
    one owed slot per workspace, whatever restarts happen in between)."""

    def __init__(self, *, recovery, platforms: list[Platform] | None = None):
        self.recovery = recovery
        self.platforms: list[Platform] = list(platforms or [])

    def add(self, platform: Platform) -> None:
        self.platforms.append(platform)

    async def send(self, *, workspace: str, since: datetime, until: datetime, key: str, in_doubt: bool = False) -> bool:
        """Send the digest of [since, until) now; False when no platform claims the workspace."""
        digest = await build(self.recovery, workspace=workspace, since=since, until=until)
        for platform in self.platforms:
            sent = await platform(digest, key=key, in_doubt=in_doubt)
            if sent is not None:
                return sent
        return False

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        store, tz = self.recovery.store, self.recovery.tz
        since, slot = window(message, tz)
        schedule = await schedule_of(store, workspace=message.workspace)
        channel = await store.recovery_channel(workspace=message.workspace)
        if schedule.on and channel:
            if not await self.send(workspace=message.workspace, since=since, until=slot,
                                   key=message.key, in_doubt=in_doubt):
                # That platform is not set up in this process (yet): the digest stays owed, as the outbox does.
                raise Retry(f"nothing sends digests for {message.workspace}'s recovery channel yet")
        # Read again: an admin may have moved the schedule, or turned it off, while this one was being sent.
        schedule = await schedule_of(store, workspace=message.workspace)
        channel = await store.recovery_channel(workspace=message.workspace)
        now = self.recovery.clock.now()
        following = []
        if schedule.on and channel:  # the next slot after now: a bot down for weeks sends one, not a backlog
            following = [slot_message(message.workspace, following_slot(schedule, previous=slot, now=now, tz=tz),
                                      now=now, since=slot)]
        await store.add_outbox(messages=following, settles=message.key)
