"""Open the store named by AMENDS_DB."""

from bot.store.base import Store
from bot.store.tiny import TinyStore

MEMORY = ":memory:"


def open_store(location: str) -> Store:
    """`:memory:` keeps everything in memory (tests, demos); anything else is a TinyDB file path."""
    if location == MEMORY:
        return TinyStore(path=None)
    return TinyStore(path=location)


__all__ = ["Store", "open_store", "MEMORY"]
