"""The embedded store: TinyDB's JSON layout on disk, a journal for every write, and a small index in memory.

Why not TinyDB's own tables: every TinyDB insert rebuilds and rewrites the whole table and every
query scans it, so after a year of history each write costs ~100 ms on the bot's one event loop;
and holding every document in memory instead costs ~5 kB per case (hundreds of MB for a year).
Here both time and memory per operation stay flat as history grows:

- Documents live on disk. Memory holds where each case is (file, offset, length), the documents
  of *open* cases (the ones being worked on), the small tables (roles, people, settings), and for
  each employee the times and amounts of their ledger entries in compact arrays, which is all a
  budget check needs. Closed cases and ledger entries are read from disk when asked for.
- Each operation is one transaction. Its writes are buffered, appended to the journal
  (``<AMENDS_DB>.journal``) as one JSON line, written and fsynced, and only then applied to
  memory, so a failed write leaves nothing to undo and nothing acknowledged is ever lost. A torn
  last line (a crash mid-append: its commit never returned) is dropped on load.
- When the journal outgrows the data it is folded into the snapshot, the TinyDB JSON file at
  AMENDS_DB, one document per line (still valid JSON that TinyDB itself opens): written to a temp
  file, fsynced, renamed over the old one, the directory fsynced, and only then is the journal
  emptied. The journal starts with its generation number and the snapshot records the last
  generation folded into it, so a journal the snapshot already holds (a crash between the two
  steps) is recognised and emptied instead of replayed: nothing is ever counted twice.
- Every call runs on one worker thread: the one lock all writes go through, and disk I/O stays off
  the event loop. Work is done a document at a time, so the event loop never waits long for the GIL.
"""

import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
from array import array
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from bot.cases import Case
from bot.errors import CaseNotFound, StoreUnavailable
from bot.outbox import OutboxMessage, as_doc, from_doc
from bot.roles import Role
from bot.store.base import CaseChange, Compensating, Store, customer_key
from bot.store.codec import (case_from_doc, case_to_doc, entry_from_doc, entry_to_doc, role_from_doc,
                             role_to_doc)

log = logging.getLogger(__name__)

FIRST_CASE_NUMBER = 1001
# Fold the journal into the snapshot once it has more lines than this or than there are documents,
# whichever is larger: the fold's cost is then spread evenly over the writes that caused it.
COMPACT_AFTER = 10_000
# Ledger amounts are indexed as integers of 1/10,000 of a unit: exact for currencies of 0–4 decimals.
SCALE = 10_000

# Tables kept whole in memory, and how each finds a document by its natural key.
SMALL: dict[str, Callable[[dict], tuple]] = {
    "roles": lambda d: (d["workspace"], d["name"]),
    "people": lambda d: (d["workspace"], d["person"]),
    "workspaces": lambda d: (d["workspace"],),
    "counters": lambda d: (d["workspace"],),
    "references": lambda d: (d["workspace"], d["key"]),
    "admins": lambda d: (d["workspace"], d["person"]),
    "seen": lambda d: (d["key"],),
    "_outbox": lambda d: (d["key"],),  # only what is owed (a message leaves once sent); not copied: see copy.py
}
LARGE = ("cases", "ledger")  # kept on disk; memory holds their index
TABLES = (*LARGE, *SMALL)
SNAPSHOT, JOURNAL = 0, 1
META = "_amends"  # a table of one document in the snapshot: {"folded": the journal generation it holds}


def _where(file: int, offset: int, length: int, index: int = 0) -> int:
    """A document's place in 64 bits: which file (1), byte offset (38: 256 GB), length (20: 1 MB) and
    index in a journal line (5: case and ledger documents come first in a line, at most a few)."""
    if offset >= 1 << 38 or length >= 1 << 20 or index >= 1 << 5:
        raise OSError(f"a document's place is out of range (offset {offset}, length {length}, index {index})")
    return file << 63 | offset << 25 | length << 5 | index


def _unpack(where: int) -> tuple[int, int, int, int]:
    return where >> 63, (where >> 25) & (2**38 - 1), (where >> 5) & (2**20 - 1), where & 31


def _oldest_first(case: Case) -> tuple:
    """Open cases by when they were opened, then by number (two can open in the same instant)."""
    return case.opened_at, len(case.id), case.id


def _case_key(workspace: str, case_id: str) -> str:
    return f"{workspace}\x1f{case_id}"


