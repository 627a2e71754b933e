"""What a person's Home shows, computed once from the store, for every platform to render.

Everyone sees their own open cases, what they may give right now and their recent recoveries.
Managers (bot/managers.py) also see the team: cases still open and for how long, what each role
gave this week against its budget, how many recoveries, how fast, and why things went wrong.
Admins also get their settings. Pure values: Slack's Home tab (cards/slack_home.py) and Teams'
`recover home` card (cards/teams_home.py) only render them.
"""

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median

from bot import catalogue
from bot.cases import Case
from bot.followups import recovering_time
from bot.managers import Managers
from bot.money import format_money
from bot.periods import Period
from bot.recovery import Recovery
from bot.roles import DEFAULT_ROLE_NAME, Allowance, Role

RECENT = timedelta(days=30)  # "my recent recoveries" and the root causes look this far back
ROOT_CAUSES_SHOWN = 5


@dataclass(frozen=True)
class RoleSpend:
    """What people in one role gave in the role's own budget period (this week without a budget), and the
    most one of them gave: the budget is each person's, so that is what stands against it."""

    role: Role
    spent: Decimal
    people: int  # how many people in the role gave something
    period: Period = Period.WEEK  # the window `spent` covers: the role's budget period
    most_by_one: Decimal = Decimal(0)  # the most one person in the role gave in that window


@dataclass(frozen=True)
class Team:
    open_cases: tuple[tuple[Case, timedelta], ...]  # oldest first, with how long each has been open
    spend: tuple[RoleSpend, ...]
    recoveries_this_week: int
    median_time_to_recover: timedelta | None
    root_causes: tuple[tuple[str, int], ...]  # the most frequent first, over RECENT
    week_starts: datetime


@dataclass(frozen=True)
class WorkspaceSettings:
    roles: tuple[Role, ...]
    managing: frozenset[str]
    channel: str | None  # as the store keeps it (Slack: a channel id)
    catalogue: tuple[str, ...]  # what can be given, as shown to people


@dataclass(frozen=True)
class Home:
    person: str
    currency: str
    now: datetime
    open_cases: tuple[Case, ...]
    allowance: Allowance
    recent: tuple[Case, ...]  # my cases closed in the last RECENT, newest first
    team: Team | None = None  # managers and admins only
    settings: WorkspaceSettings | None = None  # admins only

    @property
    def is_manager(self) -> bool:
        return self.team is not None

    @property
    def is_admin(self) -> bool:
        return self.settings is not None


async def build_home(recovery: Recovery, *, workspace: str, person: str, is_admin: bool) -> Home:
    """The Home for one person; `is_admin` is the platform glue's to say (bot/admins, Slack's admins)."""
    now = recovery.clock.now()
    week_starts, week_ends = Period.WEEK.window(at=now, tz=recovery.tz)
    since = min(week_starts, now - RECENT)
    until = max(week_ends, now) + timedelta(seconds=1)
    cases = await recovery.store.closed_cases(workspace=workspace, since=since, until=until)  # whenever opened
    recent = sorted((c for c in cases if c.owner == person and c.is_closed and c.closed_at >= now - RECENT),
                    key=lambda c: c.closed_at, reverse=True)
    home = Home(person=person, currency=recovery.currency, now=now,
                open_cases=tuple(await recovery.open_cases(workspace=workspace, owner=person)),
                allowance=await recovery.allowance(workspace=workspace, person=person), recent=tuple(recent))
    managers = Managers(recovery=recovery)
    if not await managers.is_manager(workspace=workspace, person=person, is_admin=is_admin,
                                    role=home.allowance.role):
        return home
    roles = await recovery.roles(workspace=workspace)
    team = await _team(recovery, workspace=workspace, now=now, week=(week_starts, week_ends), cases=cases, roles=roles)
    settings = None
    if is_admin:
        managing = frozenset(await managers.managing_roles(workspace=workspace))
        settings = WorkspaceSettings(roles=tuple(roles), managing=managing,
                                     channel=await recovery.recovery_channel(workspace=workspace),
                                     catalogue=await catalogue_lines(recovery, workspace))
    return replace(home, team=team, settings=settings)


