"""The recovery service: what a person can do to a case, checked, then recorded atomically.

Handlers call these with ids and typed text; every refusal is raised before anything is
recorded, and every change goes through the store as one operation.
"""

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from bot.cases import Case, Compensation, MessageRef, case_id
from bot.catalogue import DEFAULT_ITEMS, CatalogueItem, as_items, catalogue as workspace_catalogue, kind_or_refuse
from bot.checklist import Step
from bot.clock import Clock
from bot.errors import BadCommand, CaseNotFound, InvalidAmount, Refusal, UnknownRole
from bot.ledger import LedgerEntry
from bot.money import parse_amount
from bot import followups
from bot import learning
from bot.outbox import Outbox, close_marker
from bot.periods import Period, parse_period
from bot.roles import ROLE_NAME, Allowance, Budget, Role, default_role
from bot.store import Store

WHAT_HAPPENED_MAX = 2000
CUSTOMER_MAX = 200
NOTE_MAX = 2000
FOLLOW_UP_HORIZON = timedelta(days=365)
# Slack retries a delivery for up to ~5 minutes; remembering keys for a day covers that with room.
REPEAT_WINDOW = timedelta(days=1)
# A source is a link a platform gave us (a Slack permalink): https, and nothing that could break out of
# the markup it is shown in.
SOURCE_LINK = re.compile(r"^https://[^\s<>|\"]{1,2000}$")


