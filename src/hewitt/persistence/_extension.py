"""Persistence: the journal, snapshot store and codec of one actor system."""

from __future__ import annotations

import logging
from typing import Any

from .._runtime._system import ActorSystem
from ._codec import Codec
from ._journal import Journal, SnapshotStore, now
from ._records import PersistenceError

logger = logging.getLogger("hewitt.persistence")


class Persistence:
    """What persistent actors of a system write to. Install it once::

        Persistence.install(system, SqliteJournal("bank.db"), SqliteSnapshotStore("bank.db"),
                            codec)

    Attributes:
        idempotency_window: seconds an idempotency key is remembered (kept
            durably with the events, so it survives restarts).
        idempotency_purge_interval: seconds between two deletions of the
            records older than the window (default: the window, at most an
            hour). The first command with an idempotency key after the
            interval runs it before its own lookup; nothing runs while no
            such command comes. ``purge_idempotency()`` runs one now.
    """

    def __init__(
        self,
        journal: Journal,
        snapshots: SnapshotStore | None = None,
        codec: Codec | None = None,
        *,
        idempotency_window: float = 24 * 3600.0,
        idempotency_purge_interval: float | None = None,
    ) -> None:
        self.journal = journal
        self.snapshots = snapshots
        self.codec = codec if codec is not None else Codec()
        self.idempotency_window = idempotency_window
        self.idempotency_purge_interval = (
            idempotency_purge_interval
            if idempotency_purge_interval is not None
            else min(idempotency_window, 3600.0)
        )
        self._next_purge = 0.0  # wall-clock time of the next purge (0: at the first key)

    @classmethod
    def install(
        cls,
        system: ActorSystem,
        journal: Journal,
        snapshots: SnapshotStore | None = None,
        codec: Codec | None = None,
        **settings: Any,
    ) -> Persistence:
        """Attach a Persistence to ``system`` (one per system) and return it."""
        persistence = cls(journal, snapshots, codec, **settings)
        system.extensions[Persistence] = persistence
        return persistence

    @classmethod
    def of(cls, system: ActorSystem) -> Persistence:
        """The Persistence installed on ``system``."""
        persistence = system.extensions.get(Persistence)
        if persistence is None:
            raise PersistenceError(
                f"actor system {system.name!r} has no Persistence: call "
                "Persistence.install(system, journal, snapshots, codec) before spawning "
                "persistent actors"
            )
        assert isinstance(persistence, Persistence)
        return persistence

    async def purge_idempotency(self) -> None:
        """Delete the idempotency records older than the window, of every
        persistence id, now."""
        self._next_purge = now() + self.idempotency_purge_interval
        await self.journal.delete_idempotency_before(now() - self.idempotency_window)

    async def purge_idempotency_if_due(self) -> None:
        """``purge_idempotency`` if the interval has passed since the last one
        (persistent actors call it before looking up a key). A failure is
        logged, not raised: the expired records are never found anyway, and
        the next interval tries again."""
        if now() < self._next_purge:
            return
        try:
            await self.purge_idempotency()
        except Exception as exc:
            logger.warning("deleting expired idempotency records failed: %r", exc)

    async def close(self) -> None:
        """Close the journal and the snapshot store."""
        await self.journal.close()
        if self.snapshots is not None:
            await self.snapshots.close()
