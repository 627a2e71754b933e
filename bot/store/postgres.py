"""The PostgreSQL store: one database that every Amends process shares, so there is one ledger.

Why asyncpg: the bot is asyncio end to end, and asyncpg is an asyncio driver with its own
connection pool, in one wheel that needs no libpq on the machine. Its binary protocol hands
back `numeric` as Decimal and `timestamptz` as aware datetimes, which is what the domain
speaks. (psycopg 3 would need psycopg-pool and psycopg[binary] beside it for the same.)

Why budgets hold across processes: "check the budget and record the compensation" runs as one
transaction that first takes a transaction-scoped advisory lock on (workspace, employee). Every
compensation for that person, from any process, queues on that lock; the one holding it sums the
ledger in a statement that starts after the lock is granted, so under READ COMMITTED it sees every
earlier compensation committed, appends its entry and commits, which releases the lock. The lock
is on the person, not on rows: their period's ledger rows may not exist yet (a row lock cannot
lock rows that are not there), and the period is the role's, which an admin can change. SERIALIZABLE
with retry would also be correct, but it aborts and re-runs under exactly the contention we expect
(a busy person clicking twice) and takes predicate locks on the whole index range. The lock is
released at commit or rollback, or by the server when a process dies, so a crash never wedges anyone.

Why a case change is safe: it reads the case with SELECT … FOR UPDATE, applies the pure function
the domain passed in, and writes it back in the same transaction; a refusal raised by the function
rolls everything back. Case numbers come from a counter row updated in the transaction that saves
the case, so they are unique across processes and a failed open uses none. Dedupe keys are a
primary key (INSERT … ON CONFLICT), so a Slack retry landing on another process is still seen.

Why the outage handling looks the way it does:
- A failure before COMMIT is sent leaves nothing (the server rolls back a transaction whose
  connection died), so a lost connection is retried once on a fresh one, and otherwise the person
  reads "Amends can't reach its database; nothing was recorded — try again in a minute."
- A failure *during* COMMIT leaves the outcome unknown. Before saying anything, the store takes the
  same locks again on a new connection (they are free only once the lost transaction has committed
  or rolled back) and looks for what it wrote: found, the call succeeds; not found, it is done again.
  Only if the database is still gone is the person told it can't yet say whether it was recorded.
- A database that is down at start-up does not stop the bot: migrations run on the first request
  that reaches it. Going down and coming back are each logged once, clearly, with the address
  (never the password).
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from bot.cases import Case
from bot.checklist import CHECKLIST
from bot.errors import CaseNotFound, StoreUnavailable
from bot.ledger import LedgerEntry
from bot.outbox import OutboxMessage
from bot.periods import Period
from bot.roles import Budget, Role
from bot.store.base import CaseChange, Compensating, Store, customer_key
from bot.store.codec import case_from_doc, case_to_doc, entry_from_doc, entry_to_doc, role_from_doc, role_to_doc
from bot.store.migrations import check_schema_name, migrate
from bot.store.tiny import FIRST_CASE_NUMBER

log = logging.getLogger(__name__)

T = TypeVar("T")

# Connections one process keeps at most (AMENDS_DB_POOL_SIZE); processes × this must stay under the
# server's max_connections (100 by default).
DEFAULT_POOL_SIZE = 10
UNREACHABLE = "Amends can't reach its database; nothing was recorded — try again in a minute."
UNCONFIRMED = ("Amends lost its database while saving and can't tell yet whether that was saved; "
               "look at the case in a minute before trying again.")

# Slack wants an answer within 3 s; past a few seconds the person has already seen Slack's own
# error, so waiting longer on a connection or a statement only piles up work.
CONNECT_TIMEOUT = 5.0
ACQUIRE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0
CLOSE_TIMEOUT = 10.0
BULK_TIMEOUT = 600.0  # copying a whole store is not a request
# A process stopped mid-transaction (SIGSTOP, a debugger) would hold a person's budget lock for good.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000
SWEEP_SEEN_EVERY = timedelta(minutes=10)
SWEEP_SEEN_BATCH = 10_000
STILL_DOWN_SAY_EVERY = 30.0  # seconds between log lines while the database stays away
ATTEMPTS = 2  # the first try and one more on a fresh connection

_NOT_RECORDED = object()  # what a confirm step returns when the lost transaction left nothing

# The tables of a store snapshot, in TinyStore's names and document shapes: what bot.store.copy moves.
SNAPSHOT_TABLES = ("counters", "cases", "ledger", "roles", "people", "workspaces", "references", "admins", "seen")
_SQL_TABLES = ("counters", "cases", "ledger", "roles", "people", "workspaces", "platform_references", "admins", "seen",
               "outbox")


class TargetNotEmpty(Exception):
    """A copy would overwrite a store that already holds data."""


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def describe_url(url: str) -> str:
    """host:port/database, for log lines: never the user's password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def _unreachable(error: BaseException, *, closed: bool) -> bool:
    """True when the failure is the database or the way to it, not the request: worth a sentence and a retry.
    `closed`: the connection it happened on was found closed."""
    if isinstance(error, (OSError, TimeoutError, asyncpg.PostgresConnectionError,
                          asyncpg.exceptions.OperatorInterventionError,  # shutdown, starting up, cancelled
                          asyncpg.exceptions.InsufficientResourcesError)):  # too many connections, disk full
        return True
    # Asked to use a connection the server has already closed, asyncpg says InterfaceError, or, when
    # the server's goodbye arrived while the connection sat idle in the pool, InternalClientError.
    return isinstance(error, (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)) and closed


