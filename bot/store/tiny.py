"""The embedded store: TinyDB documents in one JSON file, written crash-safely.

Why not TinyDB's JSONStorage: it truncates and rewrites the file in place, so a crash
mid-write tears it. Ours writes a temp file, fsyncs it, renames it over the old one and
fsyncs the directory: a kill at any moment leaves the old state or the new one.

Why a transaction: "check the budget and append the ledger entry" touches two tables;
TinyDB would write the file once per table. AtomicStorage buffers the writes of one
operation and commits them in a single atomic file write, or rolls them all back.

Why one worker thread: every call runs on a single-thread executor, which is the one
lock all writes go through, and keeps file I/O off the event loop so acks never wait on disk.
"""

import asyncio
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from bot.cases import Case
from bot.errors import CaseNotFound, StoreUnavailable
from bot.ledger import LedgerEntry
from bot.roles import Role
from bot.store.base import CaseChange, Compensating, Store
from bot.store.codec import (case_from_doc, case_to_doc, entry_from_doc, entry_to_doc, role_from_doc,
                             role_to_doc)

log = logging.getLogger(__name__)

FIRST_CASE_NUMBER = 1001


class AtomicStorage(Storage):
    """TinyDB storage held in memory and, when given a path, persisted atomically."""

    def __init__(self, path: str | None = None):
        self._path = Path(path) if path else None
        self._committed = "{}"
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            if self._path.exists():
                self._committed = self._path.read_text(encoding="utf-8") or "{}"
        try:
            self._data = json.loads(self._committed)
        except json.JSONDecodeError as error:
            raise ValueError(f"{self._path} is not a valid Amends store ({error}); "
                             "restore it from a backup or point AMENDS_DB elsewhere") from None
        self._in_transaction = False
        self._dirty = False

    def read(self) -> dict:
        return self._data

    def write(self, data: dict) -> None:
        self._data = data
        if self._in_transaction:
            self._dirty = True
        else:
            self._persist()

    def begin(self) -> None:
        self._in_transaction, self._dirty = True, False

    def commit(self) -> None:
        self._in_transaction = False
        if self._dirty:
            self._persist()

    def rollback(self) -> None:
        self._in_transaction = False
        self._data = json.loads(self._committed)

    def _persist(self) -> None:
        text = json.dumps(self._data, ensure_ascii=False, separators=(",", ":"))
        try:
            if self._path is not None:
                _write_atomically(self._path, text)
        except BaseException:
            self._data = json.loads(self._committed)  # memory must not run ahead of the disk
            raise
        self._committed = text

    def close(self) -> None:
        pass