class _Places:
    """Where each case of one workspace is on disk. Case ids are R-<number> from FIRST_CASE_NUMBER up, so a
    case's slot is its number − FIRST_CASE_NUMBER and its place is one 8-byte entry of an array (a dict of
    keys and ints would cost ~130 bytes a case: 13 MB at 100k). Any other id gets a negative slot."""

    __slots__ = ("where", "other_slots", "other_ids", "count")

    def __init__(self):
        self.where = array("Q")  # slot → place (0: no case there)
        self.other_slots: dict[str, int] = {}  # an id not of the R-<number> form → its (negative) slot
        self.other_ids: dict[int, tuple[str, int]] = {}  # negative slot → (id, place)
        self.count = 0

    def slot(self, case_id: str, *, add: bool = False) -> int | None:
        """The case's slot (None: unknown, unless `add`, which gives it one)."""
        slot = self.other_slots.get(case_id)
        if slot is not None:
            return slot
        number = case_id[2:]
        if case_id.startswith("R-") and number.isdigit() and number[0] != "0":
            slot = int(number) - FIRST_CASE_NUMBER
            if 0 <= slot < len(self.where) + 100_000:  # sequential numbers: the array grows as cases open
                return slot
        if not add:
            return None
        slot = self.other_slots[case_id] = -1 - len(self.other_slots)
        return slot

    def case_id(self, slot: int) -> str:
        return f"R-{slot + FIRST_CASE_NUMBER}" if slot >= 0 else self.other_ids[slot][0]

    def get(self, slot: int) -> int:
        if slot < 0:
            return self.other_ids.get(slot, ("", 0))[1]
        return self.where[slot] if slot < len(self.where) else 0

    def put(self, slot: int, case_id: str, where: int) -> None:
        if not self.get(slot):
            self.count += 1
        if slot < 0:
            self.other_ids[slot] = (case_id, where)
            return
        if slot >= len(self.where):
            self.where.frombytes(bytes(8 * (slot + 1 - len(self.where))))
        self.where[slot] = where

    def items(self) -> Iterator[tuple[str, int]]:
        """(case id, place) of every case, regular ones in number order."""
        for slot, where in enumerate(self.where):
            if where:
                yield self.case_id(slot), where
        for case_id, where in self.other_ids.values():
            yield case_id, where


class _Ledger:
    """One employee's ledger entries as three parallel arrays, ordered by time."""

    __slots__ = ("times", "amounts", "places")

    def __init__(self):
        self.times, self.amounts, self.places = array("d"), array("q"), array("Q")

    def add(self, at: float, amount: int, where: int) -> None:
        i = bisect_left(self.times, at)
        while i < len(self.times) and self.times[i] == at:
            i += 1  # after equal times, so entries keep the order they were recorded in
        self.times.insert(i, at)
        self.amounts.insert(i, amount)
        self.places.insert(i, where)

    def total(self, since: float, until: float) -> int:
        return sum(self.amounts[bisect_left(self.times, since):bisect_left(self.times, until)])


class _TimeIndex:
    """One workspace's cases (their slots) by a time (opened, closed; the ledger's entries by when given): 12 bytes
    each. They arrive in time order as they are saved, so a read is a bisection; a store whose snapshot isn't in
    time order (an import, a generated one) is scanned instead, which costs milliseconds per read but never a
    sort's transient copy of the whole index."""

    __slots__ = ("times", "keys", "ordered")

    def __init__(self):
        self.times, self.keys, self.ordered = array("d"), array("i"), True  # keys: slots (_Places), 4 bytes

    def add(self, at: float, slot: int) -> None:
        if self.times and at < self.times[-1]:
            self.ordered = False
        self.times.append(at)
        self.keys.append(slot)

    def between(self, since: float, until: float) -> list[tuple[float, int]]:
        """(time, slot) with a time in [since, until), in time order (equal times: in the order added)."""
        if self.ordered:
            start, end = bisect_left(self.times, since), bisect_left(self.times, until)
            return list(zip(self.times[start:end], self.keys[start:end]))
        found = [(at, i) for i, at in enumerate(self.times) if since <= at < until]
        found.sort()
        return [(at, self.keys[i]) for at, i in found]


class _State:
    """What memory holds; changed only on the worker thread, and only after a write is durable."""

    def __init__(self):
        self.small: dict[str, dict[tuple, dict]] = {name: {} for name in SMALL}
        self.places: dict[str, _Places] = {}  # workspace → where each of its cases' documents is
        self.open: dict[str, dict] = {}  # case key → document, for cases not closed
        self.open_by_owner: dict[tuple, dict[str, None]] = defaultdict(dict)  # insertion-ordered
        # Each workspace's cases by when they were opened: two parallel sequences (16 bytes a case).
        self.opened: dict[str, _TimeIndex] = {}
        # Each workspace's cases by when they closed (a case closed again after a reopening is listed again;
        # a read keeps only entries that match the document's closed_at).
        self.closed: dict[str, _TimeIndex] = {}
        # Case slots by hash((workspace, customer key)); a hit is confirmed by reading the document.
        self.by_customer: dict[int, array] = {}
        self.ledgers: dict[tuple, _Ledger] = {}  # (workspace, employee) → entries
        self.ledger_order: dict[str, array] = defaultdict(lambda: array("Q"))  # workspace → places, as recorded
        # Each workspace's entries by when they were given (slots: positions in ledger_order), so a window of
        # the ledger (the digest, the Home tab, an export) reads only the entries in it from disk.
        self.ledger_times: dict[str, _TimeIndex] = {}
        self.ledger_count = 0
        self.seen_order: deque[tuple[str, str]] = deque()  # (at, key), oldest first
        # The outbox by lane (workspace, case_id): each lane's messages (key → seq) and its head, parsed once
        # per write, so finding what is due costs a pass over lanes, not parsing every owed message.
        self.outbox_lanes: dict[tuple, dict[str, int]] = {}
        self.outbox_heads: dict[tuple, OutboxMessage] = {}
        self.outbox_seq = 0  # the highest seq owed so far (only its order matters)

    def __len__(self) -> int:
        return (sum(places.count for places in self.places.values()) + self.ledger_count
                + sum(len(docs) for docs in self.small.values()))

    def apply(self, table: str, doc: dict | None, *, where: int, key: tuple | None = None) -> None:
        """Record one durable write: a document (or, for a small table, a removal by key)."""
        if table in SMALL:
            key = key if doc is None else SMALL[table](doc)
            if doc is None:
                gone = self.small[table].pop(key, None)
                if table == "_outbox" and gone is not None:
                    self._outbox_gone(gone)
            else:
                self.small[table][key] = doc
                if table == "seen":
                    self.seen_order.append((doc["at"], doc["key"]))
                elif table == "_outbox":
                    self._outbox_owed(doc)
            return
        if table == "cases":
            case_key = _case_key(doc["workspace"], doc["id"])
            places = self.places.get(doc["workspace"]) or self.places.setdefault(doc["workspace"], _Places())
            slot = places.slot(doc["id"], add=True)
            known = bool(places.get(slot))
            if not known:
                self.opened.setdefault(doc["workspace"], _TimeIndex()).add(
                    datetime.fromisoformat(doc["opened_at"]).timestamp(), slot)
            if doc["closed_at"] is not None and (not known or case_key in self.open):
                self.closed.setdefault(doc["workspace"], _TimeIndex()).add(
                    datetime.fromisoformat(doc["closed_at"]).timestamp(), slot)
            customer = customer_key(doc["customer"])
            if customer:
                slots = self.by_customer.get(hash((doc["workspace"], customer)))
                if slots is None:
                    slots = self.by_customer[hash((doc["workspace"], customer))] = array("i")
                if slot not in slots[-4:]:  # a case is saved many times; it is listed once (or rarely twice)
                    slots.append(slot)
            places.put(slot, doc["id"], where)
            owner = (doc["workspace"], doc["owner"])
            before = self.open.get(case_key)
            if before is not None and before["owner"] != doc["owner"]:  # taken: no longer the unowned list's
                self.open_by_owner[(before["workspace"], before["owner"])].pop(case_key, None)
            if doc["closed_at"] is None:
                self.open[case_key] = doc
                self.open_by_owner[owner][case_key] = None
            else:
                self.open.pop(case_key, None)
                self.open_by_owner[owner].pop(case_key, None)
            return
        if not doc.get("approved_by"):  # a top-up a manager approved is not the employee's own budget (Store.spent)
            ledger = self.ledgers.setdefault((doc["workspace"], doc["employee"]), _Ledger())
            ledger.add(datetime.fromisoformat(doc["at"]).timestamp(), int(Decimal(doc["amount"]) * SCALE), where)
        order = self.ledger_order[doc["workspace"]]
        self.ledger_times.setdefault(doc["workspace"], _TimeIndex()).add(
            datetime.fromisoformat(doc["at"]).timestamp(), len(order))
        order.append(where)
        self.ledger_count += 1

    def _outbox_owed(self, doc: dict) -> None:
        lane = (doc["workspace"], doc["case_id"])
        self.outbox_lanes.setdefault(lane, {})[doc["key"]] = doc["seq"]
        self.outbox_seq = max(self.outbox_seq, doc["seq"])
        head = self.outbox_heads.get(lane)
        if head is None or doc["seq"] <= head.seq:
            self.outbox_heads[lane] = from_doc(doc)

    def _outbox_gone(self, doc: dict) -> None:
        lane = (doc["workspace"], doc["case_id"])
        keys = self.outbox_lanes.get(lane, {})
        keys.pop(doc["key"], None)
        if not keys:
            self.outbox_lanes.pop(lane, None)
            self.outbox_heads.pop(lane, None)
        elif self.outbox_heads[lane].key == doc["key"]:
            first = min(keys, key=keys.__getitem__)
            self.outbox_heads[lane] = from_doc(self.small["_outbox"][(first,)])


class _Transaction:
    """Writes buffered until commit; reads see them."""

    def __init__(self, store: "TinyStore"):
        self.store = store
        self.writes: list[tuple[str, dict | None, tuple | None]] = []  # (table, doc, key of a removal)
        self.pending: dict[tuple, dict | None] = {}

    @property
    def state(self) -> _State:
        return self.store._state

    def find(self, table: str, key: tuple) -> dict | None:
        if (table, key) in self.pending:
            return self.pending[(table, key)]
        if table == "cases":
            return self.store._case_doc(*key)
        return self.state.small[table].get(key)

    def put(self, table: str, doc: dict) -> None:
        key = SMALL[table](doc) if table in SMALL else (doc["workspace"], doc["id"]) if table == "cases" else None
        self.writes.append((table, doc, None))
        if key is not None:
            self.pending[(table, key)] = doc

    def remove(self, table: str, key: tuple) -> None:
        assert table in SMALL, "cases and ledger entries are never removed"
        self.writes.append((table, None, key))
        self.pending[(table, key)] = None


class _Journal:
    """An append-only file of transactions, one JSON line each, fsynced per commit.

    Its first line is its generation: {"generation": N}. A fold writes N into the snapshot, then
    starts generation N + 1."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = 0
        self.lines = 0
        self.generation = 0
        self.broken = False

    def open(self, state: _State, *, folded: int) -> None:
        """Replay this journal unless the snapshot already holds it (then start the next generation)."""
        with open(self.path, "rb") as file:
            header = file.readline()
        try:
            self.generation = json.loads(header)["generation"] if header.endswith(b"\n") else 0
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{self.path} does not start with its generation; restore it from a backup") from None
        if self.generation <= folded:
            if self.generation:
                log.info("%s was already folded into the snapshot; starting a new one", self.path)
            self.clear(generation=folded + 1)
            return
        self.replay(state, start=len(header))

    def replay(self, state: _State, *, start: int) -> None:
        """Apply every complete line; drop a torn last line (its commit never returned)."""
        offset, end = start, os.fstat(self.fd).st_size
        with open(self.path, "rb") as file:
            file.seek(start)
            for number, line in enumerate(file, start=2):
                if not line.endswith(b"\n"):
                    break  # a torn last line
                try:
                    records = json.loads(line)
                except ValueError:
                    if offset + len(line) == end:
                        break  # torn inside, though it ends like a line
                    raise ValueError(f"{self.path} is damaged at line {number}; restore it from a backup") from None
                for index, (table, doc, key) in enumerate(records):
                    where = _where(JOURNAL, offset, len(line), index) if table in LARGE else 0
                    state.apply(table, doc, where=where, key=None if key is None else tuple(key))
                offset += len(line)
                self.lines += 1
        if offset != end:
            log.warning("dropping an unfinished last line of %s (a write interrupted by a crash)", self.path)
            os.ftruncate(self.fd, offset)
            os.fsync(self.fd)
        self.size = offset

    def append(self, line: bytes) -> None:
        if self.broken:
            raise OSError("the journal could not be repaired after a failed write; restart Amends")
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

    def clear(self, *, generation: int) -> None:
        """Empty the journal and start `generation`."""
        os.ftruncate(self.fd, 0)
        header = json.dumps({"generation": generation}).encode() + b"\n"
        _append_line(self.fd, header)
        self.size, self.lines, self.generation = len(header), 0, generation

    def close(self) -> None:
        os.close(self.fd)


def _append_line(fd: int, line: bytes) -> None:
    written = os.write(fd, line)
    if written != len(line):
        raise OSError(f"short write ({written} of {len(line)} bytes)")
    os.fsync(fd)


def write_snapshot(path: Path, tables: dict[str, Iterator[bytes]],
                    placed: Callable[[str, int, int], None] | None = None) -> None:
    """TinyDB's JSON layout, one document per line (ids 1…n per table), written atomically.
    `tables` yields each table's documents as JSON; `placed(table, offset, length)` learns where each went."""
    fd, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            offset = file.write(b"{\n")
            for t, (table, docs) in enumerate(tables.items()):
                offset += file.write((b",\n" if t else b"") + json.dumps(table).encode() + b":{")
                for number, doc in enumerate(docs, start=1):
                    offset += file.write((b",\n" if number > 1 else b"\n") + f'"{number}":'.encode())
                    if placed is not None:
                        placed(table, offset, len(doc))
                    offset += file.write(doc)
                offset += file.write(b"\n}")
            file.write(b"\n}\n")
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