def _is_closed(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # the pool has already taken back a connection that died
        return True


def _retryable(error: BaseException, *, closed: bool) -> bool:
    """Worth one more try now: a timeout has already used the time the person has."""
    if isinstance(error, asyncpg.exceptions.TransactionRollbackError):  # deadlock, serialization: rolled back
        return True
    return _unreachable(error, closed=closed) and not isinstance(error, TimeoutError)


class _Reachability:
    """Says once, clearly, when the database goes away and when it is back; in between, a line every 30 s."""

    def __init__(self, *, where: str):
        self.where = where
        self.down_since: float | None = None
        self.last_said = 0.0
        self.refused = 0

    def down(self, *, what: str, error: BaseException) -> None:
        now = time.monotonic()
        self.refused += 1
        if self.down_since is None:
            self.down_since, self.last_said, self.refused = now, now, 1
            log.error("Amends can't reach its database at %s while %s (%s: %s). Until it is back, every request "
                      "that needs it is refused with a sentence asking the person to try again in a minute.",
                      self.where, what, type(error).__name__, error)
        elif now - self.last_said >= STILL_DOWN_SAY_EVERY:
            self.last_said = now
            log.error("the database at %s is still unreachable after %.0f s (requests refused: %d; latest: %s: %s)",
                      self.where, now - self.down_since, self.refused, type(error).__name__, error)

    def up(self) -> None:
        if self.down_since is not None:
            log.warning("the database at %s is reachable again after %.0f s (requests refused meanwhile: %d)",
                        self.where, time.monotonic() - self.down_since, self.refused)
            self.down_since, self.refused = None, 0


def _case(doc: str) -> Case:
    """A case from its stored document. jsonb keeps object keys in an order of its own, so the
    checklist maps are put back in checklist order, the order the domain built them in."""
    case = case_from_doc(json.loads(doc))
    done = {step: case.done[step] for step in CHECKLIST if step in case.done}
    posts = {step: case.step_posts[step] for step in CHECKLIST if step in case.step_posts}
    return replace(case, done=done, step_posts=posts)


def _case_row(case: Case) -> tuple:
    return (case.workspace, case.id, case.owner, case.opened_at, case.closed_at,
            json.dumps(case_to_doc(case), ensure_ascii=False), customer_key(case.customer))


def _entry(row: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(workspace=row["workspace"], case_id=row["case_id"], employee=row["employee"], role=row["role"],
                       kind=row["kind"], amount=row["amount"], currency=row["currency"], at=row["at"],
                       approved_by=row["approved_by"])


async def _owe(conn: asyncpg.Connection, messages: list[OutboxMessage]) -> None:
    for m in messages:  # in order: the identity column numbers them as owed
        await conn.execute(
            "INSERT INTO outbox (key, workspace, case_id, kind, body, owed_at, due) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (key) DO NOTHING",
            m.key, m.workspace, m.case_id, m.kind, json.dumps(m.body, ensure_ascii=False), m.owed_at, m.due)


def _message(row: asyncpg.Record) -> OutboxMessage:
    return OutboxMessage(key=row["key"], workspace=row["workspace"], case_id=row["case_id"], kind=row["kind"],
                         body=json.loads(row["body"]), owed_at=row["owed_at"], due=row["due"], seq=row["seq"],
                         attempts=row["attempts"], tried_at=row["tried_at"], error=row["error"])


def _role(row: asyncpg.Record) -> Role:
    budget = None
    if row["budget_amount"] is not None:
        budget = Budget(amount=row["budget_amount"], period=Period(row["budget_period"]))
    return Role(workspace=row["workspace"], name=row["name"], limit=row["per_case"], budget=budget)


def _role_row(role: Role) -> tuple:
    return (role.workspace, role.name, role.limit,
            None if role.budget is None else role.budget.amount,
            None if role.budget is None else role.budget.period.value)


_CASE_COLUMNS = "workspace, id, owner, opened_at, closed_at, doc, customer_key"
_INSERT_CASE = f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
_UPDATE_CASE = ("UPDATE cases SET owner = $3, opened_at = $4, closed_at = $5, doc = $6::jsonb, customer_key = $7 "
                "WHERE workspace = $1 AND id = $2")
_INSERT_ENTRY = ("INSERT INTO ledger (workspace, case_id, employee, role, kind, amount, currency, at, approved_by) "
                 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
_INSERT_ROLE = "INSERT INTO roles (workspace, name, per_case, budget_amount, budget_period) VALUES ($1, $2, $3, $4, $5)"


class PostgresStore(Store):
    """The store in the PostgreSQL database at `url`, through a pool of at most `pool_size` connections.

    `schema` puts the tables in that schema (created if missing), for tests and side-by-side
    installs; without it they go where the connection's search_path says (normally `public`).
    """

    def __init__(self, *, url: str, pool_size: int = DEFAULT_POOL_SIZE, schema: str | None = None):
        if pool_size < 1:
            raise ValueError(f"the database pool needs at least one connection, not {pool_size}")
        self._url = url
        self.pool_size = pool_size
        self.schema = check_schema_name(schema) if schema else None
        self.where = describe_url(url) + (f" (schema {self.schema})" if self.schema else "")
        self._pool: asyncpg.Pool | None = None
        self._migrated = False
        self._preparing = asyncio.Lock()
        self._failed_preparations = 0
        self._reachability = _Reachability(where=self.where)
        self._last_sweep: datetime | None = None

    # --- life cycle --------------------------------------------------------------------------
    async def open(self) -> None:
        """Make the pool and migrate. A database that is down now is logged and tried again on each
        request; one that refuses us (wrong password, no such database) stops start-up."""
        created = self._pool is None
        if created:
            settings = {"application_name": "amends",
                        "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_MS)}
            if self.schema:
                settings["search_path"] = self.schema
            # min_size=0: making the pool connects nothing, so a database that is down doesn't stop start-up.
            self._pool = await asyncpg.create_pool(
                self._url, min_size=0, max_size=self.pool_size, timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT, server_settings=settings)
        try:
            await self._ready()
        except StoreUnavailable:
            pass  # already logged; requests get the sentence until the database is back
        else:
            if created:
                log.info("using the PostgreSQL store at %s with up to %d connections", self.where, self.pool_size)

    async def _ready(self) -> None:
        """Migrate once per process before the first real work; until that succeeds each call tries again."""
        if self._migrated:
            return
        if self._pool is None:
            raise RuntimeError("PostgresStore.open() must be awaited before the store is used")
        failures_before = self._failed_preparations
        async with self._preparing:
            if self._migrated:
                return
            if self._failed_preparations != failures_before:
                # An attempt made while this request waited has just failed: answer now rather than
                # queue another (against a host that drops packets, each attempt takes CONNECT_TIMEOUT).
                raise StoreUnavailable(UNREACHABLE)
            closed = False
            try:
                async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                    try:
                        await migrate(conn, schema=self.schema)
                    except Exception:
                        closed = _is_closed(conn)
                        raise
            except Exception as error:
                if not _unreachable(error, closed=closed):
                    log.error("Amends can't use its database at %s: %s: %s", self.where, type(error).__name__, error)
                    raise
                self._failed_preparations += 1
                self._reachability.down(what="preparing its tables", error=error)
                raise StoreUnavailable(UNREACHABLE) from error
            self._migrated = True
            self._reachability.up()

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("database connections still busy after %.0f s at shutdown; closing them", CLOSE_TIMEOUT)
            pool.terminate()

    # --- one unit of work --------------------------------------------------------------------
    async def _run(self, what: str, work: Callable[[asyncpg.Connection], Awaitable[T]], *, write: bool,
                   confirm: Callable[[asyncpg.Connection], Awaitable[Any]] | None = None) -> T:
        """Run `work` on a pooled connection: a write as one transaction. A lost connection before
        COMMIT is retried once (`work` may run twice: the functions the domain passes are pure).
        A loss during COMMIT runs `confirm` to find out whether it was recorded (None: the write
        is idempotent, so it is simply done again)."""
        await self._ready()
        unsure = False
        for attempt in range(1, ATTEMPTS + 1):
            committing = closed = False
            try:
                async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                    try:
                        if not write:
                            result = await work(conn)
                        else:
                            async with conn.transaction():
                                result = await work(conn)
                                committing = True  # leaving the block sends COMMIT
                    except Exception:
                        closed = _is_closed(conn)
                        raise
                self._reachability.up()
                return result
            except Exception as error:
                if not (_unreachable(error, closed=closed) or _retryable(error, closed=closed)):
                    raise
                if committing:
                    found = await self._confirm(what, confirm, error)
                    if found is not _NOT_RECORDED:
                        return found
                    unsure = confirm is None  # an idempotent write may or may not have landed
                if attempt == ATTEMPTS or not _retryable(error, closed=closed):
                    self._reachability.down(what=what, error=error)
                    raise StoreUnavailable(UNCONFIRMED if unsure else UNREACHABLE) from error
                if not committing:  # after a lost COMMIT, _confirm has said what happens next
                    log.warning("%s: lost the database connection (%s: %s); trying once more on a fresh one",
                                what, type(error).__name__, error)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _confirm(self, what: str, confirm, error: BaseException) -> Any:
        """After a connection lost during COMMIT: what the lost transaction recorded, or _NOT_RECORDED.

        `confirm` first takes the locks the lost transaction took, so it waits until that one
        has really committed or rolled back; then it looks. Whatever it wrote is rolled back."""
        log.error("%s: the database connection was lost while committing (%s: %s); checking whether it was recorded",
                  what, type(error).__name__, error)
        if confirm is None:
            return _NOT_RECORDED
        closed = False
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                try:
                    transaction = conn.transaction()
                    await transaction.start()
                    try:
                        found = await confirm(conn)
                    finally:
                        await transaction.rollback()
                except Exception:
                    closed = _is_closed(conn)
                    raise
        except Exception as again:
            if not _unreachable(again, closed=closed):
                raise
            self._reachability.down(what=what, error=again)
            log.error("%s: can't tell whether it was recorded until the database is back", what)
            raise StoreUnavailable(UNCONFIRMED) from error
        self._reachability.up()
        log.warning("%s: %s", what, "it was not recorded; doing it again" if found is _NOT_RECORDED
                    else "it was recorded; carrying on")
        return found

    # --- cases -------------------------------------------------------------------------------
    async def open_case(self, *, workspace: str, build: Callable[[int], Case],
                        owe: Callable[[Case], list[OutboxMessage]] | None = None) -> Case:
        built: list[Case] = []

        async def work(conn: asyncpg.Connection) -> Case:
            # The counter row stays locked until commit: numbers are handed out one transaction at a time.
            number = await conn.fetchval("""
                INSERT INTO counters AS c (workspace, next_number) VALUES ($1, $2 + 1)
                ON CONFLICT (workspace) DO UPDATE SET next_number = c.next_number + 1
                RETURNING c.next_number - 1""", workspace, FIRST_CASE_NUMBER)
            case = build(number)
            built[:] = [case]
            await conn.execute(_INSERT_CASE, *_case_row(case))
            if owe is not None:
                await _owe(conn, owe(case))
            return case

        async def confirm(conn: asyncpg.Connection) -> Any:
            mine = await conn.fetchval("INSERT INTO counters (workspace, next_number) VALUES ($1, $2) "
                                       "ON CONFLICT DO NOTHING RETURNING true", workspace, FIRST_CASE_NUMBER)
            if mine:  # the workspace's first case, and the lost transaction left no counter
                return _NOT_RECORDED
            await conn.execute("SELECT 1 FROM counters WHERE workspace = $1 FOR UPDATE", workspace)
            stored = await self._fetch_case(conn, workspace, built[0].id)
            return stored if stored == built[0] else _NOT_RECORDED

        return await self._run(f"opening a case in {workspace}", work, write=True, confirm=confirm)

    @staticmethod
    async def _fetch_case(conn: asyncpg.Connection, workspace: str, case_id: str, *, lock: bool = False) -> Case | None:
        doc = await conn.fetchval("SELECT doc FROM cases WHERE workspace = $1 AND id = $2"
                                  + (" FOR UPDATE" if lock else ""), workspace, case_id)
        return None if doc is None else _case(doc)

    async def _lock_case(self, conn: asyncpg.Connection, workspace: str, case_id: str) -> Case:
        case = await self._fetch_case(conn, workspace, case_id, lock=True)
        if case is None:
            raise CaseNotFound(f"There is no case {case_id} here.")
        return case

    async def get_case(self, *, workspace: str, case_id: str) -> Case | None:
        return await self._run(f"reading {case_id}", lambda conn: self._fetch_case(conn, workspace, case_id),
                               write=False)

    async def change_case(self, *, workspace: str, case_id: str, change: CaseChange,
                          owe: Callable[[Case], list[OutboxMessage]] | None = None) -> Case:
        changed: list[Case] = []

        async def work(conn: asyncpg.Connection) -> Case:
            case = change(await self._lock_case(conn, workspace, case_id))
            changed[:] = [case]
            await conn.execute(_UPDATE_CASE, *_case_row(case))
            if owe is not None:
                await _owe(conn, owe(case))
            return case

        async def confirm(conn: asyncpg.Connection) -> Any:
            stored = await self._lock_case(conn, workspace, case_id)
            return stored if stored == changed[0] else _NOT_RECORDED

        return await self._run(f"changing {case_id}", work, write=True, confirm=confirm)

    async def _lock_budget(self, conn: asyncpg.Connection, workspace: str, employee: str) -> None:
        """Queue behind every other compensation by this person, in any process, until commit."""
        key = json.dumps(["amends:budget", self.schema or "", workspace, employee])
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    async def compensate_case(self, *, workspace: str, case_id: str, employee: str, since: datetime,
                              until: datetime, change: Compensating) -> tuple[Case, LedgerEntry | None]:
        computed: list[tuple[Case, LedgerEntry | None]] = []

        async def work(conn: asyncpg.Connection) -> tuple[Case, LedgerEntry | None]:
            await self._lock_budget(conn, workspace, employee)
            case = await self._lock_case(conn, workspace, case_id)
            # A statement after the lock was granted: it sees every compensation committed before us.
            spent = await self._sum(conn, workspace, employee, since, until)
            case, entry = change(case, spent)
            computed[:] = [(case, entry)]
            if entry is not None:
                await conn.execute(_INSERT_ENTRY, entry.workspace, entry.case_id, entry.employee, entry.role,
                                   entry.kind, entry.amount, entry.currency, entry.at, entry.approved_by)
            await conn.execute(_UPDATE_CASE, *_case_row(case))
            return case, entry

        async def confirm(conn: asyncpg.Connection) -> Any:
            case, entry = computed[0]
            await self._lock_budget(conn, workspace, employee)
            stored = await self._lock_case(conn, workspace, case_id)
            if entry is None:
                return (stored, None) if stored == case else _NOT_RECORDED
            recorded = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ledger WHERE workspace = $1 AND case_id = $2 AND employee = $3 "
                "AND amount = $4 AND at = $5)", entry.workspace, entry.case_id, entry.employee, entry.amount, entry.at)
            return (stored, entry) if recorded else _NOT_RECORDED

        return await self._run(f"recording a compensation on {case_id}", work, write=True, confirm=confirm)

    async def open_cases(self, *, workspace: str, owner: str) -> list[Case]:
        async def work(conn: asyncpg.Connection) -> list[Case]:
            rows = await conn.fetch("SELECT doc FROM cases WHERE workspace = $1 AND owner = $2 AND closed_at IS NULL "
                                    "ORDER BY opened_at, seq", workspace, owner)
            return [_case(row["doc"]) for row in rows]
        return await self._run("listing open cases", work, write=False)

    async def team_open_cases(self, *, workspace: str) -> list[Case]:
        async def work(conn: asyncpg.Connection) -> list[Case]:
            rows = await conn.fetch("SELECT doc FROM cases WHERE workspace = $1 AND closed_at IS NULL "
                                    "ORDER BY opened_at, seq", workspace)
            return [_case(row["doc"]) for row in rows]
        return await self._run("listing the team's open cases", work, write=False)

    async def cases(self, *, workspace: str, since: datetime, until: datetime) -> list[Case]:
        async def work(conn: asyncpg.Connection) -> list[Case]:
            rows = await conn.fetch("SELECT doc FROM cases WHERE workspace = $1 AND opened_at >= $2 AND opened_at < $3 "
                                    "ORDER BY opened_at, seq", workspace, since, until)
            return [_case(row["doc"]) for row in rows]
        return await self._run("reading cases", work, write=False)

    async def closed_cases(self, *, workspace: str, since: datetime, until: datetime) -> list[Case]:
        async def work(conn: asyncpg.Connection) -> list[Case]:
            rows = await conn.fetch("SELECT doc FROM cases WHERE workspace = $1 AND closed_at >= $2 AND closed_at < $3 "
                                    "ORDER BY closed_at, seq", workspace, since, until)
            return [_case(row["doc"]) for row in rows]
        return await self._run("reading closed cases", work, write=False)

    async def customer_cases(self, *, workspace: str, customer: str, since: datetime) -> list[Case]:
        wanted = customer_key(customer)
        if not wanted:
            return []

        async def work(conn: asyncpg.Connection) -> list[Case]:
            rows = await conn.fetch("SELECT doc FROM cases WHERE workspace = $1 AND customer_key = $2 "
                                    "AND opened_at >= $3 ORDER BY opened_at, seq", workspace, wanted, since)
            return [_case(row["doc"]) for row in rows]
        return await self._run("looking up a customer's cases", work, write=False)

    async def workspaces(self) -> list[str]:
        async def work(conn: asyncpg.Connection) -> list[str]:
            return [row["workspace"] for row in await conn.fetch('SELECT workspace FROM counters ORDER BY workspace COLLATE "C"')]
        return await self._run("listing workspaces", work, write=False)

    # --- ledger ------------------------------------------------------------------------------
    @staticmethod
    async def _sum(conn: asyncpg.Connection, workspace: str, employee: str, since: datetime, until: datetime) -> Decimal:
        return await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger WHERE workspace = $1 "
                                   "AND employee = $2 AND at >= $3 AND at < $4 AND approved_by = ''", workspace, employee, since, until)

    async def spent(self, *, workspace: str, employee: str, since: datetime, until: datetime) -> Decimal:
        return await self._run("summing the ledger", lambda conn: self._sum(conn, workspace, employee, since, until),
                               write=False)

    async def ledger(self, *, workspace: str, since: datetime | None = None,
                     until: datetime | None = None) -> list[LedgerEntry]:
        async def work(conn: asyncpg.Connection) -> list[LedgerEntry]:
            return [_entry(row) for row in await conn.fetch(
                "SELECT * FROM ledger WHERE workspace = $1 AND ($2::timestamptz IS NULL OR at >= $2) "
                "AND ($3::timestamptz IS NULL OR at < $3) ORDER BY seq", workspace, since, until)]
        return await self._run("reading the ledger", work, write=False)

    # --- roles and people --------------------------------------------------------------------
    async def role(self, *, workspace: str, name: str) -> Role | None:
        async def work(conn: asyncpg.Connection) -> Role | None:
            row = await conn.fetchrow("SELECT * FROM roles WHERE workspace = $1 AND name = $2", workspace, name)
            return None if row is None else _role(row)
        return await self._run("reading a role", work, write=False)

    async def roles(self, *, workspace: str) -> list[Role]:
        async def work(conn: asyncpg.Connection) -> list[Role]:
            # COLLATE "C": the same order as Python's sorted(), whatever the database's locale says.
            rows = await conn.fetch('SELECT * FROM roles WHERE workspace = $1 ORDER BY name COLLATE "C"', workspace)
            return [_role(row) for row in rows]
        return await self._run("reading roles", work, write=False)

    async def put_role(self, *, role: Role) -> None:
        await self._run(f"saving role {role.name}", lambda conn: conn.execute(
            _INSERT_ROLE + " ON CONFLICT (workspace, name) DO UPDATE SET per_case = EXCLUDED.per_case, "
            "budget_amount = EXCLUDED.budget_amount, budget_period = EXCLUDED.budget_period", *_role_row(role)),
            write=True)

    async def role_of(self, *, workspace: str, person: str) -> str | None:
        return await self._run("reading a person's role", lambda conn: conn.fetchval(
            "SELECT role FROM people WHERE workspace = $1 AND person = $2", workspace, person), write=False)

    async def assign(self, *, workspace: str, person: str, role: str) -> None:
        await self._run("assigning a role", lambda conn: conn.execute(
            "INSERT INTO people (workspace, person, role) VALUES ($1, $2, $3) "
            "ON CONFLICT (workspace, person) DO UPDATE SET role = EXCLUDED.role", workspace, person, role), write=True)

    # --- workspace ---------------------------------------------------------------------------
    async def recovery_channel(self, *, workspace: str) -> str | None:
        return await self._run("reading the recovery channel", lambda conn: conn.fetchval(
            "SELECT recovery_channel FROM workspaces WHERE workspace = $1", workspace), write=False)

    async def set_recovery_channel(self, *, workspace: str, channel: str) -> None:
        await self._run("saving the recovery channel", lambda conn: conn.execute(
            "INSERT INTO workspaces (workspace, recovery_channel) VALUES ($1, $2) "
            "ON CONFLICT (workspace) DO UPDATE SET recovery_channel = EXCLUDED.recovery_channel", workspace, channel),
            write=True)

    # --- platform addresses and grants -------------------------------------------------------
    async def put_reference(self, *, workspace: str, key: str, value: dict) -> None:
        await self._run("saving a platform reference", lambda conn: conn.execute(
            "INSERT INTO platform_references (workspace, key, value) VALUES ($1, $2, $3::jsonb) "
            "ON CONFLICT (workspace, key) DO UPDATE SET value = EXCLUDED.value",
            workspace, key, json.dumps(value, ensure_ascii=False)), write=True)

    async def reference(self, *, workspace: str, key: str) -> dict | None:
        value = await self._run("reading a platform reference", lambda conn: conn.fetchval(
            "SELECT value FROM platform_references WHERE workspace = $1 AND key = $2", workspace, key), write=False)
        return None if value is None else json.loads(value)

    async def grant_admin(self, *, workspace: str, person: str) -> None:
        await self._run("granting admin", lambda conn: conn.execute(
            "INSERT INTO admins (workspace, person) VALUES ($1, $2) ON CONFLICT DO NOTHING", workspace, person),
            write=True)

    async def granted_admins(self, *, workspace: str) -> set[str]:
        rows = await self._run("reading admins", lambda conn: conn.fetch(
            "SELECT person FROM admins WHERE workspace = $1", workspace), write=False)
        return {row["person"] for row in rows}

    # --- idempotency -------------------------------------------------------------------------
    async def first_time(self, *, key: str, at: datetime, keep: timedelta) -> bool:
        horizon = at - keep
        sweep = self._last_sweep is None or at - self._last_sweep >= SWEEP_SEEN_EVERY
        if sweep:
            self._last_sweep = at

        async def work(conn: asyncpg.Connection) -> bool:
            if sweep:
                # SKIP LOCKED: two processes sweeping at once neither wait on nor deadlock with each other.
                await conn.execute("DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE at < $1 "
                                   "LIMIT $2 FOR UPDATE SKIP LOCKED)", horizon, SWEEP_SEEN_BATCH)
            # A row comes back when the key is new, or when it was seen so long ago that it counts as new.
            return await conn.fetchval("""
                INSERT INTO seen AS s (key, at) VALUES ($1, $2)
                ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at WHERE s.at < $3
                RETURNING true""", key, at, horizon) is True

        async def confirm(conn: asyncpg.Connection) -> Any:
            mine = await conn.fetchval("INSERT INTO seen (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING "
                                       "RETURNING true", key, at)
            if mine:  # nobody holds the key: the lost transaction left nothing
                return _NOT_RECORDED
            stored = await conn.fetchval("SELECT at FROM seen WHERE key = $1 FOR UPDATE", key)
            # Ours if it carries our instant; anything else means it was not ours, and asking again says so.
            return True if stored == at else _NOT_RECORDED

        return await self._run("checking for a repeated delivery", work, write=True, confirm=confirm)

    # --- the outbox --------------------------------------------------------------------------
    async def add_outbox(self, *, messages: list[OutboxMessage], settles: str | None = None) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await _owe(conn, messages)
            if settles is not None:
                await conn.execute("DELETE FROM outbox WHERE key = $1", settles)
        # Idempotent (a key owed twice is owed once): after a lost COMMIT it is simply done again.
        await self._run("recording messages owed", work, write=True)

    # A message is a head when no older message of its lane is owed; both queries walk outbox_by_due from
    # the instant asked about, so messages due far later are never read.
    _IS_HEAD = ("NOT EXISTS (SELECT 1 FROM outbox older WHERE older.workspace = o.workspace "
                "AND older.case_id = o.case_id AND older.seq < o.seq)")

    async def due_outbox(self, *, now: datetime, limit: int) -> list[OutboxMessage]:
        rows = await self._run("reading the outbox", lambda conn: conn.fetch(
            f"SELECT * FROM outbox o WHERE due <= $1 AND {self._IS_HEAD} ORDER BY seq LIMIT $2", now, limit),
            write=False)
        return [_message(row) for row in rows]

    async def next_outbox_due(self, *, after: datetime) -> datetime | None:
        return await self._run("reading the outbox", lambda conn: conn.fetchval(
            f"SELECT due FROM outbox o WHERE due > $1 AND {self._IS_HEAD} ORDER BY due LIMIT 1", after), write=False)

    async def owed_outbox(self) -> list[OutboxMessage]:
        rows = await self._run("reading the outbox", lambda conn: conn.fetch("SELECT * FROM outbox ORDER BY seq"),
                               write=False)
        return [_message(row) for row in rows]

    async def try_outbox(self, *, key: str, at: datetime, lease: timedelta) -> OutboxMessage | None:
        async def work(conn: asyncpg.Connection) -> OutboxMessage | None:
            row = await conn.fetchrow("UPDATE outbox SET attempts = attempts + 1, tried_at = $2, due = $3 "
                                      "WHERE key = $1 AND due <= $2 RETURNING *", key, at, at + lease)
            return None if row is None else _message(row)

        async def confirm(conn: asyncpg.Connection) -> Any:
            row = await conn.fetchrow("SELECT * FROM outbox WHERE key = $1 FOR UPDATE", key)
            if row is None:
                return None
            return _message(row) if row["tried_at"] == at else _NOT_RECORDED
        return await self._run("recording an attempt to send", work, write=True, confirm=confirm)

    async def retry_outbox(self, *, key: str, due: datetime, error: str, in_doubt: bool) -> None:
        await self._run("rescheduling a message", lambda conn: conn.execute(
            "UPDATE outbox SET due = $2, error = $3, tried_at = CASE WHEN $4 THEN tried_at END WHERE key = $1",
            key, due, error, in_doubt), write=True)

    async def outbox_sent(self, *, key: str) -> None:
        await self._run("marking a message sent", lambda conn: conn.execute(
            "DELETE FROM outbox WHERE key = $1", key), write=True)

    # --- moving a whole store (bot.store.copy) -----------------------------------------------
    async def export_tables(self) -> dict[str, list[dict]]:
        """Every row as TinyStore documents (SNAPSHOT_TABLES), read in one consistent snapshot."""
        async def work(conn: asyncpg.Connection) -> dict[str, list[dict]]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async def rows(sql: str) -> list[asyncpg.Record]:
                    return await conn.fetch(sql, timeout=BULK_TIMEOUT)
                return {
                    "counters": [{"workspace": r["workspace"], "next": r["next_number"]}
                                 for r in await rows('SELECT * FROM counters ORDER BY workspace COLLATE "C"')],
                    "cases": [case_to_doc(_case(r["doc"])) for r in await rows("SELECT doc FROM cases ORDER BY seq")],
                    "ledger": [entry_to_doc(_entry(r)) for r in await rows("SELECT * FROM ledger ORDER BY seq")],
                    "roles": [role_to_doc(_role(r)) for r in await rows(
                        'SELECT * FROM roles ORDER BY workspace COLLATE "C", name COLLATE "C"')],
                    "people": [dict(r) for r in await rows(
                        'SELECT workspace, person, role FROM people ORDER BY workspace COLLATE "C", person COLLATE "C"')],
                    "workspaces": [dict(r) for r in await rows(
                        'SELECT workspace, recovery_channel FROM workspaces ORDER BY workspace COLLATE "C"')],
                    "references": [{"workspace": r["workspace"], "key": r["key"], "value": json.loads(r["value"])}
                                   for r in await rows('SELECT * FROM platform_references '
                                                       'ORDER BY workspace COLLATE "C", key COLLATE "C"')],
                    "admins": [dict(r) for r in await rows(
                        'SELECT workspace, person FROM admins ORDER BY workspace COLLATE "C", person COLLATE "C"')],
                    "seen": [{"key": r["key"], "at": r["at"].astimezone(timezone.utc).isoformat()}
                             for r in await rows('SELECT key, at FROM seen ORDER BY at, key COLLATE "C"')],
                }
        return await self._run("reading the whole store", work, write=False)

    async def import_tables(self, tables: dict[str, list[dict]], *, replace: bool,
                            owed: list[OutboxMessage] = ()) -> None:
        """Write a snapshot (SNAPSHOT_TABLES) and the messages still owed, in that order, in one transaction.
        Raises TargetNotEmpty when the store holds anything, unless `replace`, which empties it first.
        Running bots wait until it is done."""
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(f"LOCK TABLE {', '.join(_SQL_TABLES)} IN ACCESS EXCLUSIVE MODE", timeout=BULK_TIMEOUT)
            held = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in _SQL_TABLES}
            if any(held.values()) and not replace:
                raise TargetNotEmpty(f"the database at {self.where} already holds data ("
                                     + ", ".join(f"{n} {t}" for t, n in held.items() if n) + ")")
            if any(held.values()):
                await conn.execute(f"TRUNCATE {', '.join(_SQL_TABLES)} RESTART IDENTITY", timeout=BULK_TIMEOUT)

            async def insert(sql: str, rows: list[tuple]) -> None:
                if rows:
                    await conn.executemany(sql, rows, timeout=BULK_TIMEOUT)

            await insert("INSERT INTO counters (workspace, next_number) VALUES ($1, $2)",
                         [(d["workspace"], d["next"]) for d in tables["counters"]])
            await insert(_INSERT_CASE, [_case_row(case_from_doc(d)) for d in tables["cases"]])
            entries = [entry_from_doc(d) for d in tables["ledger"]]
            await insert(_INSERT_ENTRY, [(e.workspace, e.case_id, e.employee, e.role, e.kind, e.amount, e.currency,
                                          e.at, e.approved_by) for e in entries])
            await insert(_INSERT_ROLE, [_role_row(role_from_doc(d)) for d in tables["roles"]])
            await insert("INSERT INTO people (workspace, person, role) VALUES ($1, $2, $3)",
                         [(d["workspace"], d["person"], d["role"]) for d in tables["people"]])
            await insert("INSERT INTO workspaces (workspace, recovery_channel) VALUES ($1, $2)",
                         [(d["workspace"], d.get("recovery_channel")) for d in tables["workspaces"]])
            await insert("INSERT INTO platform_references (workspace, key, value) VALUES ($1, $2, $3::jsonb)",
                         [(d["workspace"], d["key"], json.dumps(d["value"], ensure_ascii=False))
                          for d in tables["references"]])
            await insert("INSERT INTO admins (workspace, person) VALUES ($1, $2)",
                         [(d["workspace"], d["person"]) for d in tables["admins"]])
            await insert("INSERT INTO seen (key, at) VALUES ($1, $2)",
                         [(d["key"], datetime.fromisoformat(d["at"])) for d in tables["seen"]])
            await _owe(conn, list(owed))
        async def unconfirmed(conn: asyncpg.Connection) -> Any:
            # Not redone after a lost COMMIT: the copy is run by hand, and running it again shows what is there.
            raise StoreUnavailable(UNCONFIRMED)

        await self._run(f"copying into {self.where}", work, write=True, confirm=unconfirmed)
