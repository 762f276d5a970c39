"""The SQL of the SQLite journal: schema, migrations, and the batch write.

Used in the process that owns the journal (reads, the thread writer) and in
the writer process (``_sqlite_worker``).
"""

from __future__ import annotations

import functools
import itertools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import msgspec

from ._records import (
    AppendInDoubt,
    ConcurrencyConflict,
    IdempotencyRecord,
    PersistenceError,
    StoredEvent,
    encode_tags,
)

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

_highest_decoder = msgspec.json.Decoder(dict[str, int])

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]


def check_synchronous(synchronous: str) -> None:
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")


class JournalConnection(sqlite3.Connection):
    """A connection that remembers the file it opened (``file``, absolute;
    ``identity``: its device and inode, None for an in-memory database), so
    that a file deleted or replaced underneath is noticed (``check_file``)."""

    file = ""
    identity: tuple[int, int] | None = None


#: Seconds ``connect`` and ``begin`` retry a database that another connection
#: holds locked ("database is locked") before they give up.
BUSY_TIMEOUT = 10.0


def connect(
    path: str,
    synchronous: Synchronous,
    *,
    writer: bool = False,
    on_busy: Callable[[], None] | None = None,
) -> JournalConnection:
    """A connection in autocommit mode (we write BEGIN/COMMIT), schema in place.

    Opening is retried while the file is locked for up to BUSY_TIMEOUT seconds
    (``on_busy`` runs before each retry): SQLite answers "database is locked"
    at once, without waiting for its busy timeout, when a connection switches
    a new file to WAL while another one holds its write lock, which happens
    when two connections open a new file at once."""
    deadline = 0.0
    pause = 0.0005
    while True:
        try:
            return _open(path, synchronous, writer)
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            if on_busy is not None:
                on_busy()
            now = time.monotonic()
            if not deadline:
                deadline = now + BUSY_TIMEOUT
            elif now >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _locked(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLITE_BUSY or SQLITE_LOCKED (or an extended code of them)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _open(path: str, synchronous: Synchronous, writer: bool) -> JournalConnection:
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=JournalConnection
    )
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
            db.execute("PRAGMA busy_timeout=0")  # begin waits, not SQLite
        file = next(row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main")
        if file:  # not in memory
            db.file = file
            db.identity = _identity(file)
    except BaseException:
        db.close()
        raise
    return db


def _identity(file: str) -> tuple[int, int] | None:
    try:
        found = os.stat(file)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def check_file(db: sqlite3.Connection, after_commit: bool = False) -> None:
    """PersistenceError if the file at the connection's path is no longer the
    one it opened (deleted, or replaced by another): what it writes would go
    into a file that nobody can open again. ``after_commit``: the batch just
    committed went there."""
    if not isinstance(db, JournalConnection) or db.identity is None:
        return
    if _identity(db.file) == db.identity:
        return
    file = db.file
    what = (
        "the batch just committed went into the file that is gone, not into the journal"
        if after_commit
        else "nothing is written into a file that is gone"
    )
    raise PersistenceError(
        f"the SQLite journal file {file!r} was deleted or replaced while it was open: "
        f"{what}; restore the file, or close the journal and open it again"
    )


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


Write = tuple[str, int, Sequence[StoredEvent], IdempotencyRecord | None]

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


def write_batch(
    db: sqlite3.Connection, writes: list[Write], before_commit: Callable[[], None]
) -> list[BaseException | None]:
    """One transaction for the whole batch (one fsync); each write succeeds or
    fails (ConcurrencyConflict) alone. ``before_commit`` runs just before the
    COMMIT, and before waiting for another connection's write lock. Raises
    CommitInDoubt when the COMMIT failed in a way that may have committed.

    Raises PersistenceError, for the whole batch, if the journal's file was
    deleted or replaced underneath (``check_file``): before the transaction
    (nothing written), or after its COMMIT (written into the file that is
    gone: never acknowledged as if it were in the journal)."""
    check_file(db)
    begin(db, before_commit)
    try:
        db.execute("SAVEPOINT batch")
        try:
            results = _write_together(db, writes)
        except _REFUSED_WRITE:
            # A row the checks did not foresee (a file also written by other
            # code), a value SQLite cannot hold: write one at a time, each in
            # its own savepoint, so that each fails alone.
            db.execute("ROLLBACK TO batch")
            results = [_write_one(db, write) for write in writes]
        db.execute("RELEASE batch")
        before_commit()
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                raise  # still open (busy): rolled back below, nothing committed
            # Ended by the error (an I/O error or a full disk while syncing):
            # its commit record may be in the WAL, and then it is there once
            # the file is opened again.
            raise CommitInDoubt(f"its COMMIT failed: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    check_file(db, after_commit=True)
    return results


class CommitInDoubt(Exception):
    """The COMMIT of a batch failed after it may have taken effect: the
    outcome of every write in the batch is unknown (``AppendInDoubt``)."""


def in_doubt(write: Write, reason: str) -> AppendInDoubt:
    """The AppendInDoubt of ``write``."""
    persistence_id, expected, events, _ = write
    return AppendInDoubt(persistence_id, expected, len(events), reason)


def begin(db: sqlite3.Connection, before_waiting: Callable[[], None]) -> None:
    """BEGIN IMMEDIATE on the writer connection (whose busy_timeout is 0):
    if another connection holds the write lock, run ``before_waiting`` (post
    the held outcomes), then retry for up to BUSY_TIMEOUT seconds."""
    deadline = 0.0
    pause = 0.0005
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            before_waiting()
            now = time.monotonic()
            if not deadline:
                deadline = now + BUSY_TIMEOUT
            elif now >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


#: What one write can make SQLite refuse, without harm to the others: a
#: constraint, an integer out of range, a string that is not UTF-8 (lone
#: surrogates), a value of a type it cannot bind.
_REFUSED_WRITE = (
    sqlite3.IntegrityError,
    OverflowError,
    ValueError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)


def _write_together(db: sqlite3.Connection, writes: list[Write]) -> list[BaseException | None]:
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


def _write_one(db: sqlite3.Connection, write: Write) -> BaseException | None:
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
    except (ConcurrencyConflict, *_REFUSED_WRITE) as exc:
        db.execute("ROLLBACK TO w")
        db.execute("RELEASE w")
        if isinstance(exc, ConcurrencyConflict) or str(exc).startswith(
            "UNIQUE constraint failed: hewitt_events"
        ):
            return ConcurrencyConflict(pid, expected + 1)
        return PersistenceError(
            f"journal: append to {pid!r} after {expected} refused: {type(exc).__name__}: {exc}"
        )
    db.execute("RELEASE w")
    return None


def delete_idempotency_before(db: sqlite3.Connection, not_before: float) -> None:
    """Delete the idempotency records (of every persistence id) written before
    ``not_before``: a scan of the table (it has no index on the timestamp),
    run once in a while (``Persistence.idempotency_purge_interval``)."""
    check_file(db)
    begin(db, lambda: None)
    try:
        db.execute("DELETE FROM hewitt_idempotency WHERE timestamp < ?", (not_before,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def delete_events(db: sqlite3.Connection, persistence_id: str, sequence_nr: int) -> None:
    check_file(db)
    begin(db, lambda: None)
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
