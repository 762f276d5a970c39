"""Persistence: event-sourced actors, journals and snapshot stores, projections.

Backends: SQLite (embedded default), PostgreSQL, and in-memory (tests).
"""

from ._actor import Effect, PersistentActor
from ._codec import Codec
from ._extension import Persistence
from ._journal import (
    InMemoryJournal,
    InMemorySnapshotStore,
    Journal,
    SnapshotStore,
)
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

for _name in __all__:
    globals()[_name].__module__ = "hewitt.persistence"
