"""The embedded store: TinyDB's document layout, held in memory with indexes, made durable by a journal.

Why not TinyDB's own tables: every TinyDB insert rebuilds and rewrites the whole table, and every
query scans it, so after a year of history each write costs ~100 ms on the bot's one event loop.
Here the cost of an operation does not grow with history:

- All documents live in memory in TinyDB's layout (``{table: {doc_id: doc}}``) with the indexes
  the store's queries need: a case by id, a person's open cases, an employee's ledger by time.
- Each operation is one transaction. Its changes are applied with an undo log and appended to
  the journal (``<AMENDS_DB>.journal``) as one JSON line, written and fsynced before the caller
  hears "done": a crash loses nothing acknowledged. A torn last line was never acknowledged and
  is dropped on load; a failed append is truncated away and the changes undone.
- When the journal outgrows the data it is folded into the snapshot, the TinyDB JSON file at
  AMENDS_DB: written to a temp file, fsynced, renamed over the old one (then the directory is
  fsynced), and only then is the journal emptied. Each journal line holds whole documents, so
  replaying it over a snapshot that already contains it is harmless: a crash between the two
  steps is safe. The snapshot is written document by document, so the event loop is never
  starved of the GIL for long; after a clean shutdown it alone holds everything, and TinyDB
  itself can open it.
- Every call runs on one worker thread: the one lock all writes go through, and disk I/O stays
  off the event loop.
"""

import asyncio
import heapq
import json
import logging
import os
import tempfile
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from bot.cases import Case
from bot.errors import CaseNotFound, StoreUnavailable
from bot.roles import Role
from bot.store.base import CaseChange, Compensating, Store
from bot.store.codec import (case_from_doc, case_to_doc, entry_from_doc, entry_to_doc, role_from_doc,
                             role_to_doc)

log = logging.getLogger(__name__)

FIRST_CASE_NUMBER = 1001
# Fold the journal into the snapshot once it has more lines than this or than there are documents,
# whichever is larger: the snapshot's cost is then spread evenly over the writes that caused it.
COMPACT_AFTER = 10_000

# How each table finds a document by its natural key (the ledger is append-only and needs none).
KEYS: dict[str, Callable[[dict], tuple] | None] = {
    "cases": lambda d: (d["workspace"], d["id"]),
    "ledger": None,
    "roles": lambda d: (d["workspace"], d["name"]),
    "people": lambda d: (d["workspace"], d["person"]),
    "workspaces": lambda d: (d["workspace"],),
    "counters": lambda d: (d["workspace"],),
    "references": lambda d: (d["workspace"], d["key"]),
    "admins": lambda d: (d["workspace"], d["person"]),
    "seen": lambda d: (d["key"],),
}