def _write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class TinyStore(Store):
    """TinyDB on AtomicStorage: a file at `path`, or memory only when path is None."""

    def __init__(self, path: str | None = None):
        self._storage_path = path
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amends-store")
        self._db = TinyDB(storage=AtomicStorage, path=path)
        self._storage: AtomicStorage = self._db.storage
        if path is not None:
            _remove_stale_temp_files(Path(path))

    async def _run(self, fn, *, write: bool):
        """Run fn(db) on the store's thread; a write runs as one transaction."""
        def call():
            if not write:
                return fn(self._db)
            self._storage.begin()
            try:
                result = fn(self._db)
                self._storage.commit()
                return result
            except BaseException:
                self._storage.rollback()
                self._db.clear_cache()
                raise
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, call)
        except OSError as error:
            log.error("store write failed, nothing recorded: %s", error)
            raise StoreUnavailable() from error

    # --- cases -------------------------------------------------------------------------------
    async def open_case(self, *, workspace, build):
        def op(db):
            counters = db.table("counters")
            row = counters.get(Query().workspace == workspace)
            number = row["next"] if row else FIRST_CASE_NUMBER
            counters.upsert({"workspace": workspace, "next": number + 1}, Query().workspace == workspace)
            case = build(number)
            db.table("cases").insert(case_to_doc(case))
            return case
        return await self._run(op, write=True)

    async def get_case(self, *, workspace, case_id):
        def op(db):
            doc = db.table("cases").get((Query().workspace == workspace) & (Query().id == case_id))
            return None if doc is None else case_from_doc(doc)
        return await self._run(op, write=False)

    @staticmethod
    def _load(db, workspace: str, case_id: str) -> Case:
        doc = db.table("cases").get((Query().workspace == workspace) & (Query().id == case_id))
        if doc is None:
            raise CaseNotFound(f"There is no case {case_id} here.")
        return case_from_doc(doc)

    @staticmethod
    def _save(db, case: Case) -> None:
        db.table("cases").update(case_to_doc(case), (Query().workspace == case.workspace) & (Query().id == case.id))

    async def change_case(self, *, workspace, case_id, change: CaseChange):
        def op(db):
            case = change(self._load(db, workspace, case_id))
            self._save(db, case)
            return case
        return await self._run(op, write=True)

    async def compensate_case(self, *, workspace, case_id, employee, since, until, change: Compensating):
        def op(db):
            case = self._load(db, workspace, case_id)
            spent = _sum(db, workspace, employee, since, until)
            case, entry = change(case, spent)
            if entry is not None:
                db.table("ledger").insert(entry_to_doc(entry))
            self._save(db, case)
            return case, entry
        return await self._run(op, write=True)

    async def open_cases(self, *, workspace, owner):
        def op(db):
            docs = db.table("cases").search(
                (Query().workspace == workspace) & (Query().owner == owner) & (Query().closed_at == None))  # noqa: E711
            return sorted((case_from_doc(d) for d in docs), key=lambda c: c.opened_at)
        return await self._run(op, write=False)

    # --- ledger ------------------------------------------------------------------------------
    async def spent(self, *, workspace, employee, since, until):
        return await self._run(lambda db: _sum(db, workspace, employee, since, until), write=False)

    async def ledger(self, *, workspace):
        def op(db):
            return [entry_from_doc(d) for d in db.table("ledger").search(Query().workspace == workspace)]
        return await self._run(op, write=False)

    # --- roles and people --------------------------------------------------------------------
    async def role(self, *, workspace, name):
        def op(db):
            doc = db.table("roles").get((Query().workspace == workspace) & (Query().name == name))
            return None if doc is None else role_from_doc(doc)
        return await self._run(op, write=False)

    async def roles(self, *, workspace):
        def op(db):
            return sorted((role_from_doc(d) for d in db.table("roles").search(Query().workspace == workspace)),
                          key=lambda r: r.name)
        return await self._run(op, write=False)

    async def put_role(self, *, role: Role):
        def op(db):
            db.table("roles").upsert(role_to_doc(role),
                                     (Query().workspace == role.workspace) & (Query().name == role.name))
        await self._run(op, write=True)

    async def role_of(self, *, workspace, person):
        def op(db):
            doc = db.table("people").get((Query().workspace == workspace) & (Query().person == person))
            return None if doc is None else doc["role"]
        return await self._run(op, write=False)

    async def assign(self, *, workspace, person, role):
        def op(db):
            db.table("people").upsert({"workspace": workspace, "person": person, "role": role},
                                      (Query().workspace == workspace) & (Query().person == person))
        await self._run(op, write=True)

    # --- workspace ---------------------------------------------------------------------------
    async def recovery_channel(self, *, workspace):
        def op(db):
            doc = db.table("workspaces").get(Query().workspace == workspace)
            return None if doc is None else doc.get("recovery_channel")
        return await self._run(op, write=False)

    async def set_recovery_channel(self, *, workspace, channel):
        def op(db):
            db.table("workspaces").upsert({"workspace": workspace, "recovery_channel": channel},
                                          Query().workspace == workspace)
        await self._run(op, write=True)

    # --- platform addresses and grants -------------------------------------------------------
    async def put_reference(self, *, workspace, key, value):
        def op(db):
            db.table("references").upsert({"workspace": workspace, "key": key, "value": value},
                                          (Query().workspace == workspace) & (Query().key == key))
        await self._run(op, write=True)

    async def reference(self, *, workspace, key):
        def op(db):
            doc = db.table("references").get((Query().workspace == workspace) & (Query().key == key))
            return None if doc is None else doc["value"]
        return await self._run(op, write=False)

    async def grant_admin(self, *, workspace, person):
        def op(db):
            db.table("admins").upsert({"workspace": workspace, "person": person},
                                      (Query().workspace == workspace) & (Query().person == person))
        await self._run(op, write=True)

    async def granted_admins(self, *, workspace):
        def op(db):
            return {doc["person"] for doc in db.table("admins").search(Query().workspace == workspace)}
        return await self._run(op, write=False)

    # --- idempotency -------------------------------------------------------------------------
    async def first_time(self, *, key, at, keep):
        def op(db):
            seen = db.table("seen")
            horizon = (at - keep).astimezone(timezone.utc).isoformat()
            seen.remove(Query().at < horizon)  # forget expired keys first, so an old key counts as new
            if seen.get(Query().key == key) is not None:
                return False
            seen.insert({"key": key, "at": at.astimezone(timezone.utc).isoformat()})
            return True
        return await self._run(op, write=True)

    async def close(self):
        await asyncio.get_running_loop().run_in_executor(self._worker, self._db.close)
        self._worker.shutdown(wait=True)


def _sum(db, workspace: str, employee: str, since: datetime, until: datetime) -> Decimal:
    total = Decimal(0)
    for doc in db.table("ledger").search((Query().workspace == workspace) & (Query().employee == employee)):
        if since <= datetime.fromisoformat(doc["at"]) < until:
            total += Decimal(doc["amount"])
    return total


def _remove_stale_temp_files(path: Path) -> None:
    """A crash between writing a temp file and renaming it leaves the temp behind; it was never committed."""
    for stale in path.parent.glob(path.name + ".*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass
