"""SQLite journal and snapshot store: the embedded default.

One file, WAL mode. Durability: ``synchronous="FULL"`` (default) makes every
committed batch survive a power loss; ``"NORMAL"`` survives a process crash
(kill -9) but may lose the last batches on power loss, for more speed.
``append`` returns once its batch is committed (with FULL: synced).

Threads: a journal has one writer thread with its own connection, and reads
run on a second thread with a second connection (WAL lets readers and the
writer work at once; a read sees every append that has returned). sqlite3
connections are not shared between threads.

Group commit: appends from all actors queue for the writer thread, which
takes everything queued, writes it in one transaction (one fsync), posts the
outcomes back to the event loop in one call, and starts on what queued
meanwhile, without waiting for the loop. Within a batch, the checks run in
order (a persistence id written twice in one batch sees its first write), a
conflicting append fails alone, and no persistence id is reordered. The
batch goes to SQLite as a few statements of many rows each (see
``_write_together``), and under load batches come in two alternating halves
so that one commits while the event loop runs the actors of the other (see
``_Writer._run``; docs/persistence-backends.md explains both with the GIL).

Schema: created on first use; ``SCHEMA_VERSION`` and ``migrate`` are the
migration story (docs/persistence-backends.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import msgspec

from ._journal import IdempotencyRecord, Journal, SnapshotStore, check_append
from ._records import (
    ConcurrencyConflict,
    PersistenceError,
    StoredEvent,
    StoredSnapshot,
    encode_tags,
    event_from_row,
)

#: The schema version this code writes; see ``migrate``.
SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hewitt_schema (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS hewitt_events (
        ordering INTEGER PRIMARY KEY AUTOINCREMENT,
        persistence_id TEXT NOT NULL,
        sequence_nr INTEGER NOT NULL,
        type_name TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        tags TEXT NOT NULL,
        timestamp REAL NOT NULL,
        UNIQUE (persistence_id, sequence_nr)
    )""",
    """CREATE TABLE IF NOT EXISTS hewitt_highest (
        persistence_id TEXT PRIMARY KEY,
        sequence_nr INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS hewitt_tags (
        tag TEXT NOT NULL,
        ordering INTEGER NOT NULL,
        PRIMARY KEY (tag, ordering)
    )""",
    """CREATE TABLE IF NOT EXISTS hewitt_idempotency (
        persistence_id TEXT NOT NULL,
        key TEXT NOT NULL,
        outcome BLOB NOT NULL,
        timestamp REAL NOT NULL,
        PRIMARY KEY (persistence_id, key)
    )""",
    """CREATE TABLE IF NOT EXISTS hewitt_snapshots (
        persistence_id TEXT NOT NULL,
        sequence_nr INTEGER NOT NULL,
        type_name TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        timestamp REAL NOT NULL,
        PRIMARY KEY (persistence_id, sequence_nr)
    )""",
)

_READ_CHUNK = 10_000
_tags_encoder = msgspec.json.Encoder()
_tags_decoder = msgspec.json.Decoder(tuple[str, ...])
_highest_decoder = msgspec.json.Decoder(dict[str, int])

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]


def _check_synchronous(synchronous: str) -> None:
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")


