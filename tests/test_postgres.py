"""The PostgreSQL store against a real server: migrations, several stores sharing one database, outages.

Every generic store test also runs on PostgreSQL through tests/test_store.py's `store` fixture, which
uses `postgres_store()` from here. Each test gets a fresh schema, dropped afterwards, so tests never
see each other's data. Outages are made with a TCP proxy in front of the server that a test stops,
starts, or makes drop a connection at the moment COMMIT goes by; the machine's server is never stopped.
"""

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.cases import Case
from bot.checklist import Step
from bot.errors import OverAllowance, StepNotOpen, StoreUnavailable
from bot.recovery import Recovery
from bot.settings import Settings
from bot.store import open_store
from bot.store.codec import case_from_doc
from bot.store.migrations import known_migrations, migrate
from bot.store.postgres import UNCONFIRMED, UNREACHABLE, PostgresStore, describe_url
from bot.store.tiny import TinyStore

TEST_URL = os.environ.get("AMENDS_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO_RUN = ("start PostgreSQL on 127.0.0.1:5432 with trust auth and a database named test "
              "(on this project's machines: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), "
              "or point AMENDS_TEST_DATABASE_URL at one, then run bin/test again")
UTC = timezone.utc
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
W = "T-one"

_unreachable_because: list[str] = []  # filled once per test run: why the server can't be used, if it can't


async def skip_without_postgres() -> None:
    """Skip the calling test, with a sentence saying how to run it, when no server answers."""
    if not _unreachable_because:
        try:
            conn = await asyncpg.connect(TEST_URL, timeout=3)
            await conn.close()
            _unreachable_because.append("")
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            _unreachable_because.append(f"{type(error).__name__}: {error}")
    if _unreachable_because[0]:
        pytest.skip(f"PostgreSQL tests skipped: no server at {describe_url(TEST_URL)} ({_unreachable_because[0]}); "
                    f"to run them, {HOW_TO_RUN}.")


