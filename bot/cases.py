"""A case: one recovery, owned by one employee, walked through the checklist.

Cases are immutable values; every change returns a new Case, so a change can be checked
whole before the store records it.
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from bot.checklist import CHECKLIST, Step
from bot.errors import NotYourCase, StepNotOpen


@dataclass(frozen=True)
class MessageRef:
    """Where a platform message lives (Slack channel + ts; Teams conversation + activity id)."""

    channel: str
    id: str


@dataclass(frozen=True)
class StepDone:
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class Compensation:
    """What was given. An empty kind with amount 0 means "nothing needed"."""

    kind: str
    amount: Decimal
    currency: str

    @property
    def nothing(self) -> bool:
        return self.amount == 0


NOTHING = "nothing needed"


@dataclass(frozen=True)
class TopUp:
    """A request to give more than the person's allowance on this case, and a manager's decision on it.

    An approval is a one-off raise for this case only; the role's limits never change."""

    amount: Decimal
    reason: str
    requested_at: datetime
    kind: str = ""  # what would be given (a catalogue item's name)
    status: str = "pending"  # pending, approved or denied
    decided_by: str = ""
    decided_by_name: str = ""
    decided_at: datetime | None = None
    post: MessageRef | None = None  # the request as posted where managers see it


@dataclass(frozen=True)
class Reopening:
    """A reopened case keeps what was done before it was reopened (learn, don't punish: nothing is erased)."""

    at: datetime
    done: dict[Step, StepDone]
    follow_up_on: date | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class Case:
    workspace: str
    id: str
    owner: str
    owner_name: str
    what_happened: str
    customer: str
    opened_at: datetime
    done: dict[Step, StepDone] = field(default_factory=dict)
    compensation: Compensation | None = None
    follow_up_on: date | None = None
    closed_at: datetime | None = None
    card: MessageRef | None = None
    step_posts: dict[Step, MessageRef] = field(default_factory=dict)
    summary: MessageRef | None = None
    source: str = ""  # a link to where the problem was first reported (a forwarded complaint, a review)
    taken_at: datetime | None = None  # when an unowned case was taken
    nudged_at: datetime | None = None  # when its owner was nudged about it sitting idle
    root_cause: str = ""  # asked for on closing (bot/learning)
    change_note: str = ""  # "what we'll change", optional on closing
    recognised_by: tuple[str, ...] = ()  # managers who tapped Recognise on the summary
    top_up: TopUp | None = None
    follow_up_outcome: str = ""  # "happy" once the follow-up is done; reopenings are below
    reopenings: tuple[Reopening, ...] = ()
    erased_at: datetime | None = None  # when retention erased the customer reference and the notes

    @property
    def current_step(self) -> Step | None:
        """The first step not done yet; None once the checklist is complete."""
        return next((step for step in CHECKLIST if step not in self.done), None)

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    @property
    def time_to_recover(self):
        return (self.closed_at - self.opened_at) if self.closed_at else None

    def note(self, step: Step) -> str:
        return self.done[step].note if step in self.done else ""

    def check_actor(self, actor: str) -> None:
        """Only the owner acts on a case: recovery is owned, not shared."""
        if not self.owner:
            raise NotYourCase(f"{self.id} is waiting for someone to take it: tap “Take it” first.")
        if actor != self.owner:
            raise NotYourCase(
                f"This is {self.owner_name}'s case ({self.id}); only they can work on it. "
                "To start your own, type /recover and what happened."
            )

    def check_step(self, step: Step) -> None:
        """Refuse a step that is not the one in front of the person now."""
        if self.is_closed:
            raise StepNotOpen(f"{self.id} is already closed; nothing changed.")
        current = self.current_step
        if step in self.done:
            raise StepNotOpen(f"That step of {self.id} is already done; nothing changed.")
        if step != current:
            raise StepNotOpen(f"Finish “{current.value.replace('_', ' ')}” on {self.id} first.")

    def take(self, *, actor: str, name: str, at: datetime) -> "Case":
        """Own a case nobody owns yet (one opened from a low survey score): the first to take it."""
        if self.is_closed:
            raise StepNotOpen(f"{self.id} is already closed; nothing changed.")
        if self.owner == actor:
            raise StepNotOpen(f"{self.id} is already yours; nothing changed.")
        if self.owner:
            raise NotYourCase(f"{self.owner_name} already took {self.id}; nothing changed.")
        return replace(self, owner=actor, owner_name=name or actor, taken_at=at)

    def complete(self, step: Step, *, at: datetime, note: str = "") -> "Case":
        """Mark the current step done (apologise, empathise, fix)."""
        if step in (Step.COMPENSATE, Step.FOLLOW_UP):
            raise ValueError(f"{step} is completed by compensate() or follow_up()")
        self.check_step(step)
        return replace(self, done={**self.done, step: StepDone(at=at, note=note.strip())})

    def compensate(self, compensation: Compensation, *, at: datetime) -> "Case":
        """Record what was given (or that nothing was needed) and move on to follow-up."""
        self.check_step(Step.COMPENSATE)
        return replace(
            self,
            compensation=compensation,
            done={**self.done, Step.COMPENSATE: StepDone(at=at)},
        )

    def follow_up(self, on: date | None, *, at: datetime) -> "Case":
        """Set the follow-up date (or none); the checklist is then complete and the case closes."""
        self.check_step(Step.FOLLOW_UP)
        return replace(
            self,
            follow_up_on=on,
            done={**self.done, Step.FOLLOW_UP: StepDone(at=at)},
            closed_at=at,
        )

    def posted(self, *, card: MessageRef | None = None, step: Step | None = None,
               ref: MessageRef | None = None, summary: MessageRef | None = None) -> "Case":
        """Remember where the card, a step's message or the summary was posted."""
        changes: dict = {}
        if card is not None:
            changes["card"] = card
        if step is not None and ref is not None:
            changes["step_posts"] = {**self.step_posts, step: ref}
        if summary is not None:
            changes["summary"] = summary
        return replace(self, **changes)


def case_id(number: int) -> str:
    """The short human id people say out loud: R-1001."""
    return f"R-{number}"
