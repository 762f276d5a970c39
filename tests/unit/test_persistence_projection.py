"""Projections (docs/persistence.md, "Projections"): the read side, at least once.

The write side is the ``Account`` of test_persistence.py: its events are all
tagged ``"account"``, withdrawals also ``"withdrawal"``.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hewitt import ActorFailed, ActorInitializationError, ActorRef, ActorSystem, SystemConfig
from hewitt.persistence import (
    EventEnvelope,
    GetProjectionOffset,
    InMemoryJournal,
    InMemoryOffsetStore,
    InMemorySnapshotStore,
    OffsetStore,
    Persistence,
    PollProjection,
    Projection,
    ProjectionError,
    SqliteOffsetStore,
    StoredEvent,
)
from hewitt.testing import TestProbe, VirtualClock

from .test_persistence import (
    Account,
    Backend,
    Deposit,
    Deposited,
    Withdraw,
    Withdrawn,
    deposit_all,
    make_codec,
    stored,
)


@pytest.fixture(autouse=True)
def quiet_failure_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hewitt")


class ReadModel:
    """Balances by account, idempotent: an event already applied (by
    persistence id and sequence number) is skipped. Every delivery is logged."""

    def __init__(self, log: ActorRef[Any] | None = None, *, fail_at: int | None = None) -> None:
        self.balances: dict[str, int] = {}
        self.applied: dict[str, int] = {}
        self.delivered: list[int] = []
        self.log = log
        self.fail_at = fail_at

    def handle(self, envelope: EventEnvelope) -> None:
        self.delivered.append(envelope.offset)
        if self.log is not None:
            self.log.tell(envelope)
        if envelope.offset == self.fail_at:
            self.fail_at = None
            raise RuntimeError(f"read model down at offset {envelope.offset}")
        pid = envelope.persistence_id
        if envelope.sequence_nr <= self.applied.get(pid, 0):
            return  # delivered again: already applied
        self.applied[pid] = envelope.sequence_nr
        event = envelope.event
        delta = event.amount if isinstance(event, Deposited) else -event.amount
        self.balances[pid] = self.balances.get(pid, 0) + delta


async def caught_up(projection: ActorRef[Any], offset: int) -> None:
    """Poll until ``projection`` has stored ``offset`` (each ask waits for the
    polls queued before it; no sleeping)."""
    while await projection.ask(GetProjectionOffset()) < offset:
        projection.tell(PollProjection())


async def test_a_projection_builds_a_read_model_from_tagged_events_polling_on_a_timer() -> None:
    clock = VirtualClock()
    async with ActorSystem("projection", config=SystemConfig(clock=clock)) as system:
        Persistence.install(system, InMemoryJournal(), InMemorySnapshotStore(), make_codec())
        log = TestProbe(system)
        a, b = system.spawn(Account, "a"), system.spawn(Account, "b")
        await deposit_all(a, [10, 20])
        await deposit_all(b, [5])
        model = ReadModel(log.ref)
        offsets = InMemoryOffsetStore()
        projection = system.spawn(
            Projection, "balances", model.handle, offsets, tag="account", poll_interval=2.0
        )
        # The first poll comes at start.
        envelopes = await log.receive_messages(3)
        assert [(e.persistence_id, e.sequence_nr, e.offset) for e in envelopes] == [
            ("a", 1, 1),
            ("a", 2, 2),
            ("b", 1, 3),
        ]
        assert envelopes[0].event == Deposited(10)
        assert envelopes[0].tags == ("account",)
        assert model.balances == {"a": 30, "b": 5}
        assert await projection.ask(GetProjectionOffset()) == 3
        assert await offsets.load("balances") == 3

        # New events are read at the next tick of the poll timer, not before.
        assert await a.ask(Withdraw(25)) == 5
        assert await b.ask(Deposit(1)) == 6
        clock.advance(1.0)
        assert await projection.ask(GetProjectionOffset()) == 3
        clock.advance(1.0)
        envelopes = await log.receive_messages(2)
        assert [e.event for e in envelopes] == [Withdrawn(25), Deposited(1)]
        assert await projection.ask(GetProjectionOffset()) == 5
        assert model.balances == {"a": 5, "b": 6}
        assert model.delivered == [1, 2, 3, 4, 5]


async def test_a_projection_reads_only_its_tag(actor_system: ActorSystem) -> None:
    Persistence.install(actor_system, InMemoryJournal(), InMemorySnapshotStore(), make_codec())
    a = actor_system.spawn(Account, "a")
    await deposit_all(a, [10])
    assert await a.ask(Withdraw(3)) == 7
    await deposit_all(a, [1])
    assert await a.ask(Withdraw(4)) == 4
    seen: list[Any] = []
    projection = actor_system.spawn(
        Projection, "withdrawals", lambda e: seen.append(e.event), InMemoryOffsetStore(),
        tag="withdrawal",
    )  # fmt: skip
    await caught_up(projection, 4)
    assert seen == [Withdrawn(3), Withdrawn(4)]


async def test_a_projection_by_persistence_id_with_an_async_handler(
    actor_system: ActorSystem,
) -> None:
    Persistence.install(actor_system, InMemoryJournal(), InMemorySnapshotStore(), make_codec())
    a, b = actor_system.spawn(Account, "a"), actor_system.spawn(Account, "b")
    await deposit_all(a, [1, 2, 3])
    await deposit_all(b, [100])
    seen: list[tuple[str, int]] = []

    async def handler(envelope: EventEnvelope) -> None:
        seen.append((envelope.persistence_id, envelope.offset))

    offsets = InMemoryOffsetStore()
    projection = actor_system.spawn(
        Projection, "a-history", handler, offsets, persistence_id="a", batch_size=2
    )
    await caught_up(projection, 3)  # two batches: [1, 2], [3]
    assert seen == [("a", 1), ("a", 2), ("a", 3)]
    assert await offsets.load("a-history") == 3


async def test_a_crashed_projection_resumes_from_its_stored_offset_at_least_once(
    actor_system: ActorSystem,
) -> None:
    Persistence.install(actor_system, InMemoryJournal(), InMemorySnapshotStore(), make_codec())
    accounts = [actor_system.spawn(Account, f"acc-{i}") for i in range(2)]
    for _ in range(5):
        for account in accounts:
            await deposit_all(account, [1])
    failures = TestProbe(actor_system)
    actor_system.event_stream.subscribe(failures.ref, ActorFailed)
    model = ReadModel(fail_at=6)  # the handler raises once, in the second batch
    offsets = InMemoryOffsetStore()
    projection = actor_system.spawn(
        Projection, "balances", model.handle, offsets, tag="account", batch_size=4,
        poll_interval=3600.0,
    )  # fmt: skip
    failed = await failures.expect_message(ActorFailed)
    assert failed.ref == projection
    assert isinstance(failed.exception, RuntimeError)
    await caught_up(projection, 10)  # restarted by its supervisor, same ref

    delivered = Counter(model.delivered)
    assert set(delivered) == set(range(1, 11))  # nothing skipped
    assert max(delivered.values()) == 2  # some delivered twice, none more
    # Only the failed batch (after the stored offset 4) is delivered again.
    assert {offset for offset, n in delivered.items() if n == 2} <= {5, 6, 7, 8}
    assert model.delivered == sorted(model.delivered[:6]) + sorted(model.delivered[6:])
    assert model.balances == {"acc-0": 5, "acc-1": 5}  # an idempotent read model
    assert await offsets.load("balances") == 10


async def test_a_crash_between_the_handler_and_the_offset_save_delivers_the_batch_again(
    actor_system: ActorSystem,
) -> None:
    class FailingOnce(InMemoryOffsetStore):
        failures = 1

        async def save(self, projection_id: str, offset: int) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("offset store down")
            await super().save(projection_id, offset)

    Persistence.install(actor_system, InMemoryJournal(), InMemorySnapshotStore(), make_codec())
    await deposit_all(actor_system.spawn(Account, "a"), [1, 1, 1, 1, 1, 1])
    model = ReadModel()
    offsets = FailingOnce()
    projection = actor_system.spawn(
        Projection, "balances", model.handle, offsets, tag="account", batch_size=4
    )
    await caught_up(projection, 6)
    # The first batch was handled, its offset was not saved: handled again.
    assert model.delivered == [1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    assert model.balances == {"a": 6}
    assert await offsets.load("balances") == 6


async def test_a_new_projection_instance_resumes_from_the_stored_offset(tmp_path: Path) -> None:
    backend = Backend("sqlite", tmp_path / "journal.db")
    async with backend.system() as (system, _):
        offsets = SqliteOffsetStore(backend.path)  # the journal's file
        log = TestProbe(system)
        await deposit_all(system.spawn(Account, "a"), [1, 2, 3, 4, 5])
        first = ReadModel(log.ref)
        projection = system.spawn(Projection, "balances", first.handle, offsets, tag="account")
        await log.receive_messages(5)
        await caught_up(projection, 5)
        await system.shutdown()  # stop the projection before its store closes
        await offsets.close()
    async with backend.system() as (system, _):  # a new process
        offsets = SqliteOffsetStore(backend.path)
        await deposit_all(system.spawn(Account, "a"), [6, 7, 8])
        second = ReadModel()
        projection = system.spawn(Projection, "balances", second.handle, offsets, tag="account")
        await caught_up(projection, 8)
        assert second.delivered == [6, 7, 8]  # nothing before the stored offset
        await system.shutdown()
        await offsets.close()


async def test_an_undecodable_event_fails_the_projection_with_a_projection_error(
    actor_system: ActorSystem,
) -> None:
    journal = InMemoryJournal()
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), make_codec())
    codec = make_codec()
    await journal.append(
        "a",
        0,
        [
            stored("a", 1, Deposited(1), codec),
            StoredEvent("a", 2, "Teleported", 1, b"\x80", ("account",)),
        ],
    )
    failures = TestProbe(actor_system)
    actor_system.event_stream.subscribe(failures.ref, ActorFailed)
    seen: list[int] = []
    projection = actor_system.spawn(
        Projection, "p", lambda e: seen.append(e.offset), InMemoryOffsetStore(), tag="account"
    )
    error = (await failures.expect_message(ActorFailed)).exception
    projection.stop()  # or it fails again at each restart
    assert isinstance(error, ProjectionError)
    assert (error.projection_id, error.offset) == ("p", 2)
    assert (error.persistence_id, error.sequence_nr) == ("a", 2)
    assert "'Teleported'" in str(error)
    assert seen[0] == 1


async def test_a_projection_needs_exactly_one_source(actor_system: ActorSystem) -> None:
    Persistence.install(actor_system, InMemoryJournal(), InMemorySnapshotStore(), make_codec())
    with pytest.raises(ActorInitializationError, match="exactly one of tag= and persistence_id="):
        actor_system.spawn(Projection, "p", print, InMemoryOffsetStore())
    with pytest.raises(ActorInitializationError, match="exactly one"):
        actor_system.spawn(
            Projection, "p", print, InMemoryOffsetStore(), tag="t", persistence_id="a"
        )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_offset_stores_start_at_zero_and_keep_the_last_offset(
    kind: str, tmp_path: Path
) -> None:
    def store() -> OffsetStore:
        return InMemoryOffsetStore() if kind == "memory" else SqliteOffsetStore(tmp_path / "o.db")

    offsets = store()
    assert await offsets.load("p") == 0
    await offsets.save("p", 7)
    await offsets.save("p", 9)
    await offsets.save("q", 1)
    assert (await offsets.load("p"), await offsets.load("q")) == (9, 1)
    await offsets.close()
    if kind == "sqlite":
        reopened = store()
        assert (await reopened.load("p"), await reopened.load("q")) == (9, 1)
        await reopened.close()