@contextmanager
def _short_gil_turns():
    """A fold is seconds of Python work on the store's thread; while it runs, hand the GIL over every
    millisecond instead of every five, so the event loop (and every ack) waits at most that long."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _release(state: "_State") -> None:
    """Free an index piece by piece, letting go of the GIL between pieces: dropping a dict of 100k
    entries at once is one C-level sweep the event loop would wait out."""
    for container in (state.places, state.open, state.ledgers, state.by_customer, state.outbox_lanes,
                      state.outbox_heads, *state.small.values()):
        while container:
            for _ in range(min(5000, len(container))):
                container.popitem()
            time.sleep(0)  # on the store's thread: hands the GIL to the event loop for a moment
    state.ledger_order.clear()
    state.ledger_times.clear()
    state.opened.clear()
    state.closed.clear()


@contextmanager
def _no_cycle_collection():
    """Loading or folding makes and drops a document per line and no reference cycles: refcounting
    frees it all. A cyclic collection meanwhile would only walk those objects, holding the GIL (and so
    the event loop) for tens of milliseconds; it runs afterwards instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _utc_doc(message: OutboxMessage) -> dict:
    """An outbox message as stored: its instants in UTC, so they compare and read back the same."""
    utc = lambda t: None if t is None else t.astimezone(timezone.utc)  # noqa: E731
    return as_doc(OutboxMessage(**{**message.__dict__, "owed_at": utc(message.owed_at), "due": utc(message.due),
                                   "tried_at": utc(message.tried_at)}))


