"""Copy a whole Amends store into another: a TinyDB file into PostgreSQL, or PostgreSQL back into a file.

    python -m bot.store.copy SOURCE TARGET [--force]

SOURCE and TARGET are what AMENDS_DB takes: a TinyDB file path, or postgresql://user@host:port/db.
Stop the bots first (a TinyDB file has no lock another process would respect; a PostgreSQL target
is locked while it is written, so bots still running there would only wait and then be refused).

Messages the bot still owes (a follow-up reminder due next week, the next digest, a summary Slack
was refusing) move with the data, in the order they were owed. A message whose last attempt may
have arrived (the bot stopped mid-send) can only be checked by starting the bot, so the copy refuses
until none is in doubt.

It refuses a target that already holds anything, unless --force, which replaces it. After writing,
it reads the target back and checks that every table has as many rows as the source, that the
ledger adds up to the same total per workspace and currency, and that every row reads back equal;
it says what it copied, or exits with 1 and a sentence saying what is wrong.
"""

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from bot.errors import StoreUnavailable
from dataclasses import replace

from bot.outbox import OutboxMessage, as_doc, from_doc
from bot.store.codec import case_from_doc, case_to_doc, entry_from_doc, entry_to_doc, role_from_doc, role_to_doc
from bot.store.postgres import SNAPSHOT_TABLES, PostgresStore, TargetNotEmpty, describe_url, is_postgres_url
from bot.store.tiny import TinyStore, write_snapshot  # the store's own atomic, TinyDB-layout writer

log = logging.getLogger(__name__)

Tables = dict[str, list[dict]]


class CopyFailed(Exception):
    """The copy could not be made or did not verify; the sentence says why."""


@dataclass(frozen=True)
class Summary:
    """What a store holds, in the terms the copy is checked by."""

    counts: dict[str, int]
    ledger_totals: dict[tuple[str, str], Decimal]  # (workspace, currency) -> total given

    @classmethod
    def of(cls, tables: Tables) -> "Summary":
        totals: dict[tuple[str, str], Decimal] = {}
        for doc in tables["ledger"]:
            key = (doc["workspace"], doc["currency"])
            totals[key] = totals.get(key, Decimal(0)) + Decimal(doc["amount"])
        return cls(counts={table: len(tables[table]) for table in SNAPSHOT_TABLES}, ledger_totals=totals)

    def lines(self) -> list[str]:
        shown = [f"  {table:<11} {count:>8}" for table, count in self.counts.items()]
        shown += [f"  ledger total {workspace} {currency}: {total}"
                  for (workspace, currency), total in sorted(self.ledger_totals.items())]
        return shown


def _normalised(tables: Tables) -> dict[str, Counter]:
    """Every row as canonical JSON, whatever order or document ids each backend keeps."""
    through_codec = {"cases": lambda d: case_to_doc(case_from_doc(d)),
                     "ledger": lambda d: entry_to_doc(entry_from_doc(d)),
                     "roles": lambda d: role_to_doc(role_from_doc(d))}
    return {table: Counter(json.dumps(through_codec.get(table, dict)(doc), sort_keys=True, ensure_ascii=False)
                           for doc in tables[table])
            for table in SNAPSHOT_TABLES}


# --- the two backends -----------------------------------------------------------------------------

def _where(location: str) -> str:
    return describe_url(location) if is_postgres_url(location) else location


async def _settled_tiny(path: Path) -> tuple[dict[str, dict[str, dict]], list[OutboxMessage]]:
    """The TinyDB file's tables once its journal is folded in, and what it owes. TinyStore folds it on a
    clean close, after which the file alone holds everything, in TinyDB's layout (empty for a new store)."""
    await TinyStore(path=str(path)).close()
    if not path.exists() or path.stat().st_size == 0:
        return {}, []
    tables = json.loads(path.read_text(encoding="utf-8"))
    owed = sorted((from_doc(doc) for doc in (tables.get("_outbox") or {}).values()), key=lambda m: m.seq)
    unknown = sorted(t for t in tables if t not in SNAPSHOT_TABLES and not t.startswith("_"))
    if unknown:  # bookkeeping tables start with _; anything else is data this copy would drop
        raise CopyFailed(f"{path} has tables this copy doesn't know ({', '.join(unknown)}); nothing was copied.")
    return {table: docs for table, docs in tables.items() if table in SNAPSHOT_TABLES}, owed


def _check_owed(where: str, owed: list[OutboxMessage]) -> list[OutboxMessage]:
    """What is owed moves with the data, fresh (no attempts yet, due as it was). One whose last attempt may
    have arrived can't move: the sender checks the platform before trying it again, and that check is
    made by starting Amends, not here."""
    in_doubt = [m for m in owed if m.in_doubt]
    if in_doubt:
        raise CopyFailed(f"{where} owes {len(in_doubt)} message(s) that may already have reached Slack or Teams "
                         f"({', '.join(m.key for m in in_doubt[:3])}); start Amends until its log says they were "
                         "sent, stop it, then copy. Nothing was copied.")
    return [replace(m, seq=0, attempts=0, tried_at=None, error="") for m in owed]