def _connect(path: str, synchronous: Synchronous, *, writer: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (we write BEGIN/COMMIT), schema in place."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("BEGIN IMMEDIATE")  # two connections creating the schema at once
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            migrate(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if writer:
            db.execute("PRAGMA busy_timeout=0")  # _begin waits, not SQLite
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection) -> None:
    """Bring an existing file to SCHEMA_VERSION, inside the caller's transaction.

    The migration story: every schema change bumps SCHEMA_VERSION and adds a
    step here, ``if version < N: ...; version = N``, written so that it runs
    once (the version row is updated in the same transaction). A file from
    newer code is refused, never downgraded.
    """
    row = db.execute("SELECT version FROM hewitt_schema").fetchone()
    if row is None:
        db.execute("INSERT INTO hewitt_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        return
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise PersistenceError(
            f"journal schema version {version} is newer than this hewitt ({SCHEMA_VERSION}); "
            "upgrade hewitt to read this file"
        )
    # Steps for SCHEMA_VERSION 2 and later go here.
    if version != SCHEMA_VERSION:
        db.execute("UPDATE hewitt_schema SET version = ?", (SCHEMA_VERSION,))


class _Connection:
    """A sqlite3 connection owned by one thread (reads, snapshots)."""

    def __init__(self, path: str | Path, synchronous: Synchronous) -> None:
        _check_synchronous(synchronous)
        self.path = str(path)
        self.synchronous = synchronous
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="hewitt-sqlite")
        self.db: sqlite3.Connection | None = None
        self.closed = False

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.closed:
            raise PersistenceError(f"the SQLite store {self.path!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._call, function, args)

    def _call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self.db is None:
            self.db = _connect(self.path, self.synchronous)
        return function(self.db, *args)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True

        def close() -> None:
            if self.db is not None:
                self.db.close()
                self.db = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, close)
        self.executor.shutdown(wait=True)


_Write = tuple[str, int, Sequence[StoredEvent], IdempotencyRecord | None]


class _Job:
    """Work for the writer thread; ``future`` lives on the caller's loop."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future


class _Append(_Job):
    __slots__ = ("write",)

    def __init__(self, future: asyncio.Future[Any], write: _Write) -> None:
        self.future = future  # not super().__init__: one append per event, keep it cheap
        self.write = write


class _Call(_Job):
    __slots__ = ("args", "function")

    def __init__(
        self, future: asyncio.Future[Any], function: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        super().__init__(future)
        self.function = function
        self.args = args


class _Close(_Job):
    __slots__ = ()


_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]
_SPLIT_AT = 64  # a batch this big with no outcomes held is written as two


class _Writer:
    """The writer thread of a journal: runs queued jobs in order, and all the
    appends queued back to back as one batch (one transaction)."""

    def __init__(self, path: str | Path, synchronous: Synchronous) -> None:
        _check_synchronous(synchronous)
        self.path = str(path)
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: list[_Job] = []
        self._idle = False
        self._thread: threading.Thread | None = None
        self.closed = False

    def submit(self, job: _Job) -> None:
        if self.closed:
            raise PersistenceError("the SQLite journal is closed")
        with self._lock:  # the condition's lock (a plain Lock is cheaper to enter)
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hewitt-sqlite-writer", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._cond.notify()

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(_Call(future, function, args))
        return await future

    async def close(self) -> None:
        if self.closed:
            return
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(_Close(future))
        self.closed = True
        await future
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        """The thread. Should it ever fail (a bug: storage errors are
        outcomes), the appends still queued fail instead of waiting forever,
        and the journal refuses new ones."""
        try:
            self._serve()
        except BaseException as exc:
            self.closed = True
            with self._lock:
                jobs, self._queue = self._queue, []
            failure = PersistenceError(f"the SQLite writer thread failed: {exc!r}")
            failure.__cause__ = exc
            _post([(job.future, None, failure) for job in jobs])
            raise

    def _serve(self) -> None:
        """The loop of the thread. Outcomes of a committed batch are held until the next
        batch's rows are in, then posted just before its COMMIT: while that
        commit syncs (no GIL needed), the event loop runs the actors whose
        appends are done; the writer meanwhile builds and inserts the next
        batch while the loop has nothing to do (every actor waits for the
        journal), so it does not wait for the GIL at each call into sqlite3.
        With nothing queued, outcomes are posted at once."""
        db: sqlite3.Connection | None = None
        held: list[_Outcome] = []

        def release() -> None:
            nonlocal held
            if held:
                _post(held)
                held = []

        while True:
            with self._cond:
                while not self._queue and not held:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                jobs, self._queue = self._queue, []
                if not held and len(jobs) >= _SPLIT_AT:
                    # Two halves, so that one commits while the loop runs the
                    # actors of the other (see above); they keep alternating.
                    self._queue = jobs[len(jobs) // 2 :]
                    jobs = jobs[: len(jobs) // 2]
            if not jobs:
                release()
                continue
            outcomes: list[_Outcome] = []
            start = 0
            while start < len(jobs):
                job = jobs[start]
                if isinstance(job, _Append):
                    end = start + 1
                    while end < len(jobs) and isinstance(jobs[end], _Append):
                        end += 1
                    appends: list[_Append] = jobs[start:end]  # type: ignore[assignment]
                    start = end
                    try:
                        if db is None:
                            db = _connect(self.path, self.synchronous, writer=True)
                        results = _write_batch(db, [a.write for a in appends], release)
                    except Exception as exc:
                        outcomes.extend((a.future, None, exc) for a in appends)
                    else:
                        outcomes.extend(
                            (a.future, None, result)
                            for a, result in zip(appends, results, strict=True)
                        )
                    finally:
                        release()
                    continue
                start += 1
                release()
                if isinstance(job, _Call):
                    try:
                        if db is None:
                            db = _connect(self.path, self.synchronous, writer=True)
                        outcomes.append((job.future, job.function(db, *job.args), None))
                    except Exception as exc:
                        outcomes.append((job.future, None, exc))
                elif isinstance(job, _Close):
                    if db is not None:
                        db.close()
                    outcomes.append((job.future, None, None))
                    _post(outcomes)
                    return
            held = outcomes


def _post(outcomes: list[_Outcome]) -> None:
    """Hand outcomes to their loops: one wake-up of each loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
            loop.call_soon_threadsafe(_settle, group)


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():  # cancelled meanwhile
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


# Statements of the single-write path.
_INSERT_TAG = "INSERT INTO hewitt_tags (tag, ordering) VALUES (?, ?)"
_UPSERT_HIGHEST = (
    "INSERT INTO hewitt_highest (persistence_id, sequence_nr) VALUES (?, ?) "
    "ON CONFLICT (persistence_id) DO UPDATE SET sequence_nr = excluded.sequence_nr"
)
_UPSERT_IDEMPOTENCY = (
    "INSERT OR REPLACE INTO hewitt_idempotency (persistence_id, key, outcome, timestamp) "
    "VALUES (?, ?, ?, ?)"
)

# Statements of the batch path: many rows per statement (see _write_together).
# {rows} becomes "(?, ?), (?, ?), ..."; rows of NULLs pad a statement to its
# size class (so few distinct statements, all in the statement cache) and are
# filtered out by "WHERE column1 IS NOT NULL".
# One row (a JSON object), not one row per pid: fetching each row is a call
# into SQLite that releases and takes back the GIL (see _write_together).
_BATCH_HIGHEST = (
    "SELECT json_group_object(persistence_id, sequence_nr) FROM hewitt_highest "
    "WHERE persistence_id IN ({rows})"
)
_BATCH_EVENTS = (
    "INSERT INTO hewitt_events (ordering, persistence_id, sequence_nr, type_name, version, "
    "payload, tags, timestamp) SELECT * FROM (VALUES {rows}) WHERE column1 IS NOT NULL"
)
_BATCH_TAGS = (
    "INSERT INTO hewitt_tags (tag, ordering) SELECT * FROM (VALUES {rows}) "
    "WHERE column1 IS NOT NULL"
)
_BATCH_HIGHEST_UPSERT = (
    "INSERT INTO hewitt_highest (persistence_id, sequence_nr) SELECT * FROM (VALUES {rows}) "
    "WHERE column1 IS NOT NULL "
    "ON CONFLICT (persistence_id) DO UPDATE SET sequence_nr = excluded.sequence_nr"
)
_BATCH_IDEMPOTENCY = (
    "INSERT OR REPLACE INTO hewitt_idempotency (persistence_id, key, outcome, timestamp) "
    "SELECT * FROM (VALUES {rows}) WHERE column1 IS NOT NULL"
)
_LAST_ORDERING = (
    "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'hewitt_events'), 0), "
    "COALESCE((SELECT max(ordering) FROM hewitt_events), 0))"
)
_MIN_ROWS = 1  # the smallest size class of a batch statement
_MAX_ROWS = 1024  # the largest (8 columns x 1024 rows < SQLite's 32766 parameters)
_NO_TAGS = "[]"


@functools.cache
def _sized(statement: str, width: int, size: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return statement.format(rows=", ".join([row] * size))


def _chunks(width: int, rows: list[Any]) -> Iterator[tuple[int, list[Any]]]:
    """(size class, flat parameters padded with NULL rows) per statement."""
    for start in range(0, len(rows), _MAX_ROWS):
        chunk = rows[start : start + _MAX_ROWS]
        size = _MIN_ROWS
        while size < len(chunk):
            size *= 2
        flat = list(chunk) if width == 1 else list(itertools.chain.from_iterable(chunk))
        flat.extend([None] * (width * (size - len(chunk))))
        yield size, flat


def _execute_rows(db: sqlite3.Connection, statement: str, width: int, rows: list[Any]) -> None:
    for size, flat in _chunks(width, rows):
        db.execute(_sized(statement, width, size), flat)


def _write_batch(
    db: sqlite3.Connection, writes: list[_Write], before_commit: Callable[[], None]
) -> list[BaseException | None]:
    """One transaction for the whole batch (one fsync); each write succeeds or
    fails (ConcurrencyConflict) alone. ``before_commit`` runs just before the
    COMMIT, and before waiting for another connection's write lock."""
    _begin(db, before_commit)
    try:
        db.execute("SAVEPOINT batch")
        try:
            results = _write_together(db, writes)
        except sqlite3.IntegrityError:
            # A row the checks did not foresee (a file also written by other
            # code): write one at a time, each in its own savepoint.
            db.execute("ROLLBACK TO batch")
            results = [_write_one(db, write) for write in writes]
        db.execute("RELEASE batch")
        before_commit()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return results


_BUSY_TIMEOUT = 10.0  # seconds the writer waits for another connection's write lock


def _begin(db: sqlite3.Connection, before_waiting: Callable[[], None]) -> None:
    """BEGIN IMMEDIATE on the writer connection (whose busy_timeout is 0):
    if another connection holds the write lock, run ``before_waiting`` (post
    the held outcomes), then retry for up to _BUSY_TIMEOUT seconds."""
    deadline = 0.0
    pause = 0.0005
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            before_waiting()
            now = time.monotonic()
            if not deadline:
                deadline = now + _BUSY_TIMEOUT
            elif now >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _write_together(db: sqlite3.Connection, writes: list[_Write]) -> list[BaseException | None]:
    """The batch path. We hold the write lock (BEGIN IMMEDIATE), so one query
    reads the highest numbers of the batch, the checks run here in order, and
    global orderings are assigned here, above every ordering ever used. Each
    table then gets one statement of many rows (per 1,024): few calls into
    sqlite3, so the writer thread rarely waits for the GIL. (executemany
    releases the GIL around every row and must take it back from the event
    loop thread each time: it made batches several times slower.)"""
    highest: dict[str, int] = {}
    for size, flat in _chunks(1, list({write[0] for write in writes})):
        (found,) = db.execute(_sized(_BATCH_HIGHEST, 1, size), flat).fetchone()
        highest.update(_highest_decoder.decode(found))
    (ordering,) = db.execute(_LAST_ORDERING).fetchone()
    results: list[BaseException | None] = []
    event_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[str, int]] = []
    highest_rows: dict[str, int] = {}
    idempotency_rows: list[tuple[Any, ...]] = []
    for pid, expected, events, idempotency in writes:
        if highest.get(pid, 0) != expected:
            results.append(ConcurrencyConflict(pid, expected + 1))
            continue
        for event in events:
            ordering += 1
            tags = event.tags
            event_rows.append(
                (
                    ordering,
                    pid,
                    event.sequence_nr,
                    event.type_name,
                    event.version,
                    event.payload,
                    encode_tags(tags),
                    event.timestamp,
                )
            )
            tag_rows.extend((tag, ordering) for tag in tags)
        if events:
            highest[pid] = highest_rows[pid] = events[-1].sequence_nr
        if idempotency is not None:
            idempotency_rows.append(
                (pid, idempotency.key, idempotency.outcome, idempotency.timestamp)
            )
        results.append(None)
    _execute_rows(db, _BATCH_EVENTS, 8, event_rows)
    _execute_rows(db, _BATCH_TAGS, 2, tag_rows)
    _execute_rows(db, _BATCH_HIGHEST_UPSERT, 2, list(highest_rows.items()))
    _execute_rows(db, _BATCH_IDEMPOTENCY, 4, idempotency_rows)
    return results


def _write_one(db: sqlite3.Connection, write: _Write) -> BaseException | None:
    """The slow path: one write in its own savepoint."""
    pid, expected, events, idempotency = write
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
                    encode_tags(event.tags),
                    event.timestamp,
                ),
            )
            for tag in event.tags:
                db.execute(_INSERT_TAG, (tag, cursor.lastrowid))
        if events:
            db.execute(_UPSERT_HIGHEST, (pid, events[-1].sequence_nr))
        if idempotency is not None:
            db.execute(
                _UPSERT_IDEMPOTENCY,
                (pid, idempotency.key, idempotency.outcome, idempotency.timestamp),
            )
    except (ConcurrencyConflict, sqlite3.IntegrityError) as exc:
        db.execute("ROLLBACK TO w")
        db.execute("RELEASE w")
        if isinstance(exc, ConcurrencyConflict) or str(exc).startswith(
            "UNIQUE constraint failed: hewitt_events"
        ):
            return ConcurrencyConflict(pid, expected + 1)
        return PersistenceError(f"journal: append to {pid!r} after {expected} refused: {exc}")
    db.execute("RELEASE w")
    return None