async def _team(recovery: Recovery, *, workspace: str, now: datetime, week: tuple[datetime, datetime],
                cases: list[Case], roles: list[Role]) -> Team:
    starts, ends = week
    still_open = await recovery.store.team_open_cases(workspace=workspace)
    recovered = [c for c in cases if c.is_closed and starts <= c.closed_at < ends]
    spend = await _spend(recovery, workspace=workspace, now=now, roles=roles)
    times = [recovering_time(c) for c in recovered]  # a reopened case: not the days waiting for its follow-up
    causes = Counter(" ".join(c.root_cause.split()).lower() for c in cases
                     if c.root_cause.strip() and c.is_closed and c.closed_at >= now - RECENT)
    return Team(open_cases=tuple((c, now - c.opened_at) for c in still_open), spend=spend,
                recoveries_this_week=len(recovered),
                median_time_to_recover=timedelta(seconds=median(t.total_seconds() for t in times)) if times else None,
                root_causes=tuple(causes.most_common(ROOT_CAUSES_SHOWN)), week_starts=starts)


async def _spend(recovery: Recovery, *, workspace: str, now: datetime, roles: list[Role]) -> tuple[RoleSpend, ...]:
    """Each role's spend in its own budget period (a monthly budget against this month, not this week)."""
    windows = {period: period.window(at=now, tz=recovery.tz) for period in Period}
    since = min(start for start, _ in windows.values())
    until = max(end for _, end in windows.values())
    entries = await recovery.store.ledger(workspace=workspace, since=since, until=until)
    known = {role.name: role for role in roles}
    for entry in entries:  # a role given under, since removed or renamed
        known.setdefault(entry.role, Role(workspace=workspace, name=entry.role, limit=Decimal(0), budget=None))
    spend = []
    for name, role in sorted(known.items()):
        period = role.budget.period if role.budget is not None else Period.WEEK
        starts, ends = windows[period]
        by_person: dict[str, Decimal] = {}
        for entry in entries:
            if entry.role == name and starts <= entry.at < ends:
                by_person[entry.employee] = by_person.get(entry.employee, Decimal(0)) + entry.amount
        spend.append(RoleSpend(role=role, spent=sum(by_person.values(), Decimal(0)), people=len(by_person),
                               period=period, most_by_one=max(by_person.values(), default=Decimal(0))))
    return tuple(spend)


def spend_line(line: RoleSpend, currency: str) -> str:
    """"$60 given this month by 2 people · budget $300 a person per month, the most one gave $45"."""
    people = f" by {line.people} {'person' if line.people == 1 else 'people'}" if line.people else ""
    text = f"{format_money(line.spent, currency)} given {line.period.this}{people}"
    budget = line.role.budget
    if budget is None:
        return text + " · no period budget"
    text += f" · budget {format_money(budget.amount, currency)} a person per {budget.period.value}"
    if line.people > 1:
        text += f", the most one gave {format_money(line.most_by_one, currency)}"
    return text


async def catalogue_lines(recovery: Recovery, workspace: str) -> tuple[str, ...]:
    """The workspace's catalogue as people see it ("🍰 Free dessert · $8")."""
    items = await catalogue.catalogue(recovery.store, workspace, default=recovery.catalogue)
    return tuple(item.label(recovery.currency) for item in items)


async def managing_sentence(recovery: Recovery, *, workspace: str, role: str, managing: bool) -> str:
    """`admin manager <role> on|off`: mark the role (it must exist) and say who manages now."""
    roles = await Managers(recovery=recovery).set_managing(workspace=workspace, role=role, managing=managing)
    name = role.strip().lower()
    now = ", ".join(sorted(roles)) or "none (admins always are)"
    if managing and name == DEFAULT_ROLE_NAME:  # worth saying: it is most of the team
        return (f"Saved. People in {name} are managers now, and everyone without a role is {name}: they all see "
                f"the team's recoveries and can approve top-ups. Managing roles: {now}.")
    if managing:
        return f"Saved. People in {name} are managers now: they see the team's recoveries. Managing roles: {now}."
    return f"Saved. {name} is no longer a managing role. Managing roles: {now}."
