"""Versioned schema migrations for the PostgreSQL store, applied at start-up, once each.

A migration is a file `NNNN_what.sql` beside this one. Never edit one that has shipped: add the
next number instead. Each applied migration is recorded in `schema_migrations` with a checksum,
so an edited file is caught rather than silently skipped.

Why one transaction under an advisory lock: several bot processes start at once behind a load
balancer. The first to take the lock migrates; the others wait on it, then find every version
recorded and do nothing. PostgreSQL's DDL is transactional, so a process killed mid-migration
leaves the schema as it was, never half-built.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Waiting on another process's migration, or running a long one, may take far longer than a request.
MIGRATION_TIMEOUT = 120.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@cache
def known_migrations() -> tuple[Migration, ...]:
    """Every migration file, in order; numbered 1, 2, 3… with no gap or repeat."""
    found = []
    for path in sorted(HERE.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path.name} is not a migration name like 0002_add_something.sql")
        found.append(Migration(version=int(match[1]), name=match[2], sql=path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3… without gaps or repeats; found {versions}")
    return tuple(found)


def check_schema_name(schema: str) -> str:
    """A schema name we can put in DDL without quoting surprises."""
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"{schema!r} can't be a schema name: use lower-case letters, digits and _")
    return schema


async def migrate(conn: asyncpg.Connection, *, schema: str | None) -> list[int]:
    """Bring the schema up to the newest migration; returns the versions this call applied.

    With `schema`, the tables live in that schema (created if missing; the connection's
    search_path must name it). Without, they live in the connection's current schema.
    """
    async with conn.transaction():
        target = schema or await conn.fetchval("SELECT current_schema()", timeout=MIGRATION_TIMEOUT)
        if target is None:
            raise ValueError("the database has no schema to create Amends' tables in: the search_path names "
                             "none that exists; create it, or remove search_path from AMENDS_DB")
        # Transaction-scoped: released at commit or rollback, and by the server if this process dies.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"amends:migrate:{target}",
                           timeout=MIGRATION_TIMEOUT)
        if schema is not None:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{check_schema_name(schema)}"', timeout=MIGRATION_TIMEOUT)
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""", timeout=MIGRATION_TIMEOUT)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations", timeout=MIGRATION_TIMEOUT)
        applied = {row["version"]: row for row in rows}
        done: list[int] = []
        for migration in known_migrations():
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise ValueError(
                        f"migration {migration.version:04d}_{migration.name}.sql was changed after it was applied "
                        f"to schema {target}; restore the shipped file and put the change in a new migration")
                continue
            await conn.execute(migration.sql, timeout=MIGRATION_TIMEOUT)
            await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                               migration.version, migration.name, migration.checksum, timeout=MIGRATION_TIMEOUT)
            log.info("applied database migration %04d_%s to schema %s", migration.version, migration.name, target)
            done.append(migration.version)
        newer = sorted(set(applied) - {m.version for m in known_migrations()})
        if newer:
            # A newer release already migrated (a rolling upgrade): migrations only add, so carry on.
            log.warning("schema %s has migrations %s that this release doesn't know; a newer Amends is running "
                        "against the same database", target, newer)
        return done
