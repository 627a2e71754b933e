"""Amends' benchmark, beside its two anchors, in one run on this machine.

    .venv/bin/python bench/run.py            (after ./bin/test has made .venv; takes about a minute)
    .venv/bin/python bench/run.py --quick    (smaller counts, for a smoke run)

It starts, each as its own process on 127.0.0.1: a lean Slack Web API double, the floor anchor (raw
aiohttp, 200), the Bolt anchor (bare AsyncApp: /recover acks, then one chat.postMessage over a shared
session) and the real bot (`python app.py`) on a store already holding 100k ledger entries. It drives
each with correctly signed /recover commands at concurrency 1, 16 and 64, then measures whole cases
end to end, the store's cost at 1k/10k/100k entries with the longest event-loop stall, and start-up
time. Every loop is bounded in count and time and targets loopback only. It prints one table with
every target marked met or not, and writes bench/results.json and bench/RESULTS.md.
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.cases import Case, Compensation, StepDone  # noqa: E402
from bot.checklist import CHECKLIST, Step  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.ledger import LedgerEntry  # noqa: E402
from bot.recovery import Recovery  # noqa: E402
from bot.store import tiny  # noqa: E402
from bot.store.codec import case_to_doc, entry_to_doc  # noqa: E402
from tests.doubles.slack_api import BOT_TOKEN, FakeSlack  # noqa: E402
from tests.doubles.slack_client import SlackDriver  # noqa: E402
from tests.flows import give, open_case, wait_step, walk_to  # noqa: E402

SECRET = "bench-signing-secret"
TICK = os.sysconf("SC_CLK_TCK")
ACK_LIMIT = 3.0


# --- processes -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    port: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    async def stop(self) -> None:
        if self.process.returncode is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


async def start(name: str, argv: list[str], *, ready: str, env: dict | None = None, port: int = 0,
                deadline: float = 60) -> Server:
    """Start a process and wait (with a deadline) for the line that says it is ready."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = Server(name, process, port)

    async def until_ready():
        while True:
            raw = await process.stdout.readline()
            if not raw:
                raise RuntimeError(f"{name} exited before it was ready:\n" + "".join(server.lines[-30:]))
            server.lines.append(raw.decode())
            if ready in server.lines[-1]:
                return server.lines[-1]
    line = await asyncio.wait_for(until_ready(), deadline)
    asyncio.create_task(_drain(server))
    if not port:
        server.port = int(line.split()[-1])
    return server


async def _drain(server: Server) -> None:
    """Keep reading the process's output (so it never blocks on a full pipe), remembering the tail."""
    while raw := await server.process.stdout.readline():
        server.lines = [*server.lines[-200:], raw.decode()]


# --- load ------------------------------------------------------------------------------------

def signed(body: str) -> dict:
    timestamp = str(int(time.time()))
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)}


def recover_body(n: int, fake_port: int) -> str:
    return urlencode({
        "token": "x", "team_id": "T1", "team_domain": "bench", "channel_id": "C1", "channel_name": "floor",
        "user_id": f"U{n % 50}", "user_name": f"user{n % 50}", "command": "/recover",
        "text": f"cold soup, table {n % 40}, waited {n % 60} min", "api_app_id": "A1",
        "response_url": f"http://127.0.0.1:{fake_port}/respond/{n}", "trigger_id": f"bench-{n}-{random.random()}",
    })


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def fake_counts(session: aiohttp.ClientSession, fake_port: int) -> dict:
    async with session.get(f"http://127.0.0.1:{fake_port}/stats") as resp:
        return await resp.json()


