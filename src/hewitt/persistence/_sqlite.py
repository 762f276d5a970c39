"""SQLite journal and snapshot store: the embedded default.

One file, WAL mode. Durability: ``synchronous="FULL"`` (default) makes every
committed batch survive a power loss; ``"NORMAL"`` survives a process crash
(kill -9) but may lose the last batches on power loss, for more speed.
``append`` returns once its batch is committed (with FULL: synced).

Writer: by default a child process owns the journal's only writing
connection (``_sqlite_process`` on the loop's side, ``_sqlite_worker`` in the
child): the SQL work of the batches runs on another core instead of taking
turns on the GIL with the event loop. ``writer="thread"`` keeps it in a
thread of this process (``_sqlite_thread``), for where a child process is not
wanted. Reads and snapshots run on threads of this process, each with its
own connection (WAL lets readers and the writer work at once; a read sees
every append that has returned).

Group commit: the appends of all actors made in one loop iteration go to the
writer together; it writes everything that has arrived in one transaction
(one fsync), and replies once it is committed. Within a batch the checks run
in order (a persistence id written twice in one batch sees its first write),
a conflicting append fails alone, and no persistence id is reordered. The
batch goes to SQLite as a few statements of many rows each
(``_sqlite_sql.write_batch``); under load batches come in two halves, so that
one commits while the event loop runs the actors of the other
(docs/persistence-backends.md).

Schema: created on first use; ``SCHEMA_VERSION`` and ``migrate`` (in
``_sqlite_sql``) are the migration story (docs/persistence-backends.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from ._fork import Owner
from ._journal import Journal, SnapshotStore, check_append
from ._records import (
    IdempotencyRecord,
    PersistenceError,
    StoredEvent,
    StoredSnapshot,
    event_from_row,
)
from ._sqlite_process import ProcessWriter
from ._sqlite_sql import JournalConnection, Synchronous, check_file, check_synchronous, connect
from ._sqlite_thread import ThreadWriter

#: Rows per read query (a long history is read in chunks).
READ_CHUNK = 10_000


class _Connection:
    """A sqlite3 connection owned by one thread (reads, snapshots)."""

    def __init__(self, path: str | Path, synchronous: Synchronous) -> None:
        check_synchronous(synchronous)
        self.path = str(path)
        self.synchronous = synchronous
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="hewitt-sqlite")
        self.db: JournalConnection | None = None
        self.closed = False
        self._owner: Owner | None = None  # the process that started the thread

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.closed:
            raise PersistenceError(f"the SQLite store {self.path!r} is closed")
        if self._owner is None:
            self._owner = Owner()
        else:
            self._owner.check(f"the SQLite store {self.path!r}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._call, function, args)

    def _call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self.db is None:
            self.db = connect(self.path, self.synchronous)
        else:
            check_file(self.db)  # deleted underneath: no reads of a file that is gone
        return function(self.db, *args)

    def _close_db(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._owner is not None and not self._owner.here:
            return  # a fork: the thread is the parent's
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._close_db)
        self.executor.shutdown(wait=True)

    def abandon(self) -> None:
        """The store was dropped without being closed (its finalizer, from
        any thread): its thread closes the connection and ends."""
        if self.closed:
            return
        self.closed = True
        if self._owner is None:  # never used: no thread
            self.executor.shutdown(wait=False)
        elif self._owner.here:
            with contextlib.suppress(RuntimeError):  # at exit: the threads have ended
                self.executor.submit(self._close_db)
            self.executor.shutdown(wait=False)


class SqliteJournal(Journal):
    """The journal in a SQLite file (shared with a SqliteSnapshotStore if you like).

    ``synchronous``: "FULL" (default: a returned append survives power loss),
    "NORMAL" (survives a crash of the process, not of the machine), "EXTRA".
    ``writer``: "process" (the default, except on Windows: the writes run in
    a child process, off the GIL, started at the journal's first read or
    write, not when it is constructed) or "thread" (no child process; slower
    under load). See docs/persistence-backends.md.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        writer: Literal["process", "thread"] | None = None,
    ) -> None:
        if writer is None:  # Windows' event loops cannot watch pipes
            writer = "thread" if sys.platform == "win32" else "process"
        if writer not in ("process", "thread"):
            raise ValueError(f"writer must be 'process' or 'thread', got {writer!r}")
        self._writer: ProcessWriter | ThreadWriter = (
            ProcessWriter(path, synchronous)
            if writer == "process"
            else ThreadWriter(path, synchronous)
        )
        self._reader = _Connection(path, synchronous)
        # Dropped without close(): the writer and the reader thread still end.
        weakref.finalize(self, _abandon, self._writer, self._reader)

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        await self.append_soon(persistence_id, expected_sequence_nr, events, idempotency)

    def append_soon(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> asyncio.Future[None]:
        check_append(persistence_id, expected_sequence_nr, events, idempotency)
        return self._writer.append((persistence_id, expected_sequence_nr, events, idempotency))

    async def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        last = to_sequence_nr if to_sequence_nr is not None else 2**62
        start = from_sequence_nr
        self._writer.warm_up()
        while True:
            rows = await self._reader.run(_read_events, persistence_id, start, last)
            for row in rows:
                yield row
            if len(rows) < READ_CHUNK:
                return
            start = rows[-1].sequence_nr + 1

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        self._writer.warm_up()
        return int(await self._reader.run(_highest, persistence_id))

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        await self._writer.delete_events(persistence_id, sequence_nr)

    async def delete_idempotency_before(self, not_before: float) -> None:
        await self._writer.delete_idempotency_before(not_before)

    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        result: list[tuple[int, StoredEvent]] = await self._reader.run(
            _read_by_tag, tag, after_offset, limit
        )
        return result

    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        record: IdempotencyRecord | None = await self._reader.run(
            _find_idempotency, persistence_id, key, not_before
        )
        return record

    async def close(self) -> None:
        """Commit what is queued, then close both connections. Idempotent."""
        await self._writer.close()
        await self._reader.close()


def _abandon(writer: ProcessWriter | ThreadWriter, *connections: _Connection) -> None:
    writer.abandon()
    for connection in connections:
        connection.abandon()


def _read_events(
    db: sqlite3.Connection, persistence_id: str, start: int, last: int
) -> list[StoredEvent]:
    rows = db.execute(
        "SELECT sequence_nr, type_name, version, payload, tags, timestamp FROM hewitt_events "
        "WHERE persistence_id = ? AND sequence_nr >= ? AND sequence_nr <= ? "
        "ORDER BY sequence_nr LIMIT ?",
        (persistence_id, start, last, READ_CHUNK),
    ).fetchall()
    return [event_from_row(persistence_id, row) for row in rows]


def _highest(db: sqlite3.Connection, persistence_id: str) -> int:
    row = db.execute(
        "SELECT sequence_nr FROM hewitt_highest WHERE persistence_id = ?", (persistence_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def _read_by_tag(
    db: sqlite3.Connection, tag: str, after_offset: int, limit: int
) -> list[tuple[int, StoredEvent]]:
    rows = db.execute(
        "SELECT e.ordering, e.persistence_id, e.sequence_nr, e.type_name, e.version, e.payload, "
        "e.tags, e.timestamp FROM hewitt_tags t JOIN hewitt_events e ON e.ordering = t.ordering "
        "WHERE t.tag = ? AND t.ordering > ? ORDER BY t.ordering LIMIT ?",
        (tag, after_offset, limit),
    ).fetchall()
    return [(row[0], event_from_row(row[1], row[2:])) for row in rows]


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
        weakref.finalize(self, self._connection.abandon)

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
