"""Top-ups: asking a manager to give more than your allowance on one case, and their decision.

Inside the allowance nobody waits for anyone (Recovery.give). Over it, the person asks for an amount
with a reason; a manager approves or denies it once (the first decision wins; a second, or a click by
someone who is not a manager, changes nothing). An approval is a one-off raise for that case only,
Ramp's "temporary increase": it records the compensation and its ledger entry, with the approver, in
one store operation, and never changes the role's limits. A deny leaves the compensate step open, so
the person can give within their allowance or choose "Nothing needed".
"""

import re
from dataclasses import replace
from decimal import Decimal

from bot.cases import Case, Compensation, MessageRef, TopUp
from bot.checklist import Step
from bot.errors import Refusal
from bot.ledger import LedgerEntry
from bot.managers import Managers
from bot.money import format_money
from bot.recovery import Recovery

REASON_MAX = 500
PENDING, APPROVED, DENIED = "pending", "approved", "denied"


def settled_without_waiting(case: Case) -> bool:
    """The request still waits, but its person gave within their allowance (or chose "Nothing needed")
    meanwhile: there is nothing left for a manager to decide, so its Approve / Deny go."""
    return (case.top_up is not None and case.top_up.status == PENDING
            and (Step.COMPENSATE in case.done or case.is_closed))


class NoNeedToAsk(Refusal):
    """The amount is within what the person may give themselves: they just give it."""


class NotManager(Refusal):
    """Someone who is not a manager tried to decide a top-up."""


class AlreadyDecided(Refusal):
    """The request was decided before (or there is none to decide)."""