def _dump(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class TinyStore(Store):
    """The embedded store: files at `path` (the snapshot) and `path`.journal, or memory only when path is None."""

    def __init__(self, path: str | None = None):
        self._path = Path(path) if path else None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amends-store")
        self._state = _State()
        self._journal: _Journal | None = None
        self._snapshot_fd: int | None = None
        self._folded = 0  # the last journal generation the snapshot holds
        self._memory: list[bytes] = []  # memory-only mode: the journal's lines, kept here
        if self._path is not None:
            with _no_cycle_collection():
                self._load()

    # --- files -------------------------------------------------------------------------------
    def _load(self) -> None:
        path = self._path
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(path.name + ".*.tmp"):  # a snapshot a crash left unfinished
            stale.unlink(missing_ok=True)
        self._journal = _Journal(Path(str(path) + ".journal"))
        if path.exists() and path.stat().st_size:
            if not self._load_snapshot_lines():
                self._import_tinydb_file()
        self._journal.open(self._state, folded=self._folded)

    def _load_snapshot_lines(self) -> bool:
        """Index a snapshot written one document per line; False when the file has another layout."""
        fd = os.open(self._path, os.O_RDONLY)
        table, offset = None, 0
        with open(fd, "rb", closefd=False) as file:
            for line in file:
                body = line.rstrip(b"\n")
                if offset == 0 and body != b"{":
                    os.close(fd)
                    return False
                if body.startswith((b'"', b',"')) and body.endswith(b":{"):
                    table = json.loads(body.lstrip(b",")[:-2])
                elif table == META and body.startswith(b'"'):
                    self._folded = json.loads(body.rstrip(b",").partition(b":")[2])["folded"]
                elif table in TABLES and body.startswith(b'"'):
                    doc_id, _, raw = body.rstrip(b",").partition(b":")
                    start = offset + len(doc_id) + 1
                    self._state.apply(table, json.loads(raw), where=_where(SNAPSHOT, start, len(raw)))
                offset += len(line)
        self._snapshot_fd = fd
        return True

    def _import_tinydb_file(self) -> None:
        """A TinyDB file in another layout (written by TinyDB itself, or an export): take it in and
        rewrite it in ours, once, before serving."""
        try:
            tables = json.loads(self._path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{self._path} is not a valid Amends store ({error}); "
                             "restore it from a backup or point AMENDS_DB elsewhere") from None
        self._rewrite_snapshot({table: (_dump(doc) for doc in tables.get(table, {}).values()) for table in TABLES})

    def _rewrite_snapshot(self, tables: dict[str, Iterator[bytes]]) -> None:
        """Write a new snapshot from `tables` (documents as JSON) and index it afresh."""
        fresh = _State()
        names = list(TABLES) + [META]
        # Where each document went, as compact arrays: a list of 300k tuples would be freed in one
        # GIL-holding sweep at the end, stalling the event loop for tens of milliseconds.
        table_of, offsets, lengths = array("B"), array("Q"), array("I")

        def placed(table: str, offset: int, length: int) -> None:
            table_of.append(names.index(table))
            offsets.append(offset)
            lengths.append(length)
        write_snapshot(self._path, tables, placed)
        fd = os.open(self._path, os.O_RDONLY)
        for table_index, offset, length in zip(table_of, offsets, lengths):
            table = names[table_index]
            if table in TABLES:
                fresh.apply(table, json.loads(os.pread(fd, length, offset)), where=_where(SNAPSHOT, offset, length))
        if self._snapshot_fd is not None:
            os.close(self._snapshot_fd)
        self._snapshot_fd = fd
        old, self._state = self._state, fresh
        _release(old)

    def _read(self, where: int) -> dict:
        file, offset, length, index = _unpack(where)
        if file == SNAPSHOT:
            return json.loads(os.pread(self._snapshot_fd, length, offset))
        line = os.pread(self._journal.fd, length, offset) if self._journal is not None else self._memory[offset]
        return json.loads(line)[index][1]

    def _case_doc(self, workspace: str, case_id: str) -> dict | None:
        found = self._state.open.get(_case_key(workspace, case_id))
        if found is not None:
            return found
        places = self._state.places.get(workspace)
        slot = None if places is None else places.slot(case_id)
        where = places.get(slot) if slot is not None else 0
        return self._read(where) if where else None

    def _slot_doc(self, workspace: str, slot: int) -> dict | None:
        return self._case_doc(workspace, self._state.places[workspace].case_id(slot))

    # --- transactions ------------------------------------------------------------------------
    async def _run(self, fn, *, write: bool):
        """Run fn on the store's thread: a read gets the store, a write a transaction committed to the journal."""
        def call():
            if not write:
                return fn(self)
            transaction = _Transaction(self)
            result = fn(transaction)
            if transaction.writes:
                self._commit(transaction)
            self._maybe_compact()
            return result
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, call)
        except OSError as error:
            log.error("store write failed, nothing recorded: %s", error)
            raise StoreUnavailable() from error

    def _commit(self, transaction: _Transaction) -> None:
        """Write the transaction as one journal line; only once it is durable does memory change."""
        # Case and ledger documents first, so their index in the line stays small.
        records = [[table, doc, None if key is None else list(key)]
                   for table, doc, key in sorted(transaction.writes, key=lambda w: w[0] not in LARGE)]
        line = json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        if self._journal is not None:
            offset = self._journal.size
            self._journal.append(line)
        else:
            offset = len(self._memory)
            self._memory.append(line)
        for index, (table, doc, key) in enumerate(records):
            where = _where(JOURNAL, offset, len(line), index) if table in LARGE else 0
            self._state.apply(table, doc, where=where, key=None if key is None else tuple(key))

    def _maybe_compact(self) -> None:
        journal = self._journal
        if journal is not None and journal.lines > max(COMPACT_AFTER, len(self._state)):
            try:
                self._compact()
            except OSError as error:  # the journal still holds everything; try again later
                log.warning("could not fold the journal into %s: %s", self._path, error)

    def _compact(self) -> None:
        """Fold the journal into a new snapshot: every current document, streamed from where it is."""
        with _no_cycle_collection(), _short_gil_turns():
            self._fold()

    def _fold(self) -> None:
        state = self._state

        def cases():
            for workspace, places in state.places.items():
                for case_id, where in places.items():
                    yield _dump(state.open.get(_case_key(workspace, case_id)) or self._read(where))

        def ledger():
            for places in state.ledger_order.values():
                for where in places:
                    yield _dump(self._read(where))
        generation = self._journal.generation
        tables = {"cases": cases(), "ledger": ledger(),
                  **{table: (_dump(doc) for doc in state.small[table].values()) for table in SMALL},
                  META: iter([_dump({"folded": generation})])}
        self._rewrite_snapshot(tables)
        self._folded = generation
        self._journal.clear(generation=generation + 1)

    def _spent(self, workspace: str, employee: str, since: datetime, until: datetime) -> Decimal:
        ledger = self._state.ledgers.get((workspace, employee))
        if ledger is None:
            return Decimal(0)
        return Decimal(ledger.total(since.timestamp(), until.timestamp())) / SCALE

    # --- cases -------------------------------------------------------------------------------
    async def open_case(self, *, workspace, build, owe=None):
        def op(tx: _Transaction):
            counter = tx.find("counters", (workspace,))
            number = counter["next"] if counter else FIRST_CASE_NUMBER
            case = build(number)
            tx.put("counters", {"workspace": workspace, "next": number + 1})
            tx.put("cases", case_to_doc(case))
            if owe is not None:
                self._owe(tx, owe(case))
            return case
        return await self._run(op, write=True)

    async def get_case(self, *, workspace, case_id):
        def op(store: "TinyStore"):
            doc = store._case_doc(workspace, case_id)
            return None if doc is None else case_from_doc(doc)
        return await self._run(op, write=False)

    @staticmethod
    def _load_case(tx: _Transaction, workspace: str, case_id: str) -> Case:
        doc = tx.find("cases", (workspace, case_id))
        if doc is None:
            raise CaseNotFound(f"There is no case {case_id} here.")
        return case_from_doc(doc)

    async def change_case(self, *, workspace, case_id, change: CaseChange, owe=None):
        def op(tx: _Transaction):
            case = change(self._load_case(tx, workspace, case_id))
            tx.put("cases", case_to_doc(case))
            if owe is not None:
                self._owe(tx, owe(case))
            return case
        return await self._run(op, write=True)

    async def compensate_case(self, *, workspace, case_id, employee, since, until, change: Compensating):
        def op(tx: _Transaction):
            case = self._load_case(tx, workspace, case_id)
            case, entry = change(case, self._spent(workspace, employee, since, until))
            if entry is not None:
                tx.put("ledger", entry_to_doc(entry))
            tx.put("cases", case_to_doc(case))
            return case, entry
        return await self._run(op, write=True)

    async def open_cases(self, *, workspace, owner):
        def op(store: "TinyStore"):
            state = store._state
            cases = [case_from_doc(state.open[key]) for key in state.open_by_owner.get((workspace, owner), ())]
            return sorted(cases, key=_oldest_first)
        return await self._run(op, write=False)

    async def team_open_cases(self, *, workspace):
        def op(store: "TinyStore"):
            prefix = _case_key(workspace, "")
            cases = [case_from_doc(doc) for key, doc in store._state.open.items() if key.startswith(prefix)]
            return sorted(cases, key=_oldest_first)
        return await self._run(op, write=False)

    async def cases(self, *, workspace, since, until):
        def op(store: "TinyStore"):
            index = store._state.opened.get(workspace) or _TimeIndex()
            return [case_from_doc(store._slot_doc(workspace, slot))
                    for _, slot in index.between(since.timestamp(), until.timestamp())]
        return await self._run(op, write=False)

    async def closed_cases(self, *, workspace, since, until):
        def op(store: "TinyStore"):
            index = store._state.closed.get(workspace) or _TimeIndex()
            found = {}
            for at, key in index.between(since.timestamp(), until.timestamp()):
                doc = store._slot_doc(workspace, key)
                if doc["closed_at"] is not None and datetime.fromisoformat(doc["closed_at"]).timestamp() == at:
                    found[key] = case_from_doc(doc)
            return list(found.values())
        return await self._run(op, write=False)

    async def customer_cases(self, *, workspace, customer, since):
        wanted = customer_key(customer)
        if not wanted:
            return []

        def op(store: "TinyStore"):
            found = {}
            places = store._state.places.get(workspace)
            for key in store._state.by_customer.get(hash((workspace, wanted)), ()):
                if places is None or not places.get(key):
                    continue  # the same hash, another workspace's slot
                doc = store._slot_doc(workspace, key)
                if (doc is not None and doc["workspace"] == workspace and customer_key(doc["customer"]) == wanted
                        and datetime.fromisoformat(doc["opened_at"]) >= since):
                    found[key] = case_from_doc(doc)
            return sorted(found.values(), key=_oldest_first)
        return await self._run(op, write=False)

    async def workspaces(self):
        return await self._run(lambda store: sorted(key[0] for key in store._state.small["counters"]), write=False)

    # --- ledger ------------------------------------------------------------------------------
    async def spent(self, *, workspace, employee, since, until):
        return await self._run(lambda store: store._spent(workspace, employee, since, until), write=False)

    async def ledger(self, *, workspace, since=None, until=None):
        def op(store: "TinyStore"):
            order = store._state.ledger_order.get(workspace, array("Q"))
            if since is None and until is None:
                wanted = range(len(order))
            else:
                index = store._state.ledger_times.get(workspace) or _TimeIndex()
                wanted = sorted(slot for _, slot in index.between(
                    since.timestamp() if since else float("-inf"), until.timestamp() if until else float("inf")))
            entries = (entry_from_doc(store._read(order[slot])) for slot in wanted)  # in the order recorded
            return [entry for entry in entries
                    if (since is None or entry.at >= since) and (until is None or entry.at < until)]
        return await self._run(op, write=False)

    # --- the small tables --------------------------------------------------------------------
    async def _get(self, table: str, key: tuple) -> dict | None:
        return await self._run(lambda store: store._state.small[table].get(key), write=False)

    async def _put(self, table: str, doc: dict) -> None:
        await self._run(lambda tx: tx.put(table, doc), write=True)

    async def _all(self, table: str, workspace: str) -> list[dict]:
        def op(store: "TinyStore"):
            return [doc for doc in store._state.small[table].values() if doc["workspace"] == workspace]
        return await self._run(op, write=False)

    async def role(self, *, workspace, name):
        doc = await self._get("roles", (workspace, name))
        return None if doc is None else role_from_doc(doc)

    async def roles(self, *, workspace):
        return sorted((role_from_doc(doc) for doc in await self._all("roles", workspace)), key=lambda r: r.name)

    async def put_role(self, *, role: Role):
        await self._put("roles", role_to_doc(role))

    async def role_of(self, *, workspace, person):
        doc = await self._get("people", (workspace, person))
        return None if doc is None else doc["role"]

    async def assign(self, *, workspace, person, role):
        await self._put("people", {"workspace": workspace, "person": person, "role": role})

    async def recovery_channel(self, *, workspace):
        doc = await self._get("workspaces", (workspace,))
        return None if doc is None else doc.get("recovery_channel")

    async def set_recovery_channel(self, *, workspace, channel):
        await self._put("workspaces", {"workspace": workspace, "recovery_channel": channel})

    async def put_reference(self, *, workspace, key, value):
        await self._put("references", {"workspace": workspace, "key": key, "value": value})

    async def reference(self, *, workspace, key):
        doc = await self._get("references", (workspace, key))
        return None if doc is None else doc["value"]

    async def grant_admin(self, *, workspace, person):
        await self._put("admins", {"workspace": workspace, "person": person})

    async def granted_admins(self, *, workspace):
        return {doc["person"] for doc in await self._all("admins", workspace)}

    # --- idempotency -------------------------------------------------------------------------
    async def first_time(self, *, key, at, keep):
        def op(tx: _Transaction):
            horizon = (at - keep).astimezone(timezone.utc).isoformat()
            order, seen = tx.state.seen_order, tx.state.small["seen"]
            # Forget expired keys first, so an old key counts as new. (Should this write fail, the
            # forgotten entries are still on disk and are found again at the next fold.)
            while order and order[0][0] < horizon:
                seen_at, seen_key = order.popleft()
                doc = seen.get((seen_key,))
                if doc is not None and doc["at"] == seen_at:
                    tx.remove("seen", (seen_key,))
            if tx.find("seen", (key,)) is not None:
                return False
            tx.put("seen", {"key": key, "at": at.astimezone(timezone.utc).isoformat()})
            return True
        return await self._run(op, write=True)

    # --- the outbox --------------------------------------------------------------------------
    @staticmethod
    def _owe(tx: _Transaction, messages) -> None:
        seq = max([tx.state.outbox_seq,
                   *(doc["seq"] for (table, _), doc in tx.pending.items() if table == "_outbox" and doc)])
        for message in messages:
            if tx.find("_outbox", (message.key,)) is None:
                seq += 1
                tx.put("_outbox", _utc_doc(OutboxMessage(**{**message.__dict__, "seq": seq})))

    async def add_outbox(self, *, messages, settles=None):
        def op(tx: _Transaction):
            self._owe(tx, messages)
            if settles is not None and tx.find("_outbox", (settles,)) is not None:
                tx.remove("_outbox", (settles,))
        await self._run(op, write=True)

    async def due_outbox(self, *, now, limit):
        def op(store: "TinyStore"):
            heads = store._state.outbox_heads.values()
            return sorted((m for m in heads if m.due <= now), key=lambda m: m.seq)[:limit]
        return await self._run(op, write=False)

    async def next_outbox_due(self, *, after):
        def op(store: "TinyStore"):
            times = [m.due for m in store._state.outbox_heads.values()]
            return min((t for t in times if t > after), default=None)
        return await self._run(op, write=False)

    async def owed_outbox(self):
        def op(store: "TinyStore"):
            return sorted((from_doc(doc) for doc in store._state.small["_outbox"].values()), key=lambda m: m.seq)
        return await self._run(op, write=False)

    async def try_outbox(self, *, key, at, lease):
        def op(tx: _Transaction):
            doc = tx.find("_outbox", (key,))
            if doc is None or from_doc(doc).due > at:
                return None
            message = from_doc(doc)
            message = OutboxMessage(**{**message.__dict__, "attempts": message.attempts + 1, "tried_at": at,
                                       "due": at + lease})
            tx.put("_outbox", _utc_doc(message))
            return from_doc(_utc_doc(message))
        return await self._run(op, write=True)

    async def retry_outbox(self, *, key, due, error, in_doubt):
        def op(tx: _Transaction):
            doc = tx.find("_outbox", (key,))
            if doc is not None:
                message = from_doc(doc)
                tx.put("_outbox", _utc_doc(OutboxMessage(**{**message.__dict__, "due": due, "error": error,
                                                            "tried_at": message.tried_at if in_doubt else None})))
        await self._run(op, write=True)

    async def outbox_sent(self, *, key):
        def op(tx: _Transaction):
            if tx.find("_outbox", (key,)) is not None:
                tx.remove("_outbox", (key,))
        await self._run(op, write=True)

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
            if self._snapshot_fd is not None:
                os.close(self._snapshot_fd)
                self._snapshot_fd = None
        await asyncio.get_running_loop().run_in_executor(self._worker, finish)
        self._worker.shutdown(wait=True)
