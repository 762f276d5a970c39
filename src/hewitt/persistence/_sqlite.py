"""SQLite journal and snapshot store: the embedded default.

One file, WAL mode. Durability: ``synchronous="FULL"`` (default) makes every
committed batch survive a power loss; ``"NORMAL"`` survives a process crash
(kill -9) but may lose the last batches on power loss, for more speed.

All SQL runs on one thread per store (sqlite3 connections are not shared
between threads). Appends from all actors are batched: while one transaction
commits, new appends queue up and go together into the next one (group
commit: one fsync for many actors), each in its own savepoint, so a
conflicting append fails alone and no persistence id is reordered.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import msgspec

from ._journal import IdempotencyRecord, Journal, SnapshotStore
from ._records import ConcurrencyConflict, StoredEvent, StoredSnapshot

#: The schema version this code writes; see ``migrate``.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hewitt_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hewitt_events (
    ordering INTEGER PRIMARY KEY AUTOINCREMENT,
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    type_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    tags TEXT NOT NULL,
    timestamp REAL NOT NULL,
    UNIQUE (persistence_id, sequence_nr)
);
CREATE TABLE IF NOT EXISTS hewitt_highest (
    persistence_id TEXT PRIMARY KEY,
    sequence_nr INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hewitt_tags (
    tag TEXT NOT NULL,
    ordering INTEGER NOT NULL,
    PRIMARY KEY (tag, ordering)
);
CREATE TABLE IF NOT EXISTS hewitt_idempotency (
    persistence_id TEXT NOT NULL,
    key TEXT NOT NULL,
    outcome BLOB NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (persistence_id, key)
);
CREATE TABLE IF NOT EXISTS hewitt_snapshots (
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    type_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (persistence_id, sequence_nr)
);
"""

_READ_CHUNK = 10_000
_tags_encoder = msgspec.json.Encoder()
_tags_decoder = msgspec.json.Decoder(tuple[str, ...])

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]


class _Connection:
    """A sqlite3 connection owned by one thread, with the schema in place."""

    def __init__(self, path: str | Path, synchronous: Synchronous) -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="hewitt-sqlite")
        self.db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self.db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            migrate(db)
            self.db = db
        return self.db

    async def run(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._call, function, args)

    def _call(self, function: Any, args: tuple[Any, ...]) -> Any:
        return function(self._open(), *args)

    async def close(self) -> None:
        def close() -> None:
            if self.db is not None:
                self.db.close()
                self.db = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, close)
        self.executor.shutdown(wait=True)


def migrate(db: sqlite3.Connection) -> None:
    """Bring an existing file to SCHEMA_VERSION (the migration story: each
    version adds an idempotent step here; files from newer code are refused)."""
    row = db.execute("SELECT version FROM hewitt_schema").fetchone()
    if row is None:
        db.execute("INSERT INTO hewitt_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        return
    if row[0] > SCHEMA_VERSION:
        raise RuntimeError(
            f"journal schema version {row[0]} is newer than this hewitt ({SCHEMA_VERSION})"
        )


_Write = tuple[str, int, Sequence[StoredEvent], IdempotencyRecord | None]


def _write_batch(db: sqlite3.Connection, writes: list[_Write]) -> list[BaseException | None]:
    results: list[BaseException | None] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for pid, expected, events, idempotency in writes:
            db.execute("SAVEPOINT w")
            try:
                row = db.execute(
                    "SELECT sequence_nr FROM hewitt_highest WHERE persistence_id = ?", (pid,)
                ).fetchone()
                if (row[0] if row else 0) != expected:
                    raise ConcurrencyConflict(pid, expected + 1)
                for event in events:
                    cursor = db.execute(
                        "INSERT INTO hewitt_events (persistence_id, sequence_nr, type_name, "
                        "version, payload, tags, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            pid,
                            event.sequence_nr,
                            event.type_name,
                            event.version,
                            event.payload,
                            _tags_encoder.encode(event.tags).decode(),
                            event.timestamp,
                        ),
                    )
                    for tag in event.tags:
                        db.execute(
                            "INSERT INTO hewitt_tags (tag, ordering) VALUES (?, ?)",
                            (tag, cursor.lastrowid),
                        )
                if events:
                    db.execute(
                        "INSERT INTO hewitt_highest (persistence_id, sequence_nr) VALUES (?, ?) "
                        "ON CONFLICT (persistence_id) "
                        "DO UPDATE SET sequence_nr = excluded.sequence_nr",
                        (pid, events[-1].sequence_nr),
                    )
                if idempotency is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO hewitt_idempotency (persistence_id, key, outcome, "
                        "timestamp) VALUES (?, ?, ?, ?)",
                        (pid, idempotency.key, idempotency.outcome, idempotency.timestamp),
                    )
            except (ConcurrencyConflict, sqlite3.IntegrityError) as exc:
                db.execute("ROLLBACK TO w")
                db.execute("RELEASE w")
                results.append(
                    exc
                    if isinstance(exc, ConcurrencyConflict)
                    else ConcurrencyConflict(pid, expected + 1)
                )
                continue
            db.execute("RELEASE w")
            results.append(None)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return results