async def settle(session, fake_port: int, method: str, at_least: int, *, deadline: float = 60) -> None:
    """Wait until the bot's background work has reached the double (bounded)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if (await fake_counts(session, fake_port)).get(method, 0) >= at_least:
            return
        await asyncio.sleep(0.02)
    print(f"  (background {method} calls did not all arrive within {deadline:.0f} s)")


async def ack_level(server: Server, *, concurrency: int, count: int, fake_port: int, posts_per_request: int,
                    session: aiohttp.ClientSession, time_limit: float = 60) -> dict:
    """`count` signed /recover commands, `concurrency` at a time; latency is until Slack would get its ack."""
    latencies: list[float] = []
    errors = 0
    before = await fake_counts(session, fake_port)
    cpu_before = server.cpu_seconds()
    numbers = iter(range(count))
    started = time.perf_counter()
    stop_at = started + time_limit

    async def worker():
        nonlocal errors
        for n in numbers:
            if time.perf_counter() > stop_at:
                return
            body = recover_body(n, fake_port)
            t = time.perf_counter()
            try:
                async with session.post(server.url + "/slack/events", data=body.encode(), headers=signed(body),
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            latencies.append(time.perf_counter() - t)
            errors += not ok
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    sent = len(latencies)
    if posts_per_request:
        await settle(session, fake_port, "chat.postMessage",
                     before.get("chat.postMessage", 0) + posts_per_request * sent)
    after = await fake_counts(session, fake_port)
    calls = sum(after.values()) - sum(before.values())
    cpu = server.cpu_seconds() - cpu_before
    return {
        "concurrency": concurrency, "requests": sent, "errors": errors,
        "over_3s": sum(lat > ACK_LIMIT for lat in latencies), "rps": sent / wall,
        "p50_ms": percentile(latencies, 50) * 1e3, "p95_ms": percentile(latencies, 95) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3, "cpu_ms_per_request": cpu / sent * 1e3,
        "web_api_calls_per_request": calls / sent,
    }


# --- the store -------------------------------------------------------------------------------

def fill_store(path: Path, entries: int) -> None:
    """A store holding `entries` ledger entries (and their closed cases) over the past year, written in bulk."""
    rng = random.Random(entries)
    now = datetime.now(timezone.utc)
    moments = [now - timedelta(seconds=rng.randrange(365 * 24 * 3600)) for _ in range(entries)]

    def case(n: int, at: datetime) -> Case:
        return Case(workspace="T1", id=f"R-{1001 + n}", owner=f"U{n % 200}", owner_name=f"user{n % 200}",
                    what_happened="cold soup, table 4, waited 40 min", customer="table 4", opened_at=at,
                    done={step: StepDone(at=at, note="") for step in CHECKLIST},
                    compensation=Compensation(kind="voucher", amount=Decimal("12.50"), currency="USD"),
                    closed_at=at + timedelta(minutes=2))

    def dump(doc: dict) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()
    tables = {
        "cases": (dump(case_to_doc(case(n, at))) for n, at in enumerate(moments)),
        "ledger": (dump(entry_to_doc(LedgerEntry(workspace="T1", case_id=f"R-{1001 + n}", employee=f"U{n % 200}",
                                                  role="staff", kind="voucher", amount=Decimal("12.50"),
                                                  currency="USD", at=at)))
                   for n, at in enumerate(moments)),
        "counters": iter([dump({"workspace": "T1", "next": 1001 + entries})]),
    }
    tiny.write_snapshot(path, tables)


async def watch_loop(stop: asyncio.Event, worst: list[float]) -> None:
    """Record the longest time this event loop could not run (what an ack would have waited)."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        worst[0] = max(worst[0], time.perf_counter() - t - 0.001)


PG_URL = os.environ.get("AMENDS_BENCH_DATABASE_URL") or os.environ.get("AMENDS_TEST_DATABASE_URL") \
    or "postgresql://postgres@127.0.0.1:5432/test"


async def postgres_reachable() -> str | None:
    """None when the bench's PostgreSQL answers, else why not (its rows are then left out)."""
    import asyncpg
    try:
        connection = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await connection.close()
    return None


async def postgres_store(path: Path):
    """A PostgresStore in a fresh schema holding what the TinyDB file at `path` holds (bulk-copied, untimed)."""
    import asyncpg

    from bot.store.copy import copy_store
    from bot.store.postgres import PostgresStore
    schema = f"amends_bench_{os.getpid()}_{random.randrange(1 << 30)}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await copy_store(source=str(path), target=f"{PG_URL}{'&' if '?' in PG_URL else '?'}search_path={schema}")

    async def drop() -> None:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
    return PostgresStore(url=PG_URL, pool_size=4, schema=schema), drop


