"""The store interface every backend implements (TinyDB now; PostgreSQL next).

Each method is one atomic operation. Changes to a case take a pure function from the old
case to the new one; the backend runs it inside its transaction, so a refusal raised by
the function leaves nothing behind, and two concurrent changes never interleave.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from bot.cases import Case
from bot.ledger import LedgerEntry
from bot.outbox import OutboxMessage
from bot.roles import Role

CaseChange = Callable[[Case], Case]


def customer_key(customer: str) -> str:
    """How customer references are matched: "Table 4 " and "table 4" are the same guest."""
    return " ".join((customer or "").split()).lower()

# Given the case and what the employee has already given in the period: the new case and the entry to record.
Compensating = Callable[[Case, Decimal], tuple[Case, LedgerEntry | None]]


class Store(ABC):
    async def open(self) -> None:
        """Connect or load before the first call (the app's start-up awaits it); nothing to do by default."""

    # --- cases -------------------------------------------------------------------------------
    @abstractmethod
    async def open_case(self, *, workspace: str, build: Callable[[int], Case],
                        owe: Callable[[Case], list[OutboxMessage]] | None = None) -> Case:
        """Allocate the workspace's next case number, build the case with it, and save it; in the same
        write, record the outbox messages `owe` returns for it (as add_outbox does)."""

    @abstractmethod
    async def get_case(self, *, workspace: str, case_id: str) -> Case | None:
        """The case, or None when the workspace has no case with that id."""

    @abstractmethod
    async def change_case(self, *, workspace: str, case_id: str, change: CaseChange,
                          owe: Callable[[Case], list[OutboxMessage]] | None = None) -> Case:
        """Apply `change` to the stored case atomically and return the saved result; in the same write,
        record the outbox messages `owe` returns for the new case (as add_outbox does)."""

    @abstractmethod
    async def compensate_case(self, *, workspace: str, case_id: str, employee: str,
                              since: datetime, until: datetime,
                              change: Compensating) -> tuple[Case, LedgerEntry | None]:
        """Check the budget and record the compensation as one operation: sum the employee's
        ledger in [since, until), apply `change`, append its entry and save the case."""

    @abstractmethod
    async def open_cases(self, *, workspace: str, owner: str) -> list[Case]:
        """The owner's cases that are not closed, oldest first."""

    @abstractmethod
    async def team_open_cases(self, *, workspace: str) -> list[Case]:
        """Every case of the workspace that is not closed (unowned ones too), oldest first."""

    @abstractmethod
    async def cases(self, *, workspace: str, since: datetime, until: datetime) -> list[Case]:
        """The workspace's cases opened in [since, until), open or closed, oldest first."""

    @abstractmethod
    async def closed_cases(self, *, workspace: str, since: datetime, until: datetime) -> list[Case]:
        """The workspace's cases closed in [since, until) (and not reopened since), by when they closed."""

    @abstractmethod
    async def customer_cases(self, *, workspace: str, customer: str, since: datetime) -> list[Case]:
        """The workspace's cases opened at or after `since` whose customer reference is `customer`
        (compared trimmed and case-insensitively; an empty reference matches nothing), oldest first."""

    @abstractmethod
    async def workspaces(self) -> list[str]:
        """Every workspace that has opened a case (what a daily or weekly job goes through)."""

    # --- ledger ------------------------------------------------------------------------------
    @abstractmethod
    async def spent(self, *, workspace: str, employee: str, since: datetime, until: datetime) -> Decimal:
        """What the employee has given on their own authority in [since, until): a top-up a manager approved
        (an entry with approved_by) was the manager's call, a one-off for that case, and uses none of it."""

    @abstractmethod
    async def ledger(self, *, workspace: str, since: datetime | None = None,
                     until: datetime | None = None) -> list[LedgerEntry]:
        """The workspace's entries (those given in [since, until) when these are set), in the order recorded."""

    # --- roles and people --------------------------------------------------------------------
    @abstractmethod
    async def role(self, *, workspace: str, name: str) -> Role | None:
        """The stored role, or None."""

    @abstractmethod
    async def roles(self, *, workspace: str) -> list[Role]:
        """Every stored role of the workspace, by name."""

    @abstractmethod
    async def put_role(self, *, role: Role) -> None:
        """Create or replace a role."""

    @abstractmethod
    async def role_of(self, *, workspace: str, person: str) -> str | None:
        """The name of the role assigned to the person, or None."""

    @abstractmethod
    async def assign(self, *, workspace: str, person: str, role: str) -> None:
        """Assign the person to the role (replacing any earlier assignment)."""

    # --- workspace ---------------------------------------------------------------------------
    @abstractmethod
    async def recovery_channel(self, *, workspace: str) -> str | None:
        """Where summaries go, or None until an admin sets it."""

    @abstractmethod
    async def set_recovery_channel(self, *, workspace: str, channel: str) -> None:
        """Set where summaries go."""

    # --- platform addresses and grants -------------------------------------------------------
    @abstractmethod
    async def put_reference(self, *, workspace: str, key: str, value: dict) -> None:
        """Keep a JSON-able platform address under a key (e.g. a Teams ConversationReference for
        "recovery_channel" or "person:<id>"), so proactive messages survive restarts."""

    @abstractmethod
    async def reference(self, *, workspace: str, key: str) -> dict | None:
        """The value kept under key, or None."""

    @abstractmethod
    async def grant_admin(self, *, workspace: str, person: str) -> None:
        """Make a person an Amends admin of the workspace (besides the platform's own admins)."""

    @abstractmethod
    async def granted_admins(self, *, workspace: str) -> set[str]:
        """The people granted admin in this workspace."""

    # --- idempotency -------------------------------------------------------------------------
    @abstractmethod
    async def first_time(self, *, key: str, at: datetime, keep: timedelta) -> bool:
        """True the first time `key` is seen within `keep`; False for a repeat (a retry, a double submit)."""

    # --- the outbox (bot/outbox.py): messages owed to a channel ---------------------------------
    @abstractmethod
    async def add_outbox(self, *, messages: list[OutboxMessage], settles: str | None = None) -> None:
        """Record the messages as owed, in this order, as one write; a key already owed is left as it is.
        In the same write the message keyed `settles` (if owed) is no longer owed."""

    @abstractmethod
    async def due_outbox(self, *, now: datetime, limit: int) -> list[OutboxMessage]:
        """Owed messages due by `now`, oldest owed first, only the oldest owed of each case (so a case's
        messages go out in order)."""

    @abstractmethod
    async def next_outbox_due(self, *, after: datetime) -> datetime | None:
        """The earliest due time after `after` of a message that is the oldest owed of its case, or None."""

    @abstractmethod
    async def owed_outbox(self) -> list[OutboxMessage]:
        """Every owed message, oldest owed first."""

    @abstractmethod
    async def try_outbox(self, *, key: str, at: datetime, lease: timedelta) -> OutboxMessage | None:
        """Claim the message for one attempt, before the request leaves: only if it is owed and due by `at`;
        records attempts + 1, tried_at = at and due = at + lease (no other sender takes it meanwhile; after a
        crash it is due again). The message as recorded, or None when it is not owed or not due."""

    @abstractmethod
    async def retry_outbox(self, *, key: str, due: datetime, error: str, in_doubt: bool) -> None:
        """An attempt failed: due again at `due`; `in_doubt` keeps tried_at (it may have arrived), else clears it."""

    @abstractmethod
    async def outbox_sent(self, *, key: str) -> None:
        """The platform confirmed the message (and what it returned is stored): it is no longer owed."""

    @abstractmethod
    async def close(self) -> None:
        """Release files and threads."""
