"""Statistics records: frozen snapshots of a system's and an actor's counters,
for metrics exporters, displays and tests (nothing else reaches into the
runtime for them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SystemStatistics:
    """A snapshot of an actor system's counters."""

    live_actors: int
    spawned: int
    messages_processed: int
    dead_letters: int
    failures: int
    restarts: int
    ready_actors: int
    #: asks waiting for a reply
    pending_asks: int = 0


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """A snapshot of one actor's counters (see ``ActorSystem.actor_statistics``).

    ``high_water_mark`` is the most messages seen queued at once, sampled at
    the start of each turn (between turns a queue only grows).
    """

    path: str
    mailbox_depth: int
    high_water_mark: int
    children: int
    #: None for an unbounded mailbox
    capacity: int | None
    #: messages a full bounded mailbox dropped (dead letters)
    dropped: int
    #: its lifecycle state: starting, running, suspended, restarting, stopping
    state: str = "running"
    #: refs watching it (actors, and waiters of ``wait_terminated``)
    watchers: int = 0