def url_for(schema: str, *, base: str = TEST_URL) -> str:
    """The URL a bot process is given: the test server, with search_path naming the test's schema."""
    parts = urlsplit(base)
    query = "&".join(filter(None, [parts.query, f"search_path={schema}"]))
    return urlunsplit(parts._replace(query=query))


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema on the test server, dropped with everything in it afterwards."""
    await skip_without_postgres()
    schema = f"amends_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(TEST_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@asynccontextmanager
async def postgres_store(*, pool_size: int = 5) -> AsyncIterator[PostgresStore]:
    """An opened PostgresStore in a fresh schema."""
    async with fresh_schema() as schema:
        store = PostgresStore(url=TEST_URL, pool_size=pool_size, schema=schema)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


async def rows(schema: str, sql: str, *args) -> list[asyncpg.Record]:
    """Look at the database directly, on a connection of our own: what is really recorded."""
    conn = await asyncpg.connect(TEST_URL, server_settings={"search_path": schema})
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


class FakeClock:
    def __init__(self, at: datetime = MONDAY):
        self.at = at

    def now(self) -> datetime:
        return self.at


def recovery_on(store, clock=None) -> Recovery:
    return Recovery(store=store, clock=clock or FakeClock(), currency="USD", tz=ZoneInfo("UTC"))


async def case_at_compensate(recovery: Recovery, *, owner: str = "U1", workspace: str = W) -> Case:
    case = await recovery.open_case(workspace=workspace, owner=owner, owner_name=owner, what_happened="cold soup")
    for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
        case = await recovery.complete_step(workspace=workspace, case_id=case.id, actor=owner, step=step)
    return case


async def give(recovery: Recovery, case: Case, amount: str = "25"):
    return await recovery.give(workspace=case.workspace, case_id=case.id, actor=case.owner, kind="voucher",
                               amount_text=amount)


# --- migrations ----------------------------------------------------------------------------------

async def test_migrations_run_once_when_many_processes_start_at_once():
    async with fresh_schema() as schema:
        conns = [await asyncpg.connect(TEST_URL, server_settings={"search_path": schema}) for _ in range(6)]
        try:
            results = await asyncio.gather(*(migrate(conn, schema=None) for conn in conns))
            latest = [m.version for m in known_migrations()]
            assert sorted(results, key=len) == [[]] * 5 + [latest]  # one migrated, five found it done
            assert await migrate(conns[0], schema=None) == []  # and again later: nothing to do
        finally:
            for conn in conns:
                await conn.close()
        recorded = await rows(schema, "SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in recorded] == [(m.version, m.name) for m in known_migrations()]
        tables = await rows(schema, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        assert {r["tablename"] for r in tables} >= {"cases", "ledger", "counters", "seen", "roles"}


async def test_a_migration_edited_after_it_was_applied_stops_start_up():
    async with fresh_schema() as schema:
        store = PostgresStore(url=TEST_URL, schema=schema)
        await store.open()
        await store.close()
        await rows(schema, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        again = PostgresStore(url=TEST_URL, schema=schema)
        try:
            with pytest.raises(ValueError, match="changed after it was applied"):
                await again.open()
        finally:
            await again.close()


async def test_the_store_creates_its_own_schema():
    async with fresh_schema() as parent:  # only to get a unique name that is cleaned up
        schema = parent + "_own"
        store = PostgresStore(url=TEST_URL, schema=schema)
        try:
            await store.open()
            assert (await recovery_on(store).open_case(workspace=W, owner="U1", owner_name="Amy",
                                                       what_happened="x")).id == "R-1001"
        finally:
            await store.close()
            await rows(parent, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- several stores (as several processes) on one database --------------------------------------

@asynccontextmanager
async def two_stores() -> AsyncIterator[tuple[PostgresStore, PostgresStore, str]]:
    """Two stores with their own pools on one schema: what two bot processes have."""
    async with fresh_schema() as schema:
        first, second = PostgresStore(url=TEST_URL, schema=schema), PostgresStore(url=TEST_URL, schema=schema)
        await asyncio.gather(first.open(), second.open())
        try:
            yield first, second, schema
        finally:
            await first.close()
            await second.close()


async def test_case_numbers_are_unique_across_stores():
    async with two_stores() as (first, second, _):
        one, two = recovery_on(first), recovery_on(second)
        opened = await asyncio.gather(*(r.open_case(workspace=W, owner="U1", owner_name="Amy", what_happened="x")
                                        for _ in range(15) for r in (one, two)))
        assert sorted(int(c.id[2:]) for c in opened) == list(range(1001, 1031))
        assert await second.get_case(workspace=W, case_id="R-1030") is not None


async def test_the_budget_holds_across_stores():
    async with two_stores() as (first, second, schema):
        setup = recovery_on(first)
        await setup.set_limit(workspace=W, role="server", limit="25", budget="100/week")
        await setup.assign_role(workspace=W, person="U1", role="server")
        cases = [await case_at_compensate(setup) for _ in range(16)]
        both = [recovery_on(first), recovery_on(second)]
        # Every case is given twice, once through each store: a double submit that lands on both processes.
        results = await asyncio.gather(*(give(both[i % 2], case) for case in cases for i in range(2)),
                                       return_exceptions=True)
        given = [r for r in results if isinstance(r, tuple)]
        refused = [r for r in results if isinstance(r, (OverAllowance, StepNotOpen))]
        assert len(given) == 4 and len(refused) == 28, results
        ledger = await rows(schema, "SELECT case_id, amount FROM ledger")
        assert sum(r["amount"] for r in ledger) == Decimal(100)
        assert sorted(r["case_id"] for r in ledger) == sorted(case.id for case, _ in given)


async def test_a_repeated_delivery_is_seen_by_the_other_store():
    async with two_stores() as (first, second, _):
        keep = timedelta(days=1)
        assert await first.first_time(key="event:E1", at=MONDAY, keep=keep) is True
        assert await second.first_time(key="event:E1", at=MONDAY, keep=keep) is False
        answers = await asyncio.gather(*(store.first_time(key="event:E2", at=MONDAY, keep=keep)
                                         for _ in range(10) for store in (first, second)))
        assert sorted(answers) == [False] * 19 + [True]


async def test_old_delivery_keys_are_swept_away():
    async with postgres_store() as store:
        keep = timedelta(days=1)
        for n in range(5):
            assert await store.first_time(key=f"event:old-{n}", at=MONDAY, keep=keep) is True
        later = MONDAY + keep + timedelta(hours=1)
        assert await store.first_time(key="event:new", at=later, keep=keep) is True
        kept = await rows(store.schema, "SELECT key FROM seen")
        assert [r["key"] for r in kept] == ["event:new"]


# --- outages -------------------------------------------------------------------------------------

class Proxy:
    """A TCP proxy to the test server on a port of its own, which a test can stop and start, or arm to
    cut the next connection that sends some statement: before passing it on (the server rolls the
    transaction back), or after the server has answered it (done, but the answer never arrives)."""

    def __init__(self):
        parts = urlsplit(TEST_URL)
        self.upstream = (parts.hostname, parts.port or 5432)
        self.port = 0
        self.cut = asyncio.Event()
        self._armed: tuple[bytes, bool, bool] | None = None
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    @property
    def url(self) -> str:
        parts = urlsplit(TEST_URL)
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    async def start(self) -> "Proxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _go_down(self) -> None:
        if self._server is not None:
            self._server.close()  # at once: the next connect is refused
        for link in list(self._links):
            for writer in link:
                writer.close()

    async def stop(self) -> None:
        """The database goes away: no new connections, and every open one is cut."""
        self._go_down()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def arm(self, statement: bytes, *, deliver: bool, stay_down: bool = False) -> None:
        """Cut the next connection that sends `statement`; with stay_down, the database then stays away."""
        self.cut.clear()
        self._armed = (statement, deliver, stay_down)

    def upstream_ports(self) -> list[int]:
        """Our local ports towards the server: how the server's pg_stat_activity knows these connections."""
        return [upstream.get_extra_info("sockname")[1] for _, upstream in self._links]

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        link = (client_writer, upstream_writer)
        self._links.add(link)
        swallow_answer: list[bool] = []

        async def to_server() -> None:
            while chunk := await client_reader.read(65536):
                if self._armed and self._armed[0] in chunk:
                    _, deliver, stay_down = self._armed
                    self._armed = None
                    if not deliver:
                        self._cut(link, stay_down=stay_down)
                        return
                    swallow_answer.append(stay_down)  # pass it on; the answer is dropped with the connection
                upstream_writer.write(chunk)
                await upstream_writer.drain()

        async def to_client() -> None:
            while chunk := await upstream_reader.read(65536):
                if swallow_answer:
                    self._cut(link, stay_down=swallow_answer[0])
                    return
                client_writer.write(chunk)
                await client_writer.drain()

        pumps = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            client_writer.close()
            upstream_writer.close()
            self._links.discard(link)

    def _cut(self, link: tuple[asyncio.StreamWriter, asyncio.StreamWriter], *, stay_down: bool) -> None:
        for writer in link:
            writer.close()
        if stay_down:
            self._go_down()
        self.cut.set()


