"""Persistence: event-sourced actors, journals and snapshot stores, projections.

Backends: SQLite (embedded default), PostgreSQL (the extra
``hewitt[postgres]``: asyncpg), and in-memory (tests).

Importing this package imports none of its modules: each name is imported
from its module when it is first used (``from hewitt.persistence import
SqliteJournal``), so ``import hewitt.persistence`` costs nothing, and asyncpg
is imported only once a PostgreSQL store connects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._actor import Effect, PersistentActor
    from ._codec import Codec
    from ._extension import Persistence
    from ._journal import InMemoryJournal, InMemorySnapshotStore, Journal, SnapshotStore
    from ._postgres import PostgresJournal, PostgresSnapshotStore
    from ._projection import (
        EventEnvelope,
        GetProjectionOffset,
        InMemoryOffsetStore,
        OffsetStore,
        PollProjection,
        Projection,
        ProjectionError,
        SqliteOffsetStore,
    )
    from ._records import (
        AppendInDoubt,
        ConcurrencyConflict,
        IdempotencyRecord,
        PersistenceError,
        RecoveryError,
        StoredEvent,
        StoredSnapshot,
        UnknownEventType,
    )
    from ._sqlite import SqliteJournal, SqliteSnapshotStore

#: Each public name and the private module that defines it.
_MODULES = {
    "Effect": "_actor",
    "PersistentActor": "_actor",
    "Codec": "_codec",
    "Persistence": "_extension",
    "InMemoryJournal": "_journal",
    "InMemorySnapshotStore": "_journal",
    "Journal": "_journal",
    "SnapshotStore": "_journal",
    "PostgresJournal": "_postgres",
    "PostgresSnapshotStore": "_postgres",
    "EventEnvelope": "_projection",
    "GetProjectionOffset": "_projection",
    "InMemoryOffsetStore": "_projection",
    "OffsetStore": "_projection",
    "PollProjection": "_projection",
    "Projection": "_projection",
    "ProjectionError": "_projection",
    "SqliteOffsetStore": "_projection",
    "AppendInDoubt": "_records",
    "ConcurrencyConflict": "_records",
    "IdempotencyRecord": "_records",
    "PersistenceError": "_records",
    "RecoveryError": "_records",
    "StoredEvent": "_records",
    "StoredSnapshot": "_records",
    "UnknownEventType": "_records",
    "SqliteJournal": "_sqlite",
    "SqliteSnapshotStore": "_sqlite",
}

__all__ = [
    "AppendInDoubt",
    "Codec",
    "ConcurrencyConflict",
    "Effect",
    "EventEnvelope",
    "GetProjectionOffset",
    "IdempotencyRecord",
    "InMemoryJournal",
    "InMemoryOffsetStore",
    "InMemorySnapshotStore",
    "Journal",
    "OffsetStore",
    "Persistence",
    "PersistenceError",
    "PersistentActor",
    "PostgresJournal",
    "PostgresSnapshotStore",
    "PollProjection",
    "Projection",
    "ProjectionError",
    "RecoveryError",
    "SnapshotStore",
    "SqliteJournal",
    "SqliteOffsetStore",
    "SqliteSnapshotStore",
    "StoredEvent",
    "StoredSnapshot",
    "UnknownEventType",
]


def __getattr__(name: str) -> Any:
    """Import the module of ``name`` on first use; its public names then read
    as ``hewitt.persistence.X``."""
    module_name = _MODULES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{module_name}")
    for public, defined_in in _MODULES.items():
        if defined_in == module_name:
            value = getattr(module, public)
            value.__module__ = __name__
            globals()[public] = value
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
