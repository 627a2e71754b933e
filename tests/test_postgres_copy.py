"""`python -m bot.store.copy`: a TinyDB file into PostgreSQL and back, verified, never over data unless told."""

import asyncio
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cases import MessageRef
from bot.checklist import Step
from bot.recovery import Recovery
from bot.store.copy import CopyFailed, copy_store
from bot.store.migrations import known_migrations
from bot.store.postgres import SNAPSHOT_TABLES, PostgresStore
from bot.store.tiny import TinyStore
from tests.test_postgres import MONDAY, TEST_URL, FakeClock, fresh_schema, rows, url_for

ROOT = Path(__file__).resolve().parents[1]
W1, W2 = "T-one", "T-two"
PEOPLE = ("U1", "U2", "U3")
KEYS = ("event:E1", "action:T-one:U1:give:1.1")


async def fill(store) -> None:
    """A store that looks lived in: two workspaces and currencies, cases at every step, every table used."""
    clock = FakeClock(MONDAY)
    usd = Recovery(store=store, clock=clock, currency="USD", tz=ZoneInfo("UTC"))
    eur = Recovery(store=store, clock=clock, currency="EUR", tz=ZoneInfo("Europe/Paris"))
    await usd.set_limit(workspace=W1, role="server", limit="25", budget="100/week")
    await usd.set_limit(workspace=W1, role="lead", limit="75.50", budget="none")
    await usd.assign_role(workspace=W1, person="U1", role="server")
    await usd.assign_role(workspace=W1, person="U2", role="lead")
    await usd.set_recovery_channel(workspace=W1, channel="CREC")
    await store.put_reference(workspace=W1, key="person:U1", value={"conversation": {"id": "19:é@thread"}, "n": [1]})
    await store.grant_admin(workspace=W1, person="U3")
    for recovery, workspace, owner, amount in ((usd, W1, "U1", "12.50"), (usd, W1, "U1", "25"),
                                               (usd, W1, "U2", "75.50"), (eur, W2, "U1", "9.99"),
                                               (usd, W1, "U1", None), (usd, W1, "U3", "")):
        clock.at += timedelta(minutes=7)
        case = await recovery.open_case(workspace=workspace, owner=owner, owner_name=owner.lower(),
                                        what_happened=f"cold soup “{owner}”", customer="table 4")
        case = await recovery.remember_post(workspace=workspace, case_id=case.id, card=MessageRef("C1", f"{clock.at.timestamp()}"))
        if amount is None:
            continue  # left open at the first step
        for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
            await recovery.complete_step(workspace=workspace, case_id=case.id, actor=owner, step=step, note="n")
        if amount:
            await recovery.give(workspace=workspace, case_id=case.id, actor=owner, kind="voucher", amount_text=amount)
        else:
            await recovery.nothing_needed(workspace=workspace, case_id=case.id, actor=owner)
        await recovery.follow_up(workspace=workspace, case_id=case.id, actor=owner, on=date(2026, 3, 9))
        await recovery.remember_post(workspace=workspace, case_id=case.id, summary=MessageRef("CREC", "9.9"))
    for key in KEYS:
        await usd.first_time(key)
    # What is owed now (follow-up reminders due 2026-03-09, idle nudges, the first digest, close markers) moves too.


async def everything(store) -> dict:
    """All a bot can read from a store, through the Store interface."""
    seen: dict = {}
    for workspace in (W1, W2):
        ledger = await store.ledger(workspace=workspace)
        cases = {}
        for number in range(1001, 1010):
            case = await store.get_case(workspace=workspace, case_id=f"R-{number}")
            if case is not None:
                cases[case.id] = case
        seen[workspace] = {
            "cases": cases, "ledger": ledger, "roles": await store.roles(workspace=workspace),
            "people": {p: await store.role_of(workspace=workspace, person=p) for p in PEOPLE},
            "open": {p: await store.open_cases(workspace=workspace, owner=p) for p in PEOPLE},
            "channel": await store.recovery_channel(workspace=workspace),
            "reference": await store.reference(workspace=workspace, key="person:U1"),
            "admins": await store.granted_admins(workspace=workspace),
        }
    seen["owed"] = [(m.key, m.kind, m.case_id, m.body, m.due) for m in await store.owed_outbox()]
    return seen