class SqliteJournal(Journal):
    """The journal in a SQLite file (shared with a SqliteSnapshotStore if you like)."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        self._connection = _Connection(path, synchronous)
        self._pending: list[tuple[_Write, asyncio.Future[None]]] = []
        self._flushing = False

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((persistence_id, expected_sequence_nr, events, idempotency), future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._connection.run(_write_batch, [w for w, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if result is None:
                        future.set_result(None)
                    else:
                        future.set_exception(result)
        finally:
            self._flushing = False

    async def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        last = to_sequence_nr if to_sequence_nr is not None else 2**62
        start = from_sequence_nr
        while True:
            rows = await self._connection.run(_read_events, persistence_id, start, last)
            for row in rows:
                yield row
            if len(rows) < _READ_CHUNK:
                return
            start = rows[-1].sequence_nr + 1

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return int(await self._connection.run(_highest, persistence_id))

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        await self._connection.run(_delete_events, persistence_id, sequence_nr)

    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        result: list[tuple[int, StoredEvent]] = await self._connection.run(
            _read_by_tag, tag, after_offset, limit
        )
        return result

    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        record: IdempotencyRecord | None = await self._connection.run(
            _find_idempotency, persistence_id, key, not_before
        )
        return record

    async def close(self) -> None:
        while self._flushing:
            await asyncio.sleep(0.001)  # let the last batch commit
        await self._connection.close()


def _event(persistence_id: str, row: tuple[Any, ...]) -> StoredEvent:
    sequence_nr, type_name, version, payload, tags, timestamp = row
    return StoredEvent(
        persistence_id,
        sequence_nr,
        type_name,
        version,
        bytes(payload),
        _tags_decoder.decode(tags),
        timestamp,
    )


def _read_events(
    db: sqlite3.Connection, persistence_id: str, start: int, last: int
) -> list[StoredEvent]:
    rows = db.execute(
        "SELECT sequence_nr, type_name, version, payload, tags, timestamp FROM hewitt_events "
        "WHERE persistence_id = ? AND sequence_nr >= ? AND sequence_nr <= ? "
        "ORDER BY sequence_nr LIMIT ?",
        (persistence_id, start, last, _READ_CHUNK),
    ).fetchall()
    return [_event(persistence_id, row) for row in rows]


def _highest(db: sqlite3.Connection, persistence_id: str) -> int:
    row = db.execute(
        "SELECT sequence_nr FROM hewitt_highest WHERE persistence_id = ?", (persistence_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def _delete_events(db: sqlite3.Connection, persistence_id: str, sequence_nr: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "DELETE FROM hewitt_tags WHERE ordering IN (SELECT ordering FROM hewitt_events "
        "WHERE persistence_id = ? AND sequence_nr <= ?)",
        (persistence_id, sequence_nr),
    )
    db.execute(
        "DELETE FROM hewitt_events WHERE persistence_id = ? AND sequence_nr <= ?",
        (persistence_id, sequence_nr),
    )
    db.execute("COMMIT")


def _read_by_tag(
    db: sqlite3.Connection, tag: str, after_offset: int, limit: int
) -> list[tuple[int, StoredEvent]]:
    rows = db.execute(
        "SELECT e.ordering, e.persistence_id, e.sequence_nr, e.type_name, e.version, e.payload, "
        "e.tags, e.timestamp FROM hewitt_tags t JOIN hewitt_events e ON e.ordering = t.ordering "
        "WHERE t.tag = ? AND t.ordering > ? ORDER BY t.ordering LIMIT ?",
        (tag, after_offset, limit),
    ).fetchall()
    return [(row[0], _event(row[1], row[2:])) for row in rows]


def _find_idempotency(
    db: sqlite3.Connection, persistence_id: str, key: str, not_before: float
) -> IdempotencyRecord | None:
    row = db.execute(
        "SELECT outcome, timestamp FROM hewitt_idempotency WHERE persistence_id = ? AND key = ?",
        (persistence_id, key),
    ).fetchone()
    if row is None or row[1] < not_before:
        return None
    return IdempotencyRecord(persistence_id, key, bytes(row[0]), row[1])


class SqliteSnapshotStore(SnapshotStore):
    """Snapshots in a SQLite file (may be the journal's file)."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        self._connection = _Connection(path, synchronous)

    async def save(self, snapshot: StoredSnapshot) -> None:
        await self._connection.run(_save_snapshot, snapshot)

    async def load_all(self, persistence_id: str) -> list[StoredSnapshot]:
        result: list[StoredSnapshot] = await self._connection.run(_load_snapshots, persistence_id)
        return result

    async def delete_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        await self._connection.run(_delete_snapshots, persistence_id, sequence_nr)

    async def close(self) -> None:
        await self._connection.close()


def _save_snapshot(db: sqlite3.Connection, snapshot: StoredSnapshot) -> None:
    db.execute(
        "INSERT OR REPLACE INTO hewitt_snapshots (persistence_id, sequence_nr, type_name, "
        "version, payload, timestamp) VALUES (?, ?, ?, ?, ?, ?)",
        (
            snapshot.persistence_id,
            snapshot.sequence_nr,
            snapshot.type_name,
            snapshot.version,
            snapshot.payload,
            snapshot.timestamp,
        ),
    )


def _load_snapshots(db: sqlite3.Connection, persistence_id: str) -> list[StoredSnapshot]:
    rows = db.execute(
        "SELECT sequence_nr, type_name, version, payload, timestamp FROM hewitt_snapshots "
        "WHERE persistence_id = ? ORDER BY sequence_nr DESC",
        (persistence_id,),
    ).fetchall()
    return [
        StoredSnapshot(persistence_id, row[0], row[1], row[2], bytes(row[3]), row[4])
        for row in rows
    ]


def _delete_snapshots(db: sqlite3.Connection, persistence_id: str, sequence_nr: int) -> None:
    db.execute(
        "DELETE FROM hewitt_snapshots WHERE persistence_id = ? AND sequence_nr <= ?",
        (persistence_id, sequence_nr),
    )