class SqliteJournal(Journal):
    """The journal in a SQLite file (shared with a SqliteSnapshotStore if you like).

    ``synchronous``: "FULL" (default: a returned append survives power loss),
    "NORMAL" (survives a crash of the process, not of the machine), "EXTRA".
    """

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        self._writer = _Writer(path, synchronous)
        self._reader = _Connection(path, synchronous)

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        check_append(persistence_id, expected_sequence_nr, events, idempotency)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer.submit(
            _Append(future, (persistence_id, expected_sequence_nr, events, idempotency))
        )
        await future

    async def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        last = to_sequence_nr if to_sequence_nr is not None else 2**62
        start = from_sequence_nr
        while True:
            rows = await self._reader.run(_read_events, persistence_id, start, last)
            for row in rows:
                yield row
            if len(rows) < _READ_CHUNK:
                return
            start = rows[-1].sequence_nr + 1

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return int(await self._reader.run(_highest, persistence_id))

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        await self._writer.call(_delete_events, persistence_id, sequence_nr)

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


def _read_events(
    db: sqlite3.Connection, persistence_id: str, start: int, last: int
) -> list[StoredEvent]:
    rows = db.execute(
        "SELECT sequence_nr, type_name, version, payload, tags, timestamp FROM hewitt_events "
        "WHERE persistence_id = ? AND sequence_nr >= ? AND sequence_nr <= ? "
        "ORDER BY sequence_nr LIMIT ?",
        (persistence_id, start, last, _READ_CHUNK),
    ).fetchall()
    return [event_from_row(persistence_id, row) for row in rows]


def _highest(db: sqlite3.Connection, persistence_id: str) -> int:
    row = db.execute(
        "SELECT sequence_nr FROM hewitt_highest WHERE persistence_id = ?", (persistence_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def _delete_events(db: sqlite3.Connection, persistence_id: str, sequence_nr: int) -> None:
    _begin(db, lambda: None)
    try:
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
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


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