def _clean(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Recovery:
    def __init__(self, *, store: Store, clock: Clock, currency: str, tz, catalogue=DEFAULT_ITEMS,
                 outbox: Outbox | None = None):
        self.store = store
        self.clock = clock
        # What is owed to channels after a case changes (bot/outbox.py); the app starts its sender.
        self.outbox = outbox or Outbox(store=store)
        self.currency = currency
        self.tz = tz
        self.catalogue = tuple(as_items(catalogue))  # what a workspace offers until an admin edits it

    # --- cases -------------------------------------------------------------------------------
    async def open_case(self, *, workspace: str, owner: str, owner_name: str, what_happened: str,
                        customer: str = "", source: str = "") -> Case:
        """Open a case owned by the person who found the problem (`source`: a link to where it was reported)."""
        what = _clean(what_happened, WHAT_HAPPENED_MAX)
        if not what:
            raise BadCommand("Say what happened, e.g. `/recover cold soup, table 4, waited 40 min`.")
        now = self.clock.now()
        idle = await followups.idle_after(self.store, workspace=workspace)
        case = await self.store.open_case(workspace=workspace, build=lambda number: Case(
            workspace=workspace, id=case_id(number), owner=owner, owner_name=owner_name or owner,
            what_happened=what, customer=_clean(customer, CUSTOMER_MAX), opened_at=now,
            source=source if SOURCE_LINK.match(source or "") else ""),
            # In the same write: its owner is nudged if it sits idle (bot/followups.py).
            owe=lambda case: followups.nudges_for(case, idle=idle, now=now))
        self.outbox.wake_by(now + idle)
        return case

    async def case(self, *, workspace: str, case_id: str) -> Case:
        found = await self.store.get_case(workspace=workspace, case_id=case_id)
        if found is None:
            raise CaseNotFound(f"There is no case {case_id} here.")
        return found

    async def check_can_act(self, *, workspace: str, case_id: str, actor: str, step: Step) -> Case:
        """Refuse early (before a form opens) when this person may not do this step now."""
        case = await self.case(workspace=workspace, case_id=case_id)
        case.check_actor(actor)
        case.check_step(step)
        return case

    async def take(self, *, workspace: str, case_id: str, actor: str, name: str) -> Case:
        """The first person to tap "Take it" owns the case; anyone after them is told who did."""
        now = self.clock.now()
        idle = await followups.idle_after(self.store, workspace=workspace)
        taken = await self.store.change_case(
            workspace=workspace, case_id=case_id, change=lambda case: case.take(actor=actor, name=name, at=now),
            owe=lambda case: followups.nudges_for(case, idle=idle, now=now))  # if it then sits idle
        self.outbox.wake_by(now + idle)
        return taken

    async def complete_step(self, *, workspace: str, case_id: str, actor: str, step: Step, note: str = "") -> Case:
        """Mark apologise, empathise or fix done, with an optional note."""
        note = (note or "").strip()
        if len(note) > NOTE_MAX:
            raise Refusal(f"Keep the note under {NOTE_MAX} characters.")
        now = self.clock.now()

        def change(case: Case) -> Case:
            case.check_actor(actor)
            return case.complete(step, at=now, note=note)
        return await self.store.change_case(workspace=workspace, case_id=case_id, change=change)

    async def role_for(self, *, workspace: str, person: str) -> Role:
        name = await self.store.role_of(workspace=workspace, person=person)
        role = await self.store.role(workspace=workspace, name=name) if name else None
        if role is None:
            role = await self.store.role(workspace=workspace, name=default_role(workspace).name)
        return role or default_role(workspace)

    def _window(self, role: Role, at: datetime) -> tuple[datetime, datetime]:
        if role.budget is None:
            return at, at  # no period budget: nothing to sum
        return role.budget.period.window(at=at, tz=self.tz)

    async def allowance(self, *, workspace: str, person: str) -> Allowance:
        """What the person may give on a case right now."""
        role = await self.role_for(workspace=workspace, person=person)
        since, until = self._window(role, self.clock.now())
        spent = await self.store.spent(workspace=workspace, employee=person, since=since, until=until)
        return Allowance(role=role, spent=spent, currency=self.currency)

    async def kinds(self, *, workspace: str) -> list[CatalogueItem]:
        """The workspace's compensation catalogue (bot/catalogue.py)."""
        return await workspace_catalogue(self.store, workspace, default=self.catalogue)

    async def kind(self, *, workspace: str, kind: str) -> CatalogueItem:
        """The catalogue item picked, or a Refusal listing what can be picked."""
        return kind_or_refuse(await self.kinds(workspace=workspace), kind)

    async def give(self, *, workspace: str, case_id: str, actor: str, kind: str,
                   amount_text: str) -> tuple[Case, LedgerEntry]:
        """Record a compensation, checked against the per-case limit and the period budget in
        the same operation that appends it to the ledger: concurrent gifts can't overspend."""
        item = await self.kind(workspace=workspace, kind=kind)
        kind = item.name
        amount = item.value(amount_text, currency=self.currency)  # blank: the item's default; %: of the bill
        role = await self.role_for(workspace=workspace, person=actor)
        now = self.clock.now()
        since, until = self._window(role, now)

        def change(case: Case, spent: Decimal) -> tuple[Case, LedgerEntry]:
            case.check_actor(actor)
            case.check_step(Step.COMPENSATE)
            Allowance(role=role, spent=spent, currency=self.currency).check(amount)
            entry = LedgerEntry(workspace=workspace, case_id=case.id, employee=actor, role=role.name,
                                kind=kind, amount=amount, currency=self.currency, at=now)
            return case.compensate(Compensation(kind=kind, amount=amount, currency=self.currency), at=now), entry
        return await self.store.compensate_case(workspace=workspace, case_id=case_id, employee=actor,
                                                since=since, until=until, change=change)

    async def nothing_needed(self, *, workspace: str, case_id: str, actor: str) -> Case:
        now = self.clock.now()

        def change(case: Case) -> Case:
            case.check_actor(actor)
            return case.compensate(Compensation(kind="", amount=Decimal(0), currency=self.currency), at=now)
        return await self.store.change_case(workspace=workspace, case_id=case_id, change=change)

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    def check_follow_up(self, on: date | None) -> None:
        if on is None:
            return
        today = self.today()
        if on < today:
            raise Refusal("Pick today or a later date for the follow-up.")
        if on > today + FOLLOW_UP_HORIZON:
            raise Refusal("Pick a follow-up date within a year.")

    async def follow_up(self, *, workspace: str, case_id: str, actor: str, on: date | None,
                        root_cause: str | None = None, change_note: str = "") -> Case:
        """Set the follow-up (or none); this completes the checklist and closes the case. The platforms
        always pass the root cause picked (one of the workspace's, bot/learning.py) and "what we'll change";
        None is only for code that closes a case with nobody to ask."""
        self.check_follow_up(on)
        causes = await learning.root_causes(self.store, workspace=workspace) if root_cause is not None else ()
        now = self.clock.now()
        hour = await followups.reminder_hour(self.store, workspace=workspace) if on else followups.DEFAULT_HOUR

        def change(case: Case) -> Case:
            case.check_actor(actor)
            if root_cause is None:
                return case.follow_up(on, at=now)
            case.check_step(Step.FOLLOW_UP)  # "already closed" before "pick a cause"
            cause, note = learning.check_closing(causes, root_cause=root_cause, change_note=change_note)
            return replace(case.follow_up(on, at=now), root_cause=cause, change_note=note)
        # The close and a marker for what it owes channels are one write (bot/outbox.py close_marker).
        closed = await self.store.change_case(workspace=workspace, case_id=case_id, change=change,
                                              owe=lambda case: [close_marker(case), *followups.reminders_on_close(
                                                  case, hour=hour, tz=self.tz, now=now)])
        self.outbox.wake()  # so the sender knows when the marker falls due
        return closed

    async def remember_post(self, *, workspace: str, case_id: str, card: MessageRef | None = None,
                            step: Step | None = None, ref: MessageRef | None = None,
                            summary: MessageRef | None = None) -> Case:
        """Store where a message was posted, so its buttons keep working after a restart."""
        return await self.store.change_case(
            workspace=workspace, case_id=case_id,
            change=lambda case: case.posted(card=card, step=step, ref=ref, summary=summary))

    async def open_cases(self, *, workspace: str, owner: str) -> list[Case]:
        return await self.store.open_cases(workspace=workspace, owner=owner)

    async def first_time(self, key: str) -> bool:
        """False when this delivery was seen before (a retry or a double submit)."""
        return await self.store.first_time(key=key, at=self.clock.now(), keep=REPEAT_WINDOW)

    # --- admin -------------------------------------------------------------------------------
    async def roles(self, *, workspace: str) -> list[Role]:
        """Every role, with the default role shown even before an admin changes it."""
        stored = await self.store.roles(workspace=workspace)
        default = default_role(workspace)
        if all(role.name != default.name for role in stored):
            stored = sorted([*stored, default], key=lambda r: r.name)
        return stored

    async def set_limit(self, *, workspace: str, role: str, limit: str, budget: str | None) -> Role:
        """Create a role or change its limit; budget "100/week", "none" to remove, None to keep."""
        name = role.strip().lower()
        if not ROLE_NAME.match(name):
            raise BadCommand(f"{role!r} can't be a role name: use lower-case letters, digits, - or _, "
                             "starting with a letter (e.g. server, shift-lead).")
        per_case = self._admin_amount(limit, what="per-case limit")
        existing = await self.store.role(workspace=workspace, name=name)
        if existing is None and name == default_role(workspace).name:
            existing = default_role(workspace)
        if budget is None:
            new_budget = existing.budget if existing else None
        elif budget.strip().lower() == "none":
            new_budget = None
        else:
            new_budget = self._parse_budget(budget)
        updated = Role(workspace=workspace, name=name, limit=per_case, budget=new_budget)
        await self.store.put_role(role=updated)
        return updated

    def _admin_amount(self, text: str, *, what: str) -> Decimal:
        try:
            return parse_amount(text, currency=self.currency)
        except InvalidAmount as why:
            raise BadCommand(f"The {what} {why.sentence[0].lower()}{why.sentence[1:]}") from None

    def _parse_budget(self, text: str) -> Budget:
        amount, _, period_text = text.partition("/")
        period = parse_period(period_text) if period_text else None
        if period is None:
            raise BadCommand(f"{text!r} isn't a budget. Write it as amount/period, e.g. 100/week "
                             f"(periods: {', '.join(p.value for p in Period)}), or none.")
        return Budget(amount=self._admin_amount(amount, what="budget"), period=period)

    async def assign_role(self, *, workspace: str, person: str, role: str) -> Role:
        name = role.strip().lower()
        found = next((r for r in await self.roles(workspace=workspace) if r.name == name), None)
        if found is None:
            names = ", ".join(r.name for r in await self.roles(workspace=workspace))
            raise UnknownRole(f"There is no role {role!r}. Roles: {names}. "
                              f"Create it first with `/recover admin limit {name} <per-case> [<budget>/<period>]`.")
        await self.store.assign(workspace=workspace, person=person, role=found.name)
        return found

    async def recovery_channel(self, *, workspace: str) -> str | None:
        return await self.store.recovery_channel(workspace=workspace)

    async def set_recovery_channel(self, *, workspace: str, channel: str) -> None:
        await self.store.set_recovery_channel(workspace=workspace, channel=channel)
        from bot.digest import seed  # the weekly digest starts once there is a channel to send it to
        await seed(self, workspace=workspace)