async def copy_command(*args: str) -> tuple[int, str, str]:
    """Run the real command, the way an operator types it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.store.copy", *args, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def tiny_file(tmp_path) -> Path:
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    try:
        await fill(store)
    finally:
        await store.close()
    return path


async def read_tiny(path: Path) -> dict:
    store = TinyStore(path=str(path))
    try:
        return await everything(store)
    finally:
        await store.close()


async def test_a_tinydb_file_goes_into_postgresql_and_back_unchanged(tiny_file, tmp_path):
    before = await read_tiny(tiny_file)
    kinds = {kind for _, kind, *_ in before["owed"]}
    assert {"followup.reminder", "digest"} <= kinds, kinds  # scheduled messages are part of what moves
    assert len(before[W1]["ledger"]) == 3 and len(before[W2]["ledger"]) == 1 and before[W1]["admins"] == {"U3"}
    async with fresh_schema() as schema:
        code, out, err = await copy_command(str(tiny_file), url_for(schema))
        assert code == 0, err
        assert "ledger total T-one USD: 113.00" in out and "ledger total T-two EUR: 9.99" in out, out
        assert "  cases              6" in out and "  seen               2" in out, out

        store = PostgresStore(url=TEST_URL, schema=schema)
        await store.open()
        try:
            assert await everything(store) == before
            for key in KEYS:  # a delivery handled before the move is still recognised after it
                assert await store.first_time(key=key, at=MONDAY + timedelta(hours=2), keep=timedelta(days=1)) is False
        finally:
            await store.close()
        assert [r["version"] for r in await rows(schema, "SELECT version FROM schema_migrations")] == [
            m.version for m in known_migrations()]

        back = tmp_path / "back" / "amends.json"
        code, out, err = await copy_command(url_for(schema), str(back))
        assert code == 0, err
        assert "ledger total T-one USD: 113.00" in out
    assert await read_tiny(back) == before
    original, copied = json.loads(tiny_file.read_text()), json.loads(back.read_text())
    assert {t for t in original if not t.startswith("_")} == set(SNAPSHOT_TABLES)  # the copy knows every table

    def documents(data: dict, table: str) -> list[str]:  # what each document says, in any key order
        return sorted(json.dumps(doc, sort_keys=True) for doc in data[table].values())
    for table in SNAPSHOT_TABLES:
        assert documents(original, table) == documents(copied, table), table

    reopened = TinyStore(path=str(back))  # the counter came along: the next case number follows on
    try:
        case = await Recovery(store=reopened, clock=FakeClock(), currency="USD", tz=ZoneInfo("UTC")).open_case(
            workspace=W1, owner="U1", owner_name="u1", what_happened="x")
        assert case.id == "R-1006"
    finally:
        await reopened.close()


async def test_a_database_that_holds_data_is_not_overwritten_unless_forced(tiny_file, tmp_path):
    async with fresh_schema() as schema:
        await copy_store(source=str(tiny_file), target=url_for(schema))
        other = tmp_path / "other.json"
        await _one_case_store(other)

        code, out, err = await copy_command(str(other), url_for(schema))
        assert code == 1 and out == ""
        assert "Nothing was copied" in err and "already holds data (2 counters, 6 cases, 4 ledger" in err and "--force" in err
        assert len(await rows(schema, "SELECT id FROM cases")) == 6  # untouched

        summary = await copy_store(source=str(other), target=url_for(schema), force=True)
        assert summary.counts["cases"] == 1 and summary.ledger_totals == {}
        assert [r["owner"] for r in await rows(schema, "SELECT owner FROM cases")] == ["U9"]
        assert await rows(schema, "SELECT * FROM ledger") == []


async def test_a_tinydb_file_that_holds_data_is_not_overwritten_unless_forced(tiny_file, tmp_path):
    target = tmp_path / "target.json"
    await _one_case_store(target)
    before = await read_tiny(target)
    async with fresh_schema() as schema:
        await copy_store(source=str(tiny_file), target=url_for(schema))
        with pytest.raises(CopyFailed, match=r"already holds data \(1 counters, 1 cases, 1 owed messages\).*--force"):
            await copy_store(source=url_for(schema), target=str(target))
        assert await read_tiny(target) == before
        summary = await copy_store(source=url_for(schema), target=str(target), force=True)
    assert summary.counts["cases"] == 6
    assert await read_tiny(target) == await read_tiny(tiny_file)


async def _one_case_store(path: Path) -> None:
    store = TinyStore(path=str(path))
    try:
        await Recovery(store=store, clock=FakeClock(), currency="USD", tz=ZoneInfo("UTC")).open_case(
            workspace=W1, owner="U9", owner_name="u9", what_happened="a different store")
    finally:
        await store.close()


async def test_what_cannot_be_copied_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(CopyFailed, match="There is no TinyDB file at"):
        await copy_store(source=str(tmp_path / "missing.json"), target=str(tmp_path / "t.json"))
    with pytest.raises(CopyFailed, match="keeps nothing"):
        await copy_store(source=":memory:", target=str(tmp_path / "t.json"))
    assert not (tmp_path / "t.json").exists()


async def test_a_message_that_may_already_have_arrived_stops_the_copy(tmp_path):
    path = tmp_path / "amends.json"
    store = TinyStore(path=str(path))
    try:
        await fill(store)
        first = (await store.owed_outbox())[0]
        await store.try_outbox(key=first.key, at=first.due + timedelta(days=30), lease=timedelta(seconds=30))
    finally:
        await store.close()
    target = tmp_path / "copy.json"
    with pytest.raises(CopyFailed, match="may already have reached Slack or Teams") as refused:
        await copy_store(source=str(path), target=str(target))
    assert first.key in str(refused.value) and not target.exists()