def _owed_shape(owed: list[OutboxMessage]) -> list[tuple]:
    return [(m.key, m.workspace, m.case_id, m.kind, json.dumps(m.body, sort_keys=True), m.due) for m in owed]


async def _read(location: str) -> tuple[Tables, list[OutboxMessage]]:
    if is_postgres_url(location):
        store = PostgresStore(url=location, pool_size=1)
        try:
            await store.open()
            owed = _check_owed(describe_url(location), await store.owed_outbox())
            return await store.export_tables(), owed
        finally:
            await store.close()
    path = Path(location)
    if not path.is_file():
        raise CopyFailed(f"There is no TinyDB file at {location}.")
    raw, owed = await _settled_tiny(path)
    return {table: list(raw.get(table, {}).values()) for table in SNAPSHOT_TABLES}, _check_owed(location, owed)


async def _write(location: str, tables: Tables, owed: list[OutboxMessage], *, force: bool) -> None:
    if is_postgres_url(location):
        store = PostgresStore(url=location, pool_size=1)
        try:
            await store.open()
            await store.import_tables(tables, replace=force, owed=owed)
        finally:
            await store.close()
        return
    path = Path(location)
    settled, settled_owed = await _settled_tiny(path)
    held = {table: len(settled[table]) for table in SNAPSHOT_TABLES if settled.get(table)}
    if settled_owed:
        held["owed messages"] = len(settled_owed)
    if held and not force:
        raise TargetNotEmpty(f"{location} already holds data (" + ", ".join(f"{n} {t}" for t, n in held.items()) + ")")
    # Settled above, the journal holds nothing the file doesn't: remove it, so the plain TinyDB file
    # written next is the whole store (a crash in between leaves the old file, complete on its own).
    Path(f"{path}.journal").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    documents = {**tables, "_outbox": [as_doc(replace(m, seq=seq)) for seq, m in enumerate(owed, start=1)]}
    write_snapshot(path, {table: (json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
                                   for doc in docs) for table, docs in documents.items()})


# --- the command ------------------------------------------------------------------------------------

async def copy_store(*, source: str, target: str, force: bool = False) -> Summary:
    """Copy everything from source to target and verify it; returns what was copied."""
    if source == ":memory:" or target == ":memory:":
        raise CopyFailed("A :memory: store keeps nothing to copy from or into; name a file or a database.")
    if source == target:
        raise CopyFailed("The source and the target are the same store.")
    tables, owed = await _read(source)
    try:
        await _write(target, tables, owed, force=force)
    except TargetNotEmpty as why:
        raise CopyFailed(f"Nothing was copied: {why}. Add --force to replace what is there.") from None
    except StoreUnavailable as why:  # the database went away while the copy was written
        raise CopyFailed(f"{why.sentence} Run the copy again once the database is back "
                         "(with --force if it then says the target holds data).") from None
    try:
        copied, copied_owed = await _read(target)
    except Exception as error:
        raise CopyFailed(f"The copy was written to {_where(target)} but could not be read back to check it "
                         f"({type(error).__name__}: {getattr(error, 'sentence', error)}); don't use it until "
                         "a copy with --force checks out.") from error
    wanted, got = Summary.of(tables), Summary.of(copied)
    if got != wanted:
        raise CopyFailed("The copy does not match its source: the source has\n" + "\n".join(wanted.lines())
                         + "\nbut the target has\n" + "\n".join(got.lines()))
    expected, found = _normalised(tables), _normalised(copied)
    differing = [table for table in SNAPSHOT_TABLES if expected[table] != found[table]]
    if differing:
        raise CopyFailed(f"The copy does not match its source: the counts and totals agree, but some rows of "
                         f"{', '.join(differing)} differ.")
    if _owed_shape(copied_owed) != _owed_shape(owed):
        raise CopyFailed(f"The copy does not match its source: the source owes {len(owed)} message(s) "
                         f"but the target owes {len(copied_owed)}, or not the same ones.")
    return wanted


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.store.copy",
        description="Copy an Amends store (a TinyDB file or postgresql://…) into another, and verify the copy.")
    parser.add_argument("source", help="where to copy from: a TinyDB file path or a postgresql:// URL")
    parser.add_argument("target", help="where to copy to: a TinyDB file path or a postgresql:// URL")
    parser.add_argument("--force", action="store_true", help="replace whatever the target already holds")
    args = parser.parse_args(argv)
    try:
        summary = asyncio.run(copy_store(source=args.source, target=args.target, force=args.force))
    except CopyFailed as failure:
        print(failure, file=sys.stderr)
        return 1
    except Exception as error:  # a database that refuses us, a file we can't read or write: one line, not a trace
        print(f"Nothing was copied: {type(error).__name__}: {getattr(error, 'sentence', error)}", file=sys.stderr)
        return 1
    print(f"Copied {_where(args.source)} into {_where(args.target)} and checked it:")
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