async def store_costs(entries: int, directory: Path, samples: int, *, backend: str = "tinydb") -> dict:
    path = directory / f"store-{entries}.json"
    fill_store(path, entries)
    drop = None
    if backend == "postgres":
        store, drop = await postgres_store(path)
        t = time.perf_counter()
        await store.open()
    else:
        t = time.perf_counter()
        store = tiny.TinyStore(path=str(path))
    load_s = time.perf_counter() - t
    gc.freeze()  # as app.py does once the store is loaded
    recovery = Recovery(store=store, clock=SystemClock(), currency="USD", tz=ZoneInfo("UTC"))
    await recovery.set_limit(workspace="T1", role="bench", limit="100", budget="1000000/week")
    await recovery.assign_role(workspace="T1", person="UBENCH", role="bench")
    ready = []
    for _ in range(samples):
        case = await recovery.open_case(workspace="T1", owner="UBENCH", owner_name="bench", what_happened="x")
        for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
            case = await recovery.complete_step(workspace="T1", case_id=case.id, actor="UBENCH", step=step)
        ready.append(case)
    stop, worst = asyncio.Event(), [0.0]
    watcher = asyncio.create_task(watch_loop(stop, worst))
    gives, opens = [], []
    for case in ready:
        t = time.perf_counter()
        await recovery.give(workspace="T1", case_id=case.id, actor="UBENCH", kind="voucher", amount_text="5")
        gives.append(time.perf_counter() - t)
    for _ in range(samples):
        t = time.perf_counter()
        await recovery.open_case(workspace="T1", owner="UBENCH", owner_name="bench", what_happened="y")
        opens.append(time.perf_counter() - t)
    fold_s = None
    if backend == "tinydb":
        t = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(store._worker, store._compact)  # a fold, as history grows
        fold_s = time.perf_counter() - t
    stop.set()
    await watcher
    await store.close()
    if drop is not None:
        await drop()
    return {"backend": backend, "entries": entries, "give_ms_p50": statistics.median(gives) * 1e3,
            "give_ms_p99": percentile(gives, 99) * 1e3, "open_ms_p50": statistics.median(opens) * 1e3,
            "load_s": load_s, "fold_s": fold_s, "max_loop_stall_ms": worst[0] * 1e3}


# --- whole cases -----------------------------------------------------------------------------

async def whole_cases(store_file: Path, *, cases: int, concurrency: int, session) -> dict:
    """Cases from /recover to the summary, through every step, against a recording double."""
    fake = await FakeSlack().start()
    port = free_port()
    bot = await start("amends-cases", [sys.executable, "app.py"], ready="Amends is listening on", port=port, env={
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
        "AMENDS_DB": str(store_file), "HOST": "127.0.0.1", "PORT": str(port), "AMENDS_ADMINS": "UBOSS"})
    try:
        driver = SlackDriver(bot_url=bot.url, signing_secret=SECRET, fake=fake, session=session)
        await driver.command("admin channel <#CREC|recoveries>", user="UBOSS")
        await fake.wait_for("response_url", where=lambda c: "Saved" in c.args["text"])
        calls_before = len(fake.calls)
        done = 0

        async def one(user: str, text: str) -> None:
            nonlocal done
            card = await open_case(driver, fake, text, user=user, user_name=user, channel=f"C{user}")
            compensate = await walk_to(driver, fake, card, Step.COMPENSATE, user=user, user_name=user)
            status, refused = await give(driver, fake, compensate, "10", user=user, user_name=user)
            assert (status, refused) == (200, ""), refused  # within budget: each run has its own people
            follow_up = await wait_step(fake, card, Step.FOLLOW_UP)
            await driver.click(follow_up, "follow_up_tomorrow", user=user, user_name=user)
            await fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC"
                                and card.args["text"].split(" ·")[0] in c.args["text"], timeout=30)
            done += 1

        people = [f"UC{concurrency}X{u}" for u in range(concurrency)]  # fresh budgets for every run

        async def user_loop(user: str) -> None:
            for n in range(cases // concurrency):
                await one(user, f"case {user}-{n}: cold soup")
        fake.add_user("UBOSS", "boss")
        for user in people:
            fake.add_user(user, user.lower())
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(user_loop(user) for user in people)), 300)
        wall = time.perf_counter() - started
        assert not fake.problems, fake.problems
        return {"concurrency": concurrency, "cases": done, "cases_per_s": done / wall,
                "web_api_calls_per_case": (len(fake.calls) - calls_before) / done}
    except BaseException:
        print("".join(bot.lines[-40:]))
        raise
    finally:
        await bot.stop()
        await fake.stop()


async def startup_time(store_file: Path, api_url: str, session) -> float:
    """Seconds from spawning `python app.py` to a 200 on /healthz (bounded: 60 s)."""
    port = free_port()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url,
             "AMENDS_DB": str(store_file), "HOST": "127.0.0.1", "PORT": str(port)})
    try:
        while time.perf_counter() - started < 60:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return time.perf_counter() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.005)
        return float("inf")
    finally:
        process.terminate()
        await process.wait()


# --- the run ---------------------------------------------------------------------------------

