"""Open the store named by AMENDS_DB."""

from bot.store.base import Store
from bot.store.postgres import DEFAULT_POOL_SIZE, PostgresStore, is_postgres_url
from bot.store.tiny import TinyStore

MEMORY = ":memory:"


def open_store(location: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> Store:
    """`postgresql://…` (or `postgres://…`) is a PostgreSQL database shared by every process, reached
    through a pool of `pool_size` connections; `:memory:` keeps everything in memory (tests, demos);
    anything else is a TinyDB file path."""
    if is_postgres_url(location):
        return PostgresStore(url=location, pool_size=pool_size)
    if location == MEMORY:
        return TinyStore(path=None)
    return TinyStore(path=location)


__all__ = ["Store", "open_store", "MEMORY"]