@asynccontextmanager
async def store_behind_proxy(*, started: bool = True) -> AsyncIterator[tuple[PostgresStore, Proxy, str]]:
    async with fresh_schema() as schema:
        proxy = Proxy()
        await proxy.start()
        if not started:
            await proxy.stop()  # the port is known, and nothing listens on it
        store = PostgresStore(url=proxy.url, pool_size=3, schema=schema)
        try:
            await store.open()
            yield store, proxy, schema
        finally:
            await store.close()
            await proxy.stop()


async def _ready_to_give(store: PostgresStore) -> tuple[Recovery, Case]:
    recovery = recovery_on(store)
    await recovery.set_limit(workspace=W, role="server", limit="25", budget="100/week")
    await recovery.assign_role(workspace=W, person="U1", role="server")
    return recovery, await case_at_compensate(recovery)


async def _ledger_and_step(schema: str, case: Case) -> tuple[list[str], Step]:
    """What the database really holds: the ledger's case ids, and where the case's checklist stands."""
    ledger = [r["case_id"] for r in await rows(schema, "SELECT case_id FROM ledger ORDER BY seq")]
    doc = (await rows(schema, "SELECT doc FROM cases WHERE id = $1", case.id))[0]["doc"]
    return ledger, case_from_doc(json.loads(doc)).current_step