class _State:
    """Every document, by table and id, plus the indexes; changed only on the worker thread."""

    def __init__(self):
        self.tables: dict[str, dict[str, dict]] = {name: {} for name in KEYS}
        self.by_key: dict[str, dict[tuple, str]] = {name: {} for name, key in KEYS.items() if key}
        self.last_id: dict[str, int] = {name: 0 for name in KEYS}
        self.open_cases: dict[tuple, dict[str, None]] = defaultdict(dict)  # (workspace, owner) → ids
        self.ledger_by_time: dict[tuple, list] = defaultdict(list)  # (workspace, employee) → [(at, id, amount)]
        self.ledger_order: dict[str, list[str]] = defaultdict(list)  # workspace → ids, in order recorded
        self.seen_expiry: list[tuple[str, str]] = []  # heap of (at, key)

    def __len__(self) -> int:
        return sum(len(docs) for docs in self.tables.values())

    def find(self, table: str, key: tuple) -> tuple[str, dict] | None:
        doc_id = self.by_key[table].get(key)
        return None if doc_id is None else (doc_id, self.tables[table][doc_id])

    def new_id(self, table: str) -> str:
        self.last_id[table] += 1
        return str(self.last_id[table])

    def put(self, table: str, doc_id: str, doc: dict | None) -> None:
        """Set (or, with None, remove) one document and keep every index in step."""
        old = self.tables[table].pop(doc_id, None)
        if old is not None:
            self._unindex(table, doc_id, old)
        if doc is not None:
            self.tables[table][doc_id] = doc
            self._index(table, doc_id, doc)
            self.last_id[table] = max(self.last_id[table], int(doc_id))

    def _index(self, table: str, doc_id: str, doc: dict) -> None:
        if KEYS[table]:
            self.by_key[table][KEYS[table](doc)] = doc_id
        if table == "cases" and doc["closed_at"] is None:
            self.open_cases[(doc["workspace"], doc["owner"])][doc_id] = None
        elif table == "ledger":
            insort(self.ledger_by_time[(doc["workspace"], doc["employee"])],
                   (datetime.fromisoformat(doc["at"]), int(doc_id), Decimal(doc["amount"])))
            self.ledger_order[doc["workspace"]].append(doc_id)
        elif table == "seen":
            heapq.heappush(self.seen_expiry, (doc["at"], doc["key"]))

    def _unindex(self, table: str, doc_id: str, doc: dict) -> None:
        if KEYS[table]:
            self.by_key[table].pop(KEYS[table](doc), None)
        if table == "cases":
            self.open_cases[(doc["workspace"], doc["owner"])].pop(doc_id, None)
        elif table == "ledger":  # only an undone insert removes an entry: it is the newest
            times = self.ledger_by_time[(doc["workspace"], doc["employee"])]
            times.pop(bisect_left(times, (datetime.fromisoformat(doc["at"]), int(doc_id))))
            self.ledger_order[doc["workspace"]].remove(doc_id)
        # seen: a stale heap item is skipped when it surfaces (its document no longer matches)

    def spent(self, workspace: str, employee: str, since: datetime, until: datetime) -> Decimal:
        times = self.ledger_by_time.get((workspace, employee), [])
        start, end = bisect_left(times, (since,)), bisect_left(times, (until,))
        return sum((amount for _, _, amount in times[start:end]), Decimal(0))


class _Transaction:
    """Changes applied at once with an undo log; the journal line is written on commit."""

    def __init__(self, state: _State):
        self.state = state
        self.undo: list[tuple[str, str, dict | None]] = []
        self.records: list[list] = []

    def find(self, table: str, key: tuple) -> dict | None:
        found = self.state.find(table, key)
        return None if found is None else found[1]

    def put(self, table: str, doc: dict) -> None:
        """Insert, or replace the document with the same natural key."""
        found = self.state.find(table, KEYS[table](doc)) if KEYS[table] else None
        doc_id = found[0] if found else self.state.new_id(table)
        self._set(table, doc_id, doc)

    def remove(self, table: str, key: tuple) -> None:
        found = self.state.find(table, key)
        if found:
            self._set(table, found[0], None)

    def _set(self, table: str, doc_id: str, doc: dict | None) -> None:
        self.undo.append((table, doc_id, self.state.tables[table].get(doc_id)))
        self.state.put(table, doc_id, doc)
        self.records.append([table, doc_id, doc])

    def rollback(self) -> None:
        for table, doc_id, previous in reversed(self.undo):
            self.state.put(table, doc_id, previous)


