"""Projections: the read side of CQRS, built on the public actor API.

A :class:`Projection` is an actor that reads the journal's events by tag (or
the events of one persistence id) after a stored offset, decodes them with the
system's codec, hands each to a user handler that updates a read model, and
stores its offset after each batch in an :class:`OffsetStore`. It polls for
new events on a timer.

Delivery is **at least once**: the offset is saved after the handler has run
for the whole batch, so a crash in between (a handler that raises, a killed
process) delivers the events after the stored offset again when the
projection restarts. Handlers must therefore be idempotent (an upsert keyed by
``(persistence_id, sequence_nr)`` or by ``offset``, a "last offset applied"
column in the read model...).
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from .._runtime._actor import Actor
from ._extension import Persistence
from ._records import PersistenceError, StoredEvent, UnknownEventType

R = TypeVar("R")


# --------------------------------------------------------------------------
# Offset stores


class OffsetStore(ABC):
    """Where projections keep their offsets, by projection id."""

    @abstractmethod
    async def load(self, projection_id: str) -> int:
        """The stored offset of ``projection_id`` (0 if none: start at the beginning)."""

    @abstractmethod
    async def save(self, projection_id: str, offset: int) -> None:
        """Store ``offset`` for ``projection_id`` durably (replacing the old one)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""


class InMemoryOffsetStore(OffsetStore):
    """Offsets in a dict: for tests (nothing survives the process)."""

    def __init__(self) -> None:
        self._offsets: dict[str, int] = {}

    async def load(self, projection_id: str) -> int:
        return self._offsets.get(projection_id, 0)

    async def save(self, projection_id: str, offset: int) -> None:
        self._offsets[projection_id] = offset

    async def close(self) -> None:
        pass