class TopUps:
    def __init__(self, *, recovery: Recovery, managers: Managers | None = None):
        self.recovery = recovery
        self.managers = managers or Managers(recovery=recovery)

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.recovery.currency)

    async def request(self, *, workspace: str, case_id: str, actor: str, kind: str, amount_text: str,
                      reason: str) -> Case:
        """Ask for more than the allowance on the actor's own case, at the compensate step."""
        # Whose case and which step first: what someone types on another person's card is not theirs to fix.
        case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                 step=Step.COMPENSATE)
        item = await self.recovery.kind(workspace=workspace, kind=kind)
        amount = item.value(amount_text, currency=self.recovery.currency)
        allowance = await self.recovery.allowance(workspace=workspace, person=actor)
        if amount <= allowance.most:
            raise NoNeedToAsk(f"You can give {self.money(amount)} yourself, no need to ask: tap Give. "
                              f"({allowance.describe()}.)")
        why = re.sub(r"\s+", " ", reason or "").strip()
        if not why:
            raise Refusal(f"Say why {self.money(amount)} is needed, so a manager can decide.")
        if len(why) > REASON_MAX:
            raise Refusal(f"Keep the reason under {REASON_MAX} characters.")
        self._check_can_ask(case)
        now = self.recovery.clock.now()

        def change(current: Case) -> Case:
            current.check_actor(actor)
            current.check_step(Step.COMPENSATE)
            self._check_can_ask(current)
            return replace(current, top_up=TopUp(amount=amount, reason=why, requested_at=now, kind=item.name))
        return await self.recovery.store.change_case(workspace=workspace, case_id=case_id, change=change)

    async def asking(self, *, workspace: str, kind: str, amount_text: str) -> str:
        """"Ask a manager for $40": what a form over the allowance offers instead (the value as it would be asked)."""
        item = await self.recovery.kind(workspace=workspace, kind=kind)
        return f"Ask a manager for {self.money(item.value(amount_text, currency=self.recovery.currency))}"

    def why_not_ask(self, case: Case) -> str | None:
        """Why this case can't ask (again) — a request already waits, or was denied — or None when it can."""
        try:
            self._check_can_ask(case)
        except Refusal as refusal:
            return refusal.sentence
        return None

    def _check_can_ask(self, case: Case) -> None:
        top_up = case.top_up
        if top_up is None:
            return
        if top_up.status == PENDING and top_up.post is None and Step.COMPENSATE not in case.done:
            return  # never posted where a manager could see it (a restart, a refused post): asking again is fine
        if top_up.status == PENDING:
            raise Refusal(f"You already asked for {self.money(top_up.amount)} on {case.id}; a manager will answer "
                          "in this thread. Meanwhile you can give within your allowance.")
        if top_up.status == DENIED:
            raise Refusal(f"{top_up.decided_by_name or 'A manager'} said no to {self.money(top_up.amount)} on "
                          f"{case.id}. Give within your allowance, or choose “Nothing needed”.")

    async def posted(self, *, workspace: str, case_id: str, post: MessageRef) -> Case:
        """Remember where the request was posted, so it is updated in place when decided."""
        def change(case: Case) -> Case:
            if case.top_up is None:
                return case
            return replace(case, top_up=replace(case.top_up, post=post))
        return await self.recovery.store.change_case(workspace=workspace, case_id=case_id, change=change)

    async def check_manager(self, *, workspace: str, person: str, is_admin: bool) -> None:
        if not await self.managers.is_manager(workspace=workspace, person=person, is_admin=is_admin):
            raise NotManager("Only managers can approve or deny a top-up: admins, and people in a role an admin "
                             "made managing. Nothing changed.")

    def _check_pending(self, case: Case, manager: str) -> TopUp:
        top_up = case.top_up
        if top_up is None:
            raise AlreadyDecided(f"There is no top-up request on {case.id}; nothing changed.")
        if top_up.status != PENDING:
            who = "You" if top_up.decided_by == manager else (top_up.decided_by_name or "A manager")
            raise AlreadyDecided(f"{who} already {top_up.status} {self.money(top_up.amount)} on {case.id}; "
                                 "nothing changed.")
        if case.owner == manager:
            raise NotManager("You can't decide your own request; another manager will. Nothing changed.")
        if Step.COMPENSATE in case.done or case.is_closed:
            raise AlreadyDecided(f"{case.owner_name} already settled the compensate step of {case.id} "
                                 "without waiting; nothing changed.")
        return top_up

    async def approve(self, *, workspace: str, case_id: str, manager: str, manager_name: str,
                      is_admin: bool) -> tuple[Case, LedgerEntry]:
        """Record the compensation asked for, with the approver, as the case's one ledger entry."""
        await self.check_manager(workspace=workspace, person=manager, is_admin=is_admin)
        case = await self.recovery.case(workspace=workspace, case_id=case_id)
        self._check_pending(case, manager)
        kind = case.top_up.kind or "other"
        role = await self.recovery.role_for(workspace=workspace, person=case.owner)
        now = self.recovery.clock.now()
        currency = self.recovery.currency

        def change(current: Case, _spent: Decimal) -> tuple[Case, LedgerEntry]:
            top_up = self._check_pending(current, manager)
            decided = replace(current, top_up=replace(top_up, status=APPROVED, decided_by=manager,
                                                      decided_by_name=manager_name or manager, decided_at=now))
            entry = LedgerEntry(workspace=workspace, case_id=current.id, employee=current.owner, role=role.name,
                                kind=kind, amount=top_up.amount, currency=currency, at=now, approved_by=manager)
            return decided.compensate(Compensation(kind=kind, amount=top_up.amount, currency=currency), at=now), entry
        return await self.recovery.store.compensate_case(workspace=workspace, case_id=case_id, employee=case.owner,
                                                         since=now, until=now, change=change)

    async def deny(self, *, workspace: str, case_id: str, manager: str, manager_name: str, is_admin: bool) -> Case:
        """Say no: the compensate step stays open for the person to give within their allowance."""
        await self.check_manager(workspace=workspace, person=manager, is_admin=is_admin)
        now = self.recovery.clock.now()

        def change(current: Case) -> Case:
            top_up = self._check_pending(current, manager)
            return replace(current, top_up=replace(top_up, status=DENIED, decided_by=manager,
                                                   decided_by_name=manager_name or manager, decided_at=now))
        return await self.recovery.store.change_case(workspace=workspace, case_id=case_id, change=change)

