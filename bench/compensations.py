"""Compensation writes per second and p99 latency of Recovery.give, on the embedded store and on PostgreSQL.

    .venv/bin/python bench/compensations.py            (about a minute; needs PostgreSQL for its last two rows)
    .venv/bin/python bench/compensations.py --quick    (smaller counts, a smoke run)

One record is one compensation on its own case: `Recovery.give` checking the role's limit and period
budget and recording the gift, the way the give form does. Each mode runs in processes of its own:

    tinydb       the embedded store (a file in a temporary directory), one process
    postgres     PostgreSQL, one process
    postgres     PostgreSQL, two processes on one database (the scale-out this store exists for)

Each process first opens its cases already at "compensate" (not timed), waits on a barrier with the
others, then runs CONCURRENCY tasks that give on their next case until the mode's records are done or
its time cap passes. Gifts come from 50 employees, shared by the processes, each with a budget far
above what the run gives, so every give is recorded and the per-person lock is contended as in real
use. Writes per second = records / (last finish - first start); latency is per give, p50 and p99.
After each run the ledger is counted: every give reported must be in it exactly once.

PostgreSQL: AMENDS_BENCH_DATABASE_URL, else AMENDS_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test;
loopback only. A fresh schema is made for each mode and dropped afterwards.
"""

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bot.cases import Case, StepDone  # noqa: E402
from bot.checklist import Step  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.periods import Period  # noqa: E402
from bot.recovery import Recovery  # noqa: E402
from bot.roles import Budget, Role  # noqa: E402
from bot.store.postgres import PostgresStore  # noqa: E402
from bot.store.tiny import TinyStore  # noqa: E402

WORKSPACE = "T-bench"
EMPLOYEES = 50
CONCURRENCY = 8  # requests in flight per process, as a busy bot has
TIME_CAP = 30.0  # seconds per mode, whatever the count
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def database_url() -> str:
    url = (os.environ.get("AMENDS_BENCH_DATABASE_URL") or os.environ.get("AMENDS_TEST_DATABASE_URL")
           or "postgresql://postgres@127.0.0.1:5432/test")
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit(f"bench/compensations.py measures a database on this machine only, not {urlsplit(url).hostname}")
    return url


def open_store(kind: str, where: str, *, pool_size: int):
    return TinyStore(path=where) if kind == "tinydb" else PostgresStore(url=database_url(), schema=where,
                                                                        pool_size=pool_size)


async def prepare(store, *, worker: int, count: int) -> list[Case]:
    """Cases already past apologise, empathise and fix, opened the way the store opens any case."""
    now = datetime.now(timezone.utc)
    done = {step: StepDone(at=now) for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX)}

    async def one(n: int) -> Case:
        owner = f"U{(worker * count + n) % EMPLOYEES}"
        return await store.open_case(workspace=WORKSPACE, build=lambda number: Case(
            workspace=WORKSPACE, id=f"R-{number}", owner=owner, owner_name=owner, what_happened="bench",
            customer="", opened_at=now, done=done))
    cases: list[Case] = []
    for start in range(0, count, 32):
        cases += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 32))))
    return cases


async def run_worker(kind: str, where: str, worker: int, count: int, barrier, results) -> None:
    store = open_store(kind, where, pool_size=CONCURRENCY)
    await store.open()
    try:
        recovery = Recovery(store=store, clock=SystemClock(), currency="USD", tz=ZoneInfo("UTC"))
        cases = await prepare(store, worker=worker, count=count)
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        latencies: list[float] = []
        queue = iter(cases)
        started = time.monotonic()
        stop_at = started + TIME_CAP

        async def giver() -> None:
            for case in queue:
                if time.monotonic() > stop_at:
                    return
                began = time.perf_counter()
                await recovery.give(workspace=WORKSPACE, case_id=case.id, actor=case.owner, kind="voucher",
                                    amount_text="5")
                latencies.append(time.perf_counter() - began)
        await asyncio.gather(*(giver() for _ in range(CONCURRENCY)))
        results.put((worker, started, time.monotonic(), latencies))
    finally:
        await store.close()


def worker_main(kind: str, where: str, worker: int, count: int, barrier, results) -> None:
    asyncio.run(run_worker(kind, where, worker, count, barrier, results))


async def set_up_roles(kind: str, where: str) -> None:
    """Every bench employee in a role whose limit and weekly budget the run can't reach."""
    store = open_store(kind, where, pool_size=1)
    await store.open()
    try:
        await store.put_role(role=Role(workspace=WORKSPACE, name="bench", limit=Decimal(100),
                                       budget=Budget(amount=Decimal(1_000_000), period=Period.WEEK)))
        for n in range(EMPLOYEES):
            await store.assign(workspace=WORKSPACE, person=f"U{n}", role="bench")
    finally:
        await store.close()


async def ledger_size(kind: str, where: str) -> int:
    store = open_store(kind, where, pool_size=1)
    await store.open()
    try:
        return len(await store.ledger(workspace=WORKSPACE))
    finally:
        await store.close()


def measure(kind: str, where: str, *, processes: int, records: int) -> dict:
    asyncio.run(set_up_roles(kind, where))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    share = records // processes
    workers = [context.Process(target=worker_main, args=(kind, where, n, share, barrier, results))
               for n in range(processes)]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=TIME_CAP + 120) for _ in workers]
    for process in workers:
        process.join(timeout=30)
        if process.exitcode != 0:
            raise SystemExit(f"a {kind} worker failed (exit code {process.exitcode})")
    latencies = sorted(latency for *_, worker_latencies in outcomes for latency in worker_latencies)
    elapsed = max(end for _, _, end, _ in outcomes) - min(start for _, start, _, _ in outcomes)
    recorded = asyncio.run(ledger_size(kind, where))
    if recorded != len(latencies):
        raise SystemExit(f"{kind}: {len(latencies)} gives reported but {recorded} in the ledger")
    return {"store": kind, "processes": processes, "records": len(latencies), "seconds": elapsed,
            "per_second": len(latencies) / elapsed, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000}


async def make_schema() -> str:
    schema = f"amends_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url(), timeout=5)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return schema


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(database_url(), timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def server_version() -> str | None:
    try:
        conn = await asyncpg.connect(database_url(), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return None
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 records a mode instead of 2,000")
    parser.add_argument("--records", type=int, help="records a mode (each process gives its share)")
    args = parser.parse_args(argv)
    records = args.records or (200 if args.quick else 2000)

    version = asyncio.run(server_version())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"PostgreSQL {version or 'not reachable'} on loopback; {records} records a mode, "
          f"{CONCURRENCY} in flight per process, {EMPLOYEES} employees", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="amends-bench-") as folder:
        rows.append(measure("tinydb", str(Path(folder) / "amends.json"), processes=1, records=records))
    if version is None:
        print("PostgreSQL isn't reachable: start it (or set AMENDS_BENCH_DATABASE_URL) for its rows", file=sys.stderr)
    else:
        for processes in (1, 2):
            schema = asyncio.run(make_schema())
            try:
                rows.append(measure("postgres", schema, processes=processes, records=records))
            finally:
                asyncio.run(drop_schema(schema))

    print(f"\n{'store':<10} {'processes':>9} {'records':>8} {'seconds':>8} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(f"{row['store']:<10} {row['processes']:>9} {row['records']:>8} {row['seconds']:>8.2f} "
              f"{row['per_second']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