async def run(quick: bool) -> dict:
    scale = 10 if quick else 1
    levels = [(1, 300 // scale), (16, 1600 // scale), (64, 3200 // scale)]
    history = 10_000 if quick else 100_000
    work = Path(tempfile.mkdtemp(prefix="amends-bench-"))
    results: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                     "command": "python bench/run.py" + (" --quick" if quick else ""), "history": history}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            print("store: filling and timing 1k / 10k / 100k entries …", flush=True)
            sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
            results["store"] = [await store_costs(n, work, 20 if quick else 50) for n in sizes]
            why_not = await postgres_reachable()
            if why_not:
                print(f"  (PostgreSQL rows left out: no server at {PG_URL.split('@')[-1]}: {why_not})")
            else:
                print("store: the same on PostgreSQL (bulk copies, untimed) …", flush=True)
                results["store"] += [await store_costs(n, work, 20 if quick else 50, backend="postgres") for n in sizes]
            big = work / "history.json"
            fill_store(big, history)
            fake = await start("slack-double", [sys.executable, "-m", "tests.doubles.slack_api"], ready="listening")
            api_url = f"http://127.0.0.1:{fake.port}/api/"
            print("start-up with the full history …", flush=True)
            results["startup_s"] = await startup_time(big, api_url, session)
            servers = {}
            for name, argv, ready, env in (
                ("floor", [sys.executable, "bench/anchors.py", "floor"], "listening", {}),
                ("bolt", [sys.executable, "bench/anchors.py", "bolt"], "listening", {"SLACK_SIGNING_SECRET": SECRET}),
                ("amends", [sys.executable, "app.py"], "Amends is listening on", {
                    "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url,
                    "AMENDS_DB": str(big), "HOST": "127.0.0.1"}),
            ):
                port = free_port()
                extra = [str(port)] + ([api_url] if name == "bolt" else [])
                servers[name] = await start(name, argv + ([] if name == "amends" else extra), ready=ready,
                                            port=port, env={**env, "PORT": str(port)})
            posts = {"floor": 0, "bolt": 1, "amends": 2}
            results["acks"] = {}
            for name, server in servers.items():
                print(f"acks: {name} …", flush=True)
                results["acks"][name] = [
                    await ack_level(server, concurrency=c, count=n, fake_port=fake.port,
                                    posts_per_request=posts[name], session=session) for c, n in levels]
                results["acks"][name + "_peak_rss_mb"] = server.peak_rss_mb()
            for server in servers.values():
                await server.stop()
            await fake.stop()
            print("whole cases …", flush=True)
            copy = work / "cases.json"
            shutil.copy(big, copy)
            results["cases"] = [await whole_cases(copy, cases=c, concurrency=k, session=session)
                                for c, k in ((10 // (2 if quick else 1), 1), (16 // (2 if quick else 1), 8))]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["targets"] = targets(results)
    return results


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def targets(r: dict) -> list[dict]:
    amends, bolt = r["acks"]["amends"], r["acks"]["bolt"]
    by_c = {level["concurrency"]: level for level in amends}
    bolt_per_call = bolt[-1]["cpu_ms_per_request"] / max(bolt[-1]["web_api_calls_per_request"], 1e-9)
    ours_per_call = amends[-1]["cpu_ms_per_request"] / max(amends[-1]["web_api_calls_per_request"], 1e-9)
    store = {row["entries"]: row for row in r["store"] if row["backend"] == "tinydb"}  # the embedded default
    small, large = store[min(store)], store[max(store)]
    rows = [
        ("0 errors and 0 acks over 3 s at every concurrency", f"{sum(x['errors'] + x['over_3s'] for x in amends)}",
         all(x["errors"] == 0 and x["over_3s"] == 0 for x in amends)),
        ("/recover ack p50 ≤ 5 ms at concurrency 1", f"{by_c[1]['p50_ms']:.1f} ms", by_c[1]["p50_ms"] <= 5),
        ("/recover ack p99 ≤ 100 ms at concurrency 64", f"{by_c[64]['p99_ms']:.1f} ms", by_c[64]["p99_ms"] <= 100),
        ("server CPU per Web API call ≤ 2× the Bolt anchor's", f"{ours_per_call:.2f} vs {bolt_per_call:.2f} ms "
         f"({ours_per_call / bolt_per_call:.2f}×)", ours_per_call <= 2 * bolt_per_call),
        (f"give at {large['entries']:,} ≤ 2× at {small['entries']:,}",
         f"{large['give_ms_p50']:.2f} vs {small['give_ms_p50']:.2f} ms "
         f"({large['give_ms_p50'] / small['give_ms_p50']:.2f}×)", large["give_ms_p50"] <= 2 * small["give_ms_p50"]),
        ("no event-loop stall over 15 ms from a store call", f"{max(s['max_loop_stall_ms'] for s in r['store']):.1f} ms",
         all(s["max_loop_stall_ms"] <= 15 for s in r["store"])),  # both backends
        ("peak RSS ≤ 2× the Bolt anchor's", f"{r['acks']['amends_peak_rss_mb']:.0f} vs "
         f"{r['acks']['bolt_peak_rss_mb']:.0f} MB", r["acks"]["amends_peak_rss_mb"] <= 2 * r["acks"]["bolt_peak_rss_mb"]),
        ("start-up ≤ 2 s", f"{r['startup_s']:.2f} s", r["startup_s"] <= 2),
    ]
    return [{"target": t, "measured": m, "met": bool(ok)} for t, m, ok in rows]


def store_row(s: dict) -> str:
    fold = "—" if s["fold_s"] is None else f"{s['fold_s']:.2f}"
    return (f"| {s['backend']} | {s['entries']:,} | {s['give_ms_p50']:.2f} | {s['give_ms_p99']:.2f} | "
            f"{s['open_ms_p50']:.2f} | {s['load_s']:.2f} | {fold} | {s['max_loop_stall_ms']:.1f} |")


def table(r: dict) -> str:
    out = [f"Amends benchmark · {r['when']} · {r['machine']['cpus']} CPUs ({r['machine']['cpu']}), "
           f"Python {r['machine']['python']} · history: {r['history']:,} ledger entries", "",
           "/recover acks (signed, loopback)", "",
           "| server | conc. | requests | req/s | p50 ms | p95 ms | p99 ms | errors | >3 s | CPU ms/req | "
           "API calls/req | CPU ms/call | p50 ÷ floor | p50 ÷ bolt |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    floor = {x["concurrency"]: x for x in r["acks"]["floor"]}
    bolt = {x["concurrency"]: x for x in r["acks"]["bolt"]}
    for name in ("floor", "bolt", "amends"):
        for x in r["acks"][name]:
            calls = x["web_api_calls_per_request"]
            per_call = f"{x['cpu_ms_per_request'] / calls:.2f}" if calls else "—"
            out.append(f"| {name} | {x['concurrency']} | {x['requests']} | {x['rps']:.0f} | {x['p50_ms']:.2f} | "
                       f"{x['p95_ms']:.2f} | {x['p99_ms']:.2f} | {x['errors']} | {x['over_3s']} | "
                       f"{x['cpu_ms_per_request']:.2f} | {calls:.2f} | {per_call} | "
                       f"{x['p50_ms'] / floor[x['concurrency']]['p50_ms']:.1f}× | "
                       f"{x['p50_ms'] / bolt[x['concurrency']]['p50_ms']:.2f}× |")
    out += ["", f"Peak RSS: floor {r['acks']['floor_peak_rss_mb']:.0f} MB · bolt {r['acks']['bolt_peak_rss_mb']:.0f} MB"
            f" · amends {r['acks']['amends_peak_rss_mb']:.0f} MB · start-up to /healthz 200 with the history: "
            f"{r['startup_s']:.2f} s", "", "Whole cases (open → 5 steps → compensate → close → summary)", "",
            "| concurrency | cases | cases/s | Web API calls per case |", "|---:|---:|---:|---:|"]
    out += [f"| {c['concurrency']} | {c['cases']} | {c['cases_per_s']:.2f} | {c['web_api_calls_per_case']:.1f} |"
            for c in r["cases"]]
    out += ["", "Store: check budget + record compensation (give), open a case", "",
            "| store | ledger entries | give p50 ms | give p99 ms | open p50 ms | open/load s | fold s | "
            "longest loop stall ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    out += [store_row(s) for s in r["store"]]
    out += ["", "Targets", "", "| target | measured | met |", "|---|---|---|"]
    out += [f"| {t['target']} | {t['measured']} | {'met' if t['met'] else 'NOT MET'} |" for t in r["targets"]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run, not for RESULTS.md)")
    parser.add_argument("--json", help="where the figures go (default: bench/results.json, or for --quick "
                                       "bench/results-quick.json, which is not kept)")
    args = parser.parse_args()
    args.json = args.json or str(ROOT / "bench" / ("results-quick.json" if args.quick else "results.json"))
    results = asyncio.run(run(args.quick))
    text = table(results)
    print("\n" + text)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not args.quick:
        (ROOT / "bench" / "RESULTS.md").write_text(
            "# Latest benchmark results\n\nCommand: `.venv/bin/python bench/run.py` (from the repository root, "
            "after `./bin/test` has made `.venv`).\n\n" + text + "\n")


if __name__ == "__main__":
    main()