class _Journal:
    """An append-only file of transactions, one JSON line each, fsynced per commit."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.lines = 0
        self.broken = False

    def replay(self, state: _State) -> None:
        """Apply every complete line; drop a torn last line (its commit never returned)."""
        with open(self.path, "rb") as file:
            data = file.read()
        good = 0
        for number, line in enumerate(data.split(b"\n")[:-1], start=1):
            try:
                records = json.loads(line)
            except ValueError:
                if good + len(line) + 1 == len(data):
                    break  # a torn last line
                raise ValueError(f"{self.path} is damaged at line {number}; restore it from a backup") from None
            for table, doc_id, doc in records:
                state.put(table, doc_id, doc)
            good += len(line) + 1
            self.lines += 1
        if good != len(data):
            log.warning("dropping an unfinished last line of %s (a write interrupted by a crash)", self.path)
            os.ftruncate(self.fd, good)
            os.fsync(self.fd)
        self.size = good

    def append(self, records: list) -> None:
        if self.broken:
            raise OSError("the journal could not be repaired after a failed write; restart Amends")
        line = (json.dumps(records, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            _append_line(self.fd, line)
        except OSError:
            try:  # take back whatever part of the line reached the file
                os.ftruncate(self.fd, self.size)
            except OSError:
                self.broken = True
            raise
        self.size += len(line)
        self.lines += 1

    def clear(self) -> None:
        os.ftruncate(self.fd, 0)
        os.fsync(self.fd)
        self.size = self.lines = 0

    def close(self) -> None:
        os.close(self.fd)


def _append_line(fd: int, line: bytes) -> None:
    written = os.write(fd, line)
    if written != len(line):
        raise OSError(f"short write ({written} of {len(line)} bytes)")
    os.fsync(fd)


def _write_snapshot(path: Path, tables: dict[str, dict[str, dict]]) -> None:
    """TinyDB's JSON layout, written atomically and one document at a time."""
    fd, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("{")
            for t, (table, docs) in enumerate(tables.items()):
                file.write(("," if t else "") + json.dumps(table) + ":{")
                for d, (doc_id, doc) in enumerate(docs.items()):
                    file.write(("," if d else "") + json.dumps(doc_id) + ":"
                               + json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
                file.write("}")
            file.write("}")
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
    """The embedded store: files at `path` (the snapshot) and `path`.journal, or memory only when path is None."""

    def __init__(self, path: str | None = None):
        self._path = Path(path) if path else None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amends-store")
        self._state = _State()
        self._journal: _Journal | None = None
        if self._path is not None:
            self._load()

    def _load(self) -> None:
        path = self._path
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(path.name + ".*.tmp"):  # a snapshot a crash left unfinished
            stale.unlink(missing_ok=True)
        if path.exists() and path.stat().st_size:
            try:
                tables = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise ValueError(f"{path} is not a valid Amends store ({error}); "
                                 "restore it from a backup or point AMENDS_DB elsewhere") from None
            for table, docs in tables.items():
                if table in KEYS:
                    for doc_id, doc in docs.items():
                        self._state.put(table, doc_id, doc)
        self._journal = _Journal(Path(str(path) + ".journal"))
        self._journal.replay(self._state)

    async def _run(self, fn, *, write: bool):
        """Run fn on the store's thread: a read gets the state, a write a transaction committed to the journal."""
        def call():
            if not write:
                return fn(self._state)
            transaction = _Transaction(self._state)
            try:
                result = fn(transaction)
                if transaction.records and self._journal is not None:
                    self._journal.append(transaction.records)
            except BaseException:
                transaction.rollback()
                raise
            self._maybe_compact()
            return result
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, call)
        except OSError as error:
            log.error("store write failed, nothing recorded: %s", error)
            raise StoreUnavailable() from error

    def _maybe_compact(self) -> None:
        journal = self._journal
        if journal is not None and journal.lines > max(COMPACT_AFTER, len(self._state)):
            try:
                self._compact()
            except OSError as error:  # the journal still holds everything; try again later
                log.warning("could not fold the journal into %s: %s", self._path, error)

    def _compact(self) -> None:
        _write_snapshot(self._path, self._state.tables)
        self._journal.clear()

    # --- cases -------------------------------------------------------------------------------
    async def open_case(self, *, workspace, build):
        def op(tx: _Transaction):
            counter = tx.find("counters", (workspace,))
            number = counter["next"] if counter else FIRST_CASE_NUMBER
            case = build(number)
            tx.put("counters", {"workspace": workspace, "next": number + 1})
            tx.put("cases", case_to_doc(case))
            return case
        return await self._run(op, write=True)

    async def get_case(self, *, workspace, case_id):
        def op(state: _State):
            found = state.find("cases", (workspace, case_id))
            return None if found is None else case_from_doc(found[1])
        return await self._run(op, write=False)

    @staticmethod
    def _load_case(tx: _Transaction, workspace: str, case_id: str) -> Case:
        doc = tx.find("cases", (workspace, case_id))
        if doc is None:
            raise CaseNotFound(f"There is no case {case_id} here.")
        return case_from_doc(doc)

    async def change_case(self, *, workspace, case_id, change: CaseChange):
        def op(tx: _Transaction):
            case = change(self._load_case(tx, workspace, case_id))
            tx.put("cases", case_to_doc(case))
            return case
        return await self._run(op, write=True)

    async def compensate_case(self, *, workspace, case_id, employee, since, until, change: Compensating):
        def op(tx: _Transaction):
            case = self._load_case(tx, workspace, case_id)
            case, entry = change(case, tx.state.spent(workspace, employee, since, until))
            if entry is not None:
                tx.put("ledger", entry_to_doc(entry))
            tx.put("cases", case_to_doc(case))
            return case, entry
        return await self._run(op, write=True)

    async def open_cases(self, *, workspace, owner):
        def op(state: _State):
            docs = state.tables["cases"]
            cases = [case_from_doc(docs[i]) for i in state.open_cases.get((workspace, owner), {})]
            return sorted(cases, key=lambda c: c.opened_at)
        return await self._run(op, write=False)

    # --- ledger ------------------------------------------------------------------------------
    async def spent(self, *, workspace, employee, since, until):
        return await self._run(lambda state: state.spent(workspace, employee, since, until), write=False)

    async def ledger(self, *, workspace):
        def op(state: _State):
            docs = state.tables["ledger"]
            return [entry_from_doc(docs[i]) for i in state.ledger_order.get(workspace, [])]
        return await self._run(op, write=False)

    # --- roles and people --------------------------------------------------------------------
    async def role(self, *, workspace, name):
        def op(state: _State):
            found = state.find("roles", (workspace, name))
            return None if found is None else role_from_doc(found[1])
        return await self._run(op, write=False)

    async def roles(self, *, workspace):
        def op(state: _State):
            docs = (doc for doc in state.tables["roles"].values() if doc["workspace"] == workspace)
            return sorted((role_from_doc(doc) for doc in docs), key=lambda r: r.name)
        return await self._run(op, write=False)

    async def put_role(self, *, role: Role):
        await self._run(lambda tx: tx.put("roles", role_to_doc(role)), write=True)

    async def role_of(self, *, workspace, person):
        def op(state: _State):
            found = state.find("people", (workspace, person))
            return None if found is None else found[1]["role"]
        return await self._run(op, write=False)

    async def assign(self, *, workspace, person, role):
        await self._run(lambda tx: tx.put("people", {"workspace": workspace, "person": person, "role": role}),
                        write=True)

    # --- workspace ---------------------------------------------------------------------------
    async def recovery_channel(self, *, workspace):
        def op(state: _State):
            found = state.find("workspaces", (workspace,))
            return None if found is None else found[1].get("recovery_channel")
        return await self._run(op, write=False)

    async def set_recovery_channel(self, *, workspace, channel):
        await self._run(lambda tx: tx.put("workspaces", {"workspace": workspace, "recovery_channel": channel}),
                        write=True)

    # --- platform addresses and grants -------------------------------------------------------
    async def put_reference(self, *, workspace, key, value):
        await self._run(lambda tx: tx.put("references", {"workspace": workspace, "key": key, "value": value}),
                        write=True)

    async def reference(self, *, workspace, key):
        def op(state: _State):
            found = state.find("references", (workspace, key))
            return None if found is None else found[1]["value"]
        return await self._run(op, write=False)

    async def grant_admin(self, *, workspace, person):
        await self._run(lambda tx: tx.put("admins", {"workspace": workspace, "person": person}), write=True)

    async def granted_admins(self, *, workspace):
        def op(state: _State):
            return {doc["person"] for doc in state.tables["admins"].values() if doc["workspace"] == workspace}
        return await self._run(op, write=False)

    # --- idempotency -------------------------------------------------------------------------
    async def first_time(self, *, key, at, keep):
        def op(tx: _Transaction):
            horizon = (at - keep).astimezone(timezone.utc).isoformat()
            expiry = tx.state.seen_expiry
            while expiry and expiry[0][0] < horizon:  # forget expired keys first, so an old key counts as new
                seen_at, seen_key = heapq.heappop(expiry)
                doc = tx.find("seen", (seen_key,))
                if doc is not None and doc["at"] == seen_at:
                    tx.remove("seen", (seen_key,))
            if tx.find("seen", (key,)) is not None:
                return False
            tx.put("seen", {"key": key, "at": at.astimezone(timezone.utc).isoformat()})
            return True
        return await self._run(op, write=True)

    async def close(self):
        def finish():
            if self._journal is not None:
                if self._journal.lines:
                    try:
                        self._compact()  # leave one complete TinyDB file behind
                    except OSError as error:  # the journal still holds everything
                        log.warning("could not fold the journal into %s on close: %s", self._path, error)
                self._journal.close()
                self._journal = None
        await asyncio.get_running_loop().run_in_executor(self._worker, finish)
        self._worker.shutdown(wait=True)
