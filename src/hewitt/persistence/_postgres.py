"""PostgreSQL journal and snapshot store (asyncpg).

Durability: the writer connection runs with ``synchronous_commit=on`` unless
told otherwise, so an ``append`` returns once its batch is flushed to the
server's WAL (and to synchronous standbys, if the server has any).

Connections: one dedicated writer connection per journal, plus a small pool
for reads (and for deletions, which need no ordering). One writer is enough
because it writes whole batches: group commit puts every append that queued
while the previous transaction committed into the next one (one WAL flush for
all of them), so more writer connections would add ordering problems without
saving flushes. It also makes the global ordering safe: every write
transaction takes a transaction-level advisory lock first, so batches (also
from other processes sharing the schema) commit one at a time, in the order
of their BIGSERIAL orderings, and a reader of ``read_by_tag`` that has seen
offset n will never later find a smaller offset committed (the classic gap
problem of sequence-numbered journals). Reads go through the pool so that
many actors recovering at once do not queue behind the writer.

Within a batch: one query reads the highest sequence numbers of the batch's
persistence ids, the checks run in Python in order (a persistence id written
twice in one batch sees its first write), and one statement with
data-modifying CTEs inserts the events, tags, highest numbers and idempotency
records of every write that passed. If that statement fails anyway (a
UNIQUE violation from a writer that does not take the lock), the batch is
redone one write per savepoint so that each fails alone.

Schema: created on first use (``CREATE TABLE IF NOT EXISTS``, under an
advisory lock so two processes starting at once do not collide), in the
schema given to the constructor (default ``public``); ``SCHEMA_VERSION`` and
``migrate`` (in ``_postgres_schema.py``) are the migration story
(docs/persistence-backends.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from ._fork import Owner
from ._journal import Journal, SnapshotStore, check_append
from ._postgres_schema import (
    SynchronousCommit,
    _asyncpg,
    _ensure_schema,
    _lock_key,
    _Pool,
    _quote_schema,
    _require_asyncpg,
)
from ._records import (
    AppendInDoubt,
    ConcurrencyConflict,
    IdempotencyRecord,
    PersistenceError,
    StoredEvent,
    StoredSnapshot,
    encode_tags,
    event_from_row,
)

if TYPE_CHECKING:
    import asyncpg


#: Why a PostgreSQL store cannot work without asyncpg, and what to install.
_READ_CHUNK = 10_000
_HIGHEST_OF = (
    "SELECT persistence_id, sequence_nr FROM {s}.hewitt_highest "
    "WHERE persistence_id = ANY($1::text[])"
)
_WRITE = """
WITH new_events AS (
    INSERT INTO {s}.hewitt_events
        (persistence_id, sequence_nr, type_name, version, payload, tags, timestamp)
    SELECT pid, seq, type_name, version, payload, tags, ts
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::int[], $5::bytea[], $6::text[],
                $7::float8[]) WITH ORDINALITY AS e(pid, seq, type_name, version, payload, tags,
                                                   ts, n)
    ORDER BY n
    RETURNING ordering, persistence_id, sequence_nr
), new_tags AS (
    INSERT INTO {s}.hewitt_tags (tag, ordering)
    SELECT t.tag, e.ordering
    FROM unnest($8::text[], $9::bigint[], $10::text[]) AS t(pid, seq, tag)
    JOIN new_events e ON e.persistence_id = t.pid AND e.sequence_nr = t.seq
), new_highest AS (
    INSERT INTO {s}.hewitt_highest (persistence_id, sequence_nr)
    SELECT * FROM unnest($11::text[], $12::bigint[])
    ON CONFLICT (persistence_id) DO UPDATE SET sequence_nr = EXCLUDED.sequence_nr
), new_idempotency AS (
    INSERT INTO {s}.hewitt_idempotency (persistence_id, key, outcome, timestamp)
    SELECT * FROM unnest($13::text[], $14::text[], $15::bytea[], $16::float8[])
    ON CONFLICT (persistence_id, key)
    DO UPDATE SET outcome = EXCLUDED.outcome, timestamp = EXCLUDED.timestamp
)
SELECT count(*) FROM new_events
"""

_Write = tuple[str, int, Sequence[StoredEvent], IdempotencyRecord | None]


class PostgresJournal(Journal):
    """The journal in PostgreSQL tables (``schema``, default ``public``).

    ``dsn``: a libpq connection string or URL. ``synchronous_commit``: the
    writer's setting (default "on": an append survives a crash of the server
    machine once it returns; "off" trades the last few hundred milliseconds
    of appends for speed). ``read_pool_size``: connections for reads.
    ``connect_kwargs`` go to asyncpg (for example ``statement_cache_size=0``
    behind PgBouncer in transaction mode).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        synchronous_commit: SynchronousCommit = "on",
        read_pool_size: int = 4,
        **connect_kwargs: Any,
    ) -> None:
        _require_asyncpg("PostgresJournal")
        self._dsn = dsn
        self._schema = schema
        self._s = _quote_schema(schema)
        self._synchronous_commit = synchronous_commit
        self._connect_kwargs = connect_kwargs
        self._reads = _Pool(dsn, schema, read_pool_size, connect_kwargs)
        self._writer: asyncpg.Connection | None = None
        self._owner: Owner | None = None  # the process that connected the writer
        self._write_lock = _lock_key(schema, "write")
        self._pending: list[tuple[_Write, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False
        self._sql_highest = _HIGHEST_OF.format(s=self._s)
        self._sql_write = _WRITE.format(s=self._s)

    # --- appends: group commit on one writer connection -----------------

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        if self._closed:
            raise PersistenceError("the PostgreSQL journal is closed")
        if self._owner is not None:
            self._owner.check("the PostgreSQL journal")
        check_append(persistence_id, expected_sequence_nr, events, idempotency)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(((persistence_id, expected_sequence_nr, events, idempotency), future))
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._write_batch([write for write, _ in batch])
                except _CommitInDoubt as doubt:
                    results = [
                        AppendInDoubt(write[0], write[1], len(write[2]), doubt.reason)
                        if result is None
                        else result
                        for (write, _), result in zip(batch, doubt.results, strict=True)
                    ]
                except BaseException as exc:
                    for _, future in batch:
                        if future.done():
                            continue
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        else:
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if result is None:
                        future.set_result(None)
                    else:
                        future.set_exception(result)
        finally:
            self._flushing = None

    async def _connection(self) -> asyncpg.Connection:
        writer = self._writer
        if writer is None or writer.is_closed():
            kwargs = dict(self._connect_kwargs)
            settings = dict(kwargs.pop("server_settings", None) or {})
            settings.setdefault("synchronous_commit", self._synchronous_commit)
            settings.setdefault("application_name", "hewitt-journal-writer")
            writer = await _asyncpg().connect(self._dsn, server_settings=settings, **kwargs)
            try:
                await _ensure_schema(writer, self._schema)
            except BaseException:
                await writer.close()
                raise
            self._writer = writer
            self._owner = Owner()
        return writer

    async def _write_batch(self, writes: list[_Write]) -> list[BaseException | None]:
        """One transaction for ``writes``; a result per write (None: written).
        Raises _CommitInDoubt if the connection failed during the COMMIT."""
        asyncpg = _asyncpg()
        connection = await self._connection()
        try:
            await connection.execute(
                f"BEGIN; SELECT pg_advisory_xact_lock({self._write_lock}); SAVEPOINT batch"
            )
            try:
                results = await self._write_together(connection, writes)
            except (asyncpg.PostgresError, ValueError):  # ValueError: refused by asyncpg itself
                # A row the checks did not foresee (a UNIQUE violation from a
                # writer that does not take the lock, a value the server
                # refuses): one write per savepoint, each failing alone.
                await connection.execute("ROLLBACK TO SAVEPOINT batch")
                results = [await self._write_one(connection, write) for write in writes]
            try:
                await self._commit(connection)
            except asyncpg.PostgresError:
                raise  # the server answered: not committed
            except Exception as exc:  # lost on the way: committed or not, nobody knows
                raise _CommitInDoubt(
                    results, f"the connection to PostgreSQL failed during COMMIT: {exc!r}"
                ) from exc
        except BaseException:
            # Conflicts do not get here (they are results): this is a lost,
            # broken or interrupted connection, or a server in trouble. Never
            # reuse the connection (closing it rolls the transaction back);
            # the next batch connects again.
            self._writer = None
            connection.terminate()
            raise
        return results

    async def _commit(self, connection: asyncpg.Connection) -> None:
        await connection.execute("COMMIT")

    async def _write_together(
        self, connection: asyncpg.Connection, writes: list[_Write]
    ) -> list[BaseException | None]:
        pids = list({write[0] for write in writes})
        highest: dict[str, int] = {
            row[0]: row[1] for row in await connection.fetch(self._sql_highest, pids)
        }
        results: list[BaseException | None] = []
        accepted: list[_Write] = []
        for write in writes:
            pid, expected, events, _ = write
            if highest.get(pid, 0) != expected:
                results.append(ConcurrencyConflict(pid, expected + 1))
                continue
            if events:
                highest[pid] = events[-1].sequence_nr
            accepted.append(write)
            results.append(None)
        if accepted:
            await connection.fetchval(self._sql_write, *_columns(accepted))
        return results

    async def _write_one(
        self, connection: asyncpg.Connection, write: _Write
    ) -> BaseException | None:
        """The slow path: one write in its own savepoint (statements, not
        ``connection.transaction()``, which asyncpg refuses inside the
        transaction that BEGIN started)."""
        asyncpg = _asyncpg()
        pid, expected, _, _ = write
        await connection.execute("SAVEPOINT write")
        try:
            found = await connection.fetchval(
                f"SELECT sequence_nr FROM {self._s}.hewitt_highest WHERE persistence_id = $1",
                pid,
            )
            if (found or 0) != expected:
                failure: BaseException | None = ConcurrencyConflict(pid, expected + 1)
            else:
                await connection.fetchval(self._sql_write, *_columns([write]))
                failure = None
        except asyncpg.UniqueViolationError:
            failure = ConcurrencyConflict(pid, expected + 1)
        except (asyncpg.PostgresError, ValueError) as exc:
            failure = PersistenceError(
                f"journal: append to {pid!r} after {expected} refused: {type(exc).__name__}: {exc}"
            )
        if failure is not None:
            await connection.execute("ROLLBACK TO SAVEPOINT write")
        await connection.execute("RELEASE SAVEPOINT write")
        return failure

    # --- reads ------------------------------------------------------------

    async def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        pool = await self._reads.get()
        last = to_sequence_nr if to_sequence_nr is not None else 2**62
        start = from_sequence_nr
        while True:
            rows = await pool.fetch(
                "SELECT sequence_nr, type_name, version, payload, tags, timestamp "
                f"FROM {self._s}.hewitt_events WHERE persistence_id = $1 "
                "AND sequence_nr >= $2 AND sequence_nr <= $3 ORDER BY sequence_nr LIMIT $4",
                persistence_id,
                start,
                last,
                _READ_CHUNK,
            )
            for row in rows:
                yield event_from_row(persistence_id, tuple(row))
            if len(rows) < _READ_CHUNK:
                return
            start = rows[-1][0] + 1

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        pool = await self._reads.get()
        found = await pool.fetchval(
            f"SELECT sequence_nr FROM {self._s}.hewitt_highest WHERE persistence_id = $1",
            persistence_id,
        )
        return int(found or 0)

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        pool = await self._reads.get()
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(
                f"DELETE FROM {self._s}.hewitt_tags WHERE ordering IN (SELECT ordering "
                f"FROM {self._s}.hewitt_events WHERE persistence_id = $1 AND sequence_nr <= $2)",
                persistence_id,
                sequence_nr,
            )
            await connection.execute(
                f"DELETE FROM {self._s}.hewitt_events "
                "WHERE persistence_id = $1 AND sequence_nr <= $2",
                persistence_id,
                sequence_nr,
            )

    async def delete_idempotency_before(self, not_before: float) -> None:
        pool = await self._reads.get()
        await pool.execute(
            f"DELETE FROM {self._s}.hewitt_idempotency WHERE timestamp < $1", not_before
        )

    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        pool = await self._reads.get()
        rows = await pool.fetch(
            "SELECT e.ordering, e.persistence_id, e.sequence_nr, e.type_name, e.version, "
            f"e.payload, e.tags, e.timestamp FROM {self._s}.hewitt_tags t "
            f"JOIN {self._s}.hewitt_events e ON e.ordering = t.ordering "
            "WHERE t.tag = $1 AND t.ordering > $2 ORDER BY t.ordering LIMIT $3",
            tag,
            after_offset,
            limit,
        )
        return [(row[0], event_from_row(row[1], tuple(row)[2:])) for row in rows]

    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        pool = await self._reads.get()
        row = await pool.fetchrow(
            f"SELECT outcome, timestamp FROM {self._s}.hewitt_idempotency "
            "WHERE persistence_id = $1 AND key = $2",
            persistence_id,
            key,
        )
        if row is None or row[1] < not_before:
            return None
        return IdempotencyRecord(persistence_id, key, bytes(row[0]), row[1])

    async def close(self) -> None:
        """Commit what is queued, then close the connections. Idempotent. In
        a forked child it only closes this copy (the connections are the
        parent's)."""
        self._closed = True
        if self._owner is not None and not self._owner.here:
            return
        if self._reads.owner is not None and not self._reads.owner.here:
            return
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        await self._reads.close()


class _CommitInDoubt(Exception):
    """The connection failed during a batch's COMMIT: the writes that passed
    their checks (None in ``results``) may or may not be committed."""

    def __init__(self, results: list[BaseException | None], reason: str) -> None:
        super().__init__(reason)
        self.results = results
        self.reason = reason


def _columns(writes: list[_Write]) -> list[list[Any]]:
    """The 16 array parameters of _WRITE for ``writes``."""
    event_pid: list[str] = []
    event_seq: list[int] = []
    type_names: list[str] = []
    versions: list[int] = []
    payloads: list[bytes] = []
    tags: list[str] = []
    timestamps: list[float] = []
    tag_pid: list[str] = []
    tag_seq: list[int] = []
    tag_names: list[str] = []
    highest: dict[str, int] = {}
    idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
    for pid, _, events, record in writes:
        for event in events:
            event_pid.append(pid)
            event_seq.append(event.sequence_nr)
            type_names.append(event.type_name)
            versions.append(event.version)
            payloads.append(event.payload)
            tags.append(encode_tags(event.tags))
            timestamps.append(event.timestamp)
            for tag in event.tags:
                tag_pid.append(pid)
                tag_seq.append(event.sequence_nr)
                tag_names.append(tag)
        if events:
            highest[pid] = events[-1].sequence_nr
        if record is not None:
            idempotency[(pid, record.key)] = record
    records = list(idempotency.values())
    return [
        event_pid,
        event_seq,
        type_names,
        versions,
        payloads,
        tags,
        timestamps,
        tag_pid,
        tag_seq,
        tag_names,
        list(highest),
        list(highest.values()),
        [r.persistence_id for r in records],
        [r.key for r in records],
        [r.outcome for r in records],
        [r.timestamp for r in records],
    ]


class PostgresSnapshotStore(SnapshotStore):
    """Snapshots in a PostgreSQL table (same ``schema`` as the journal's, if you like)."""

    def __init__(
        self, dsn: str, *, schema: str = "public", pool_size: int = 2, **connect_kwargs: Any
    ) -> None:
        _require_asyncpg("PostgresSnapshotStore")
        self._s = _quote_schema(schema)
        self._pool = _Pool(dsn, schema, pool_size, connect_kwargs)

    async def save(self, snapshot: StoredSnapshot) -> None:
        pool = await self._pool.get()
        await pool.execute(
            f"INSERT INTO {self._s}.hewitt_snapshots (persistence_id, sequence_nr, type_name, "
            "version, payload, timestamp) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (persistence_id, sequence_nr) DO UPDATE SET type_name = "
            "EXCLUDED.type_name, version = EXCLUDED.version, payload = EXCLUDED.payload, "
            "timestamp = EXCLUDED.timestamp",
            snapshot.persistence_id,
            snapshot.sequence_nr,
            snapshot.type_name,
            snapshot.version,
            snapshot.payload,
            snapshot.timestamp,
        )

    async def load_all(self, persistence_id: str) -> list[StoredSnapshot]:
        pool = await self._pool.get()
        rows = await pool.fetch(
            "SELECT sequence_nr, type_name, version, payload, timestamp "
            f"FROM {self._s}.hewitt_snapshots WHERE persistence_id = $1 "
            "ORDER BY sequence_nr DESC",
            persistence_id,
        )
        return [
            StoredSnapshot(persistence_id, row[0], row[1], row[2], bytes(row[3]), row[4])
            for row in rows
        ]

    async def delete_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        pool = await self._pool.get()
        await pool.execute(
            f"DELETE FROM {self._s}.hewitt_snapshots "
            "WHERE persistence_id = $1 AND sequence_nr <= $2",
            persistence_id,
            sequence_nr,
        )

    async def close(self) -> None:
        await self._pool.close()
