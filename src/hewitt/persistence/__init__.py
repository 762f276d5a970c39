"""Persistence: event-sourced actors, journals and snapshot stores, projections.

Backends: SQLite (embedded default), PostgreSQL, and in-memory (tests).
"""

from ._actor import Effect, PersistentActor
from ._codec import Codec
from ._extension import Persistence
from ._journal import (
    IdempotencyRecord,
    InMemoryJournal,
    InMemorySnapshotStore,
    Journal,
    SnapshotStore,
)
from ._records import (
    ConcurrencyConflict,
    PersistenceError,
    RecoveryError,
    StoredEvent,
    StoredSnapshot,
    UnknownEventType,
)
from ._sqlite import SqliteJournal, SqliteSnapshotStore

__all__ = [
    "Codec",
    "ConcurrencyConflict",
    "Effect",
    "IdempotencyRecord",
    "InMemoryJournal",
    "InMemorySnapshotStore",
    "Journal",
    "Persistence",
    "PersistenceError",
    "PersistentActor",
    "RecoveryError",
    "SnapshotStore",
    "SqliteJournal",
    "SqliteSnapshotStore",
    "StoredEvent",
    "StoredSnapshot",
    "UnknownEventType",
]

for _name in __all__:
    globals()[_name].__module__ = "hewitt.persistence"