async def test_a_database_down_at_start_refuses_with_a_sentence_and_recovers_by_itself(caplog):
    caplog.set_level(logging.INFO, logger="bot.store")
    async with store_behind_proxy(started=False) as (store, proxy, schema):
        assert "can't reach its database at 127.0.0.1" in caplog.text  # open() logged it and let the bot start
        assert "while preparing its tables" in caplog.text
        recovery = recovery_on(store)
        with pytest.raises(StoreUnavailable) as refused:
            await recovery.open_case(workspace=W, owner="U1", owner_name="Amy", what_happened="cold soup")
        assert refused.value.sentence == UNREACHABLE
        assert await rows(schema, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema) == []

        await proxy.start()
        case = await recovery.open_case(workspace=W, owner="U1", owner_name="Amy", what_happened="cold soup")
        assert case.id == "R-1001"
        assert "reachable again" in caplog.text


async def test_a_database_that_goes_away_records_nothing_and_the_store_recovers(caplog):
    caplog.set_level(logging.INFO, logger="bot.store")
    async with store_behind_proxy() as (store, proxy, schema):
        recovery, case = await _ready_to_give(store)
        await proxy.stop()
        with pytest.raises(StoreUnavailable) as refused:
            await give(recovery, case)
        assert refused.value.sentence == UNREACHABLE
        assert await _ledger_and_step(schema, case) == ([], Step.COMPENSATE)
        assert "can't reach its database" in caplog.text

        await proxy.start()
        given, entry = await give(recovery, case)
        assert given.current_step is Step.FOLLOW_UP and entry.amount == 25
        assert await _ledger_and_step(schema, case) == ([case.id], Step.FOLLOW_UP)
        assert "reachable again" in caplog.text