_OPEN_ATTEMPTS = 20
_OFFSETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS hewitt_offsets (
    projection_id TEXT PRIMARY KEY,
    "offset" INTEGER NOT NULL
);
"""


class SqliteOffsetStore(OffsetStore):
    """Offsets in the table ``hewitt_offsets`` of a SQLite file (the journal's
    file or another one). All SQL runs on one thread of its own."""

    def __init__(
        self, path: str | Path, *, synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    ) -> None:
        self._path = str(path)
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hewitt-offsets")
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            for attempt in range(_OPEN_ATTEMPTS):
                db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                try:
                    db.execute("PRAGMA busy_timeout=10000")
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute(f"PRAGMA synchronous={self._synchronous}")
                    db.executescript(_OFFSETS_SCHEMA)
                except sqlite3.OperationalError as exc:
                    db.close()
                    # Connections opening a new file at once: switching it to WAL
                    # can fail with "locked" at once (no busy wait); try again.
                    if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                        raise
                    time.sleep(0.001 * (attempt + 1))  # on this store's own thread
                    continue
                self._db = db
                break
        assert self._db is not None
        return self._db

    async def _run(self, function: Callable[..., R], *args: Any) -> R:
        def call() -> R:
            return function(self._open(), *args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def load(self, projection_id: str) -> int:
        return await self._run(_load_offset, projection_id)

    async def save(self, projection_id: str, offset: int) -> None:
        await self._run(_save_offset, projection_id, offset)

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


def _load_offset(db: sqlite3.Connection, projection_id: str) -> int:
    row = db.execute(
        'SELECT "offset" FROM hewitt_offsets WHERE projection_id = ?', (projection_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def _save_offset(db: sqlite3.Connection, projection_id: str, offset: int) -> None:
    db.execute(
        'INSERT INTO hewitt_offsets (projection_id, "offset") VALUES (?, ?) '
        'ON CONFLICT (projection_id) DO UPDATE SET "offset" = excluded."offset"',
        (projection_id, offset),
    )


# --------------------------------------------------------------------------
# The projection actor


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """One decoded event as a projection handler receives it.

    ``offset`` is the journal's global offset of the event (by tag) or its
    sequence number (by persistence id): what the projection stores.
    """

    offset: int
    persistence_id: str
    sequence_nr: int
    event: Any
    tags: tuple[str, ...]
    timestamp: float


#: A projection handler: sync or async, called once per event (at least once).
ProjectionHandler = Callable[[EventEnvelope], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class PollProjection:
    """Read new events now (the timer sends it too); no reply."""


@dataclass(frozen=True, slots=True)
class GetProjectionOffset:
    """Ask the projection for the offset it has processed and stored (an int)."""


ProjectionMessage = PollProjection | GetProjectionOffset


class ProjectionError(PersistenceError):
    """A projection could not decode an event; names the projection, the
    persistence id, the sequence number and the offset."""

    def __init__(
        self, projection_id: str, offset: int, persistence_id: str, sequence_nr: int, reason: str
    ) -> None:
        super().__init__(
            f"projection {projection_id!r} failed at offset {offset} "
            f"({persistence_id!r}, sequence number {sequence_nr}): {reason}"
        )
        self.projection_id = projection_id
        self.offset = offset
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr
        self.reason = reason


class Projection(Actor[ProjectionMessage]):
    """Feeds a read model from the journal, at least once.

    ``system.spawn(Projection, "balances", handler, offsets, tag="account")``
    reads the events tagged ``"account"`` (or, with ``persistence_id=...``,
    the events of that one actor), ``batch_size`` at a time, from the offset
    stored under ``projection_id``; calls ``handler(envelope)`` (sync or
    async) for each, in journal order; then saves the offset of the batch's
    last event. It starts with a poll, polls every ``poll_interval`` seconds
    (the system's clock) and reads the next batch at once while batches come
    full. Send :class:`PollProjection` to poll now,
    :class:`GetProjectionOffset` to ask how far it is.

    A handler that raises fails the actor: its supervisor restarts it (by
    default) and it resumes from the stored offset, so the events of the
    failed batch that were already handled are delivered again. An event
    that cannot be decoded is a :class:`ProjectionError` (same path). The
    journal and codec are the system's :class:`Persistence`.
    """

    def __init__(
        self,
        projection_id: str,
        handler: ProjectionHandler,
        offsets: OffsetStore,
        *,
        tag: str | None = None,
        persistence_id: str | None = None,
        poll_interval: float = 1.0,
        batch_size: int = 256,
    ) -> None:
        if (tag is None) == (persistence_id is None):
            raise ValueError(
                f"projection {projection_id!r}: give exactly one of tag= and persistence_id="
            )
        if poll_interval <= 0:
            raise ValueError(
                f"projection {projection_id!r}: poll_interval must be > 0, got {poll_interval}"
            )
        if batch_size < 1:
            raise ValueError(
                f"projection {projection_id!r}: batch_size must be >= 1, got {batch_size}"
            )
        self.projection_id = projection_id
        self.handler = handler
        self.offsets = offsets
        self.tag = tag
        self.source_persistence_id = persistence_id
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        #: The offset processed and stored (loaded from the store at start).
        self.offset = 0

    async def pre_start(self) -> None:
        """Load the stored offset, start the poll timer and poll once."""
        self.offset = await self.offsets.load(self.projection_id)
        self.context.timers.start_periodic_timer("poll", PollProjection(), self.poll_interval)
        self.context.self.tell(PollProjection())

    async def receive(self, message: ProjectionMessage) -> None:
        if isinstance(message, GetProjectionOffset):
            self.context.reply(self.offset)
            return
        if await self._poll_once():
            # A full batch: there may be more; read on after the queued messages.
            self.context.self.tell(PollProjection())

    async def _read(self) -> list[tuple[int, StoredEvent]]:
        journal = Persistence.of(self.context.system).journal
        if self.tag is not None:
            return await journal.read_by_tag(self.tag, self.offset, self.batch_size)
        assert self.source_persistence_id is not None
        batch: list[tuple[int, StoredEvent]] = []
        # No upper bound: events deleted after a snapshot leave gaps to step over.
        events = journal.read_events(self.source_persistence_id, self.offset + 1)
        try:
            async for stored in events:
                batch.append((stored.sequence_nr, stored))
                if len(batch) >= self.batch_size:
                    break
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        return batch

    async def _poll_once(self) -> bool:
        """Handle one batch; True if it was full."""
        batch = await self._read()
        if not batch:
            return False
        codec = Persistence.of(self.context.system).codec
        for offset, stored in batch:
            try:
                event = codec.decode(stored.type_name, stored.version, stored.payload)
            except UnknownEventType as exc:
                raise ProjectionError(
                    self.projection_id, offset, stored.persistence_id, stored.sequence_nr, str(exc)
                ) from exc
            except msgspec.MsgspecError as exc:
                raise ProjectionError(
                    self.projection_id,
                    offset,
                    stored.persistence_id,
                    stored.sequence_nr,
                    f"undecodable {stored.type_name!r} payload: {exc}",
                ) from exc
            result = self.handler(
                EventEnvelope(
                    offset,
                    stored.persistence_id,
                    stored.sequence_nr,
                    event,
                    stored.tags,
                    stored.timestamp,
                )
            )
            if inspect.isawaitable(result):
                await result
        last = batch[-1][0]
        # At least once: saved after the handler ran for the whole batch.
        await self.offsets.save(self.projection_id, last)
        self.offset = last
        return len(batch) >= self.batch_size