async def test_connections_killed_by_the_server_are_replaced_without_a_refusal():
    async with store_behind_proxy() as (store, proxy, schema):
        recovery, case = await _ready_to_give(store)
        ports = proxy.upstream_ports()
        assert ports  # the pool holds connections through the proxy
        killed = await rows(schema, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE client_port = ANY($1::int[]) AND client_addr = '127.0.0.1'", ports)
        assert len(killed) == len(ports) and all(r[0] for r in killed)
        given, entry = await give(recovery, case)
        assert given.current_step is Step.FOLLOW_UP
        assert await _ledger_and_step(schema, case) == ([case.id], Step.FOLLOW_UP)


async def test_a_connection_lost_mid_transaction_is_retried_on_a_fresh_one(caplog):
    caplog.set_level(logging.INFO, logger="bot.store")
    async with store_behind_proxy() as (store, proxy, schema):
        recovery, case = await _ready_to_give(store)
        proxy.arm(b"INSERT INTO ledger", deliver=False)  # the first ledger write of this schema
        given, entry = await give(recovery, case)
        assert proxy.cut.is_set()  # the fault really happened
        assert given.current_step is Step.FOLLOW_UP and entry.case_id == case.id
        assert await _ledger_and_step(schema, case) == ([case.id], Step.FOLLOW_UP)
        assert "trying once more on a fresh one" in caplog.text


@pytest.mark.parametrize("deliver, found", [(True, "it was recorded; carrying on"),
                                            (False, "it was not recorded; doing it again")])
async def test_a_connection_lost_during_commit_is_resolved_before_answering(caplog, deliver, found):
    caplog.set_level(logging.INFO, logger="bot.store")
    async with store_behind_proxy() as (store, proxy, schema):
        recovery, case = await _ready_to_give(store)
        proxy.arm(b"COMMIT;", deliver=deliver)
        given, entry = await give(recovery, case)
        assert proxy.cut.is_set()
        assert given.current_step is Step.FOLLOW_UP and entry.case_id == case.id
        assert await _ledger_and_step(schema, case) == ([case.id], Step.FOLLOW_UP)  # once, whatever happened
        assert "lost while committing" in caplog.text and found in caplog.text


async def test_when_the_commit_is_lost_and_the_database_stays_away_the_person_is_told_it_is_unknown():
    async with store_behind_proxy() as (store, proxy, schema):
        recovery, case = await _ready_to_give(store)
        proxy.arm(b"COMMIT;", deliver=True, stay_down=True)
        with pytest.raises(StoreUnavailable) as refused:
            await give(recovery, case)
        assert proxy.cut.is_set()
        assert refused.value.sentence == UNCONFIRMED
        assert await _ledger_and_step(schema, case) == ([case.id], Step.FOLLOW_UP)  # it was, in fact, recorded
        await proxy.stop()
        await proxy.start()
        with pytest.raises(StepNotOpen):  # the person looks, tries again, and is told it is done
            await give(recovery, case)
        assert await _ledger_and_step(schema, case) == ([case.id], Step.FOLLOW_UP)


async def test_a_refusal_inside_the_transaction_records_nothing():
    async with postgres_store() as store:
        recovery, case = await _ready_to_give(store)
        with pytest.raises(OverAllowance):
            await give(recovery, case, "26")
        assert await _ledger_and_step(store.schema, case) == ([], Step.COMPENSATE)


async def test_the_database_refuses_a_second_ledger_entry_for_one_case():
    """Belt and braces under the checklist: even a buggy caller can't pay one case twice."""
    async with postgres_store() as store:
        recovery, case = await _ready_to_give(store)
        await give(recovery, case)
        with pytest.raises(asyncpg.UniqueViolationError):
            await rows(store.schema, "INSERT INTO ledger (workspace, case_id, employee, role, kind, amount, "
                                      "currency, at) VALUES ($1, $2, 'U1', 'server', 'voucher', 1, 'USD', now())",
                       W, case.id)


async def test_the_password_never_reaches_the_log(caplog):
    caplog.set_level(logging.INFO, logger="bot.store")
    store = PostgresStore(url="postgresql://amends:sw0rdfish@127.0.0.1:1/none", schema="amends_never")
    try:
        await store.open()  # nothing listens on port 1: refused, logged, and start-up goes on
    finally:
        await store.close()
    assert "can't reach its database at 127.0.0.1:1/none" in caplog.text
    assert "sw0rdfish" not in caplog.text


# --- choosing the store ----------------------------------------------------------------------------

@pytest.mark.parametrize("location", ["postgresql://amends@db.internal:5432/amends", "postgres://amends@db/amends"])
def test_a_postgresql_url_in_amends_db_selects_postgresql_with_the_pool_size(location):
    settings = Settings.from_env({"AMENDS_DB": location, "AMENDS_DB_POOL_SIZE": "4"}, dotenv_path=None)
    store = open_store(settings.db, pool_size=settings.db_pool_size)
    assert isinstance(store, PostgresStore) and store.pool_size == 4
    assert store.where == describe_url(location)  # what the log shows: no user, no password


def test_anything_else_stays_a_tinydb_path(tmp_path):
    settings = Settings.from_env({"AMENDS_DB": str(tmp_path / "postgresql.json")}, dotenv_path=None)
    assert settings.db_pool_size == 10
    assert isinstance(open_store(settings.db, pool_size=settings.db_pool_size), TinyStore)


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5", "1001"])
def test_a_bad_pool_size_stops_start_up_with_a_sentence(value):
    with pytest.raises(ValueError, match="AMENDS_DB_POOL_SIZE must be a whole number"):
        Settings.from_env({"AMENDS_DB_POOL_SIZE": value}, dotenv_path=None)
