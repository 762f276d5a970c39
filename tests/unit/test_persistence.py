"""Persistence: one test per rule of docs/persistence.md.

The actors under test are bank accounts (``Account``): commands ``Deposit``,
``Withdraw``, ``GetBalance``; events ``Deposited`` and ``Withdrawn``; state
``Balance``. Each account reports ``Recovered(sequence_nr, replayed, balance)``
to its log when recovery is done (at start and at every restart), so tests
can count the events a recovery replayed. Everything goes through the public
API; corruption on disk is simulated by writing bad rows through a journal's
``append`` or, for SQLite, by editing the file with ``sqlite3``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hewitt import (
    Actor,
    ActorFailed,
    ActorInitializationError,
    ActorRef,
    ActorSystem,
    DeadLetter,
    Mailbox,
    Overflow,
    SystemConfig,
)
from hewitt.persistence import (
    Codec,
    ConcurrencyConflict,
    Effect,
    IdempotencyRecord,
    InMemoryJournal,
    InMemorySnapshotStore,
    Journal,
    Persistence,
    PersistentActor,
    RecoveryError,
    SnapshotStore,
    SqliteJournal,
    SqliteSnapshotStore,
    StoredEvent,
    StoredSnapshot,
)
from hewitt.testing import TestProbe, VirtualClock

# --- the domain -------------------------------------------------------------


class Deposited(msgspec.Struct, frozen=True):
    amount: int


class Withdrawn(msgspec.Struct, frozen=True):
    amount: int


class Balance(msgspec.Struct, frozen=True):
    balance: int = 0


class Receipt(msgspec.Struct, frozen=True):
    balance: int


AccountEvent = Deposited | Withdrawn


@dataclass(frozen=True)
class Deposit:
    amount: int
    idempotency_key: str | None = None
    snapshot: bool = False


@dataclass(frozen=True)
class Withdraw:
    amount: int
    idempotency_key: str | None = None


@dataclass(frozen=True)
class DepositForReceipt:
    """Replies a Receipt struct, not a plain value."""

    amount: int
    idempotency_key: str | None = None


@dataclass(frozen=True)
class DepositSilently:
    """Persists a deposit and replies nothing."""

    amount: int
    idempotency_key: str | None = None


@dataclass(frozen=True)
class GetBalance:
    pass


@dataclass(frozen=True)
class Crash:
    """Raises in on_command while the account's shared crash budget lasts."""


@dataclass(frozen=True)
class Recovered:
    sequence_nr: int
    replayed: int
    balance: int


Command = Deposit | Withdraw | DepositForReceipt | DepositSilently | GetBalance | Crash


def make_codec() -> Codec:
    codec = Codec()
    codec.register(Deposited, "Deposited")
    codec.register(Withdrawn, "Withdrawn")
    codec.register(Balance, "Balance")
    codec.register(Receipt, "Receipt")  # a registered reply type comes back typed
    return codec


def persist(*events: AccountEvent) -> Effect[AccountEvent]:
    # Effect is invariant in its event type: Effect.persist(Deposited(1)) is an
    # Effect[Deposited], not an Effect[AccountEvent], for mypy.
    return Effect.persist(*events)


class Account(PersistentActor[Command, AccountEvent, Balance]):
    """A bank account; ``crashes`` is a one-slot budget shared by its incarnations."""

    def __init__(
        self,
        persistence_id: str,
        log: ActorRef[Any] | None = None,
        *,
        crashes: list[int] | None = None,
        spy: list[Account] | None = None,
    ) -> None:
        self.persistence_id = persistence_id
        self.log = log
        self.crashes = crashes if crashes is not None else [0]
        self.replayed = 0
        self.recovering = True
        if spy is not None:
            spy.append(self)

    async def pre_start(self) -> None:
        await super().pre_start()
        self.recovering = False
        if self.log is not None:
            self.log.tell(Recovered(self.sequence_nr, self.replayed, self.state.balance))

    def empty_state(self) -> Balance:
        return Balance()

    def tags(self, event: AccountEvent) -> tuple[str, ...]:
        return ("account", "withdrawal") if isinstance(event, Withdrawn) else ("account",)

    def on_command(self, state: Balance, command: Command) -> Effect[AccountEvent]:
        effect: Effect[AccountEvent] = Effect.none()
        match command:
            case Deposit(amount=amount, snapshot=snapshot):
                effect = persist(Deposited(amount)).then_reply(lambda s: s.balance)
                if snapshot:
                    effect.and_snapshot()
            case Withdraw(amount=amount) if amount > state.balance:
                effect = Effect.reply("insufficient funds")
            case Withdraw(amount=amount):
                effect = persist(Withdrawn(amount)).then_reply(lambda s: s.balance)
            case DepositForReceipt(amount=amount):
                effect = persist(Deposited(amount)).then_reply(lambda s: Receipt(s.balance))
            case DepositSilently(amount=amount):
                effect = persist(Deposited(amount))
            case GetBalance():
                effect = Effect.reply(state.balance)
            case Crash() if self.crashes[0] > 0:
                self.crashes[0] -= 1
                raise RuntimeError("crash")
        return effect

    def on_event(self, state: Balance, event: AccountEvent) -> Balance:
        if self.recovering:
            self.replayed += 1
        if isinstance(event, Deposited):
            if event.amount < 0:
                raise ValueError(f"a deposit of {event.amount}")
            return Balance(state.balance + event.amount)
        return Balance(state.balance - event.amount)


class SnapshotEvery3(Account):
    snapshot_every = 3


def stored(persistence_id: str, sequence_nr: int, event: Any, codec: Codec) -> StoredEvent:
    name, version, payload = codec.encode(event)
    return StoredEvent(persistence_id, sequence_nr, name, version, payload, ("account",))


async def snapshot_numbers(snapshots: SnapshotStore, persistence_id: str) -> list[int]:
    return [s.sequence_nr for s in await snapshots.load_all(persistence_id)]


async def event_numbers(journal: Journal, persistence_id: str) -> list[int]:
    return [e.sequence_nr async for e in journal.read_events(persistence_id)]


async def deposit_all(account: ActorRef[Any], amounts: Sequence[int]) -> list[int]:
    return [await account.ask(Deposit(amount)) for amount in amounts]


@pytest.fixture(autouse=True)
def quiet_failure_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hewitt")


def install(system: ActorSystem, **settings: Any) -> tuple[InMemoryJournal, InMemorySnapshotStore]:
    journal, snapshots = InMemoryJournal(), InMemorySnapshotStore()
    Persistence.install(system, journal, snapshots, make_codec(), **settings)
    return journal, snapshots


class Backend:
    """Stores that outlive an actor system: the same in-memory objects, or new
    SQLite stores on the same file (what a restarted process would open)."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self._journal = InMemoryJournal()
        self._snapshots = InMemorySnapshotStore()

    def stores(self) -> tuple[Journal, SnapshotStore]:
        if self.kind == "memory":
            return self._journal, self._snapshots
        return SqliteJournal(self.path), SqliteSnapshotStore(self.path)

    @asynccontextmanager
    async def system(
        self, codec: Codec | None = None, **settings: Any
    ) -> AsyncIterator[tuple[ActorSystem, Persistence]]:
        """A fresh actor system with a Persistence on this backend."""
        if self.kind == "sqlite" and not self.path.exists():
            # Create the file first: connections opening a new SQLite file at
            # the same moment can fail with "database is locked" (a known gap
            # of SqliteJournal/SqliteSnapshotStore, not what these tests test).
            creator = SqliteJournal(self.path)
            await creator.highest_sequence_nr("")
            await creator.close()
        journal, snapshots = self.stores()
        system = ActorSystem(f"persistence-{self.kind}")
        await system.start()
        persistence = Persistence.install(
            system, journal, snapshots, codec if codec is not None else make_codec(), **settings
        )
        try:
            yield system, persistence
        finally:
            await system.shutdown()
            await persistence.close()


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path / "journal.db")


class GatedJournal(Journal):
    """Delegates to ``inner``; appends wait for ``append_gate`` and reads for
    ``read_gate`` (both open at first); ``fail_appends`` are raised by the next
    appends instead of writing."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self.append_gate = asyncio.Event()
        self.append_gate.set()
        self.append_waiting = asyncio.Event()
        self.read_gate = asyncio.Event()
        self.read_gate.set()
        self.read_waiting = asyncio.Event()
        self.fail_appends: list[BaseException] = []

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        self.append_waiting.set()
        await self.append_gate.wait()
        if self.fail_appends:
            raise self.fail_appends.pop(0)
        await self.inner.append(persistence_id, expected_sequence_nr, events, idempotency)

    async def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        self.read_waiting.set()
        await self.read_gate.wait()
        async for event in self.inner.read_events(persistence_id, from_sequence_nr, to_sequence_nr):
            yield event

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        await self.inner.delete_events_up_to(persistence_id, sequence_nr)

    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        return await self.inner.read_by_tag(tag, after_offset, limit)

    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        return await self.inner.find_idempotency(persistence_id, key, not_before)

    async def delete_idempotency_before(self, not_before: float) -> None:
        await self.inner.delete_idempotency_before(not_before)

    async def close(self) -> None:
        await self.inner.close()


async def recovery_failure(system: ActorSystem, persistence_id: str) -> RecoveryError:
    """Spawn an Account that cannot recover: it must stop with an
    ActorInitializationError whose cause is a RecoveryError; return that."""
    probe = TestProbe(system)
    account = system.spawn(Account, persistence_id, probe.ref)
    terminated = await probe.expect_terminated(account)
    assert isinstance(terminated.reason, ActorInitializationError), terminated.reason
    cause = terminated.reason.__cause__
    assert isinstance(cause, RecoveryError), repr(cause)
    assert probe.pending == 0  # no Recovered: it handled nothing
    return cause


# --- command -> events -> state -> reply --------------------------------------


async def test_reply_comes_after_the_events_are_durable_and_commands_meanwhile_wait_in_order(
    actor_system: ActorSystem,
) -> None:
    journal = GatedJournal(InMemoryJournal())
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), make_codec())
    probe = TestProbe(actor_system)
    spy: list[Account] = []
    account = actor_system.spawn(Account, "acc", probe.ref, spy=spy)
    assert await probe.expect_message(Recovered) == Recovered(0, 0, 0)

    journal.append_gate.clear()
    account.tell(Deposit(10), probe.ref)
    await journal.append_waiting.wait()  # the first write is in flight, held
    account.tell(Deposit(5), probe.ref)
    account.tell(Withdraw(100), probe.ref)
    account.tell(GetBalance(), probe.ref)
    await probe.expect_no_message(within=0.05)  # nothing acknowledged before durable
    assert (spy[0].state, spy[0].sequence_nr) == (Balance(0), 0)  # nor applied
    assert await journal.inner.highest_sequence_nr("acc") == 0

    journal.append_gate.set()
    assert await probe.receive_messages(4) == [10, 15, "insufficient funds", 15]
    assert (spy[0].state, spy[0].sequence_nr) == (Balance(15), 2)
    assert [(e.sequence_nr, e.type_name) async for e in journal.read_events("acc")] == [
        (1, "Deposited"),
        (2, "Deposited"),
    ]


async def test_a_failed_write_is_never_acknowledged_and_the_restarted_actor_retries_it(
    actor_system: ActorSystem,
) -> None:
    journal = GatedJournal(InMemoryJournal())
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), make_codec())
    probe = TestProbe(actor_system)
    account = actor_system.spawn(Account, "acc", probe.ref)
    assert await probe.expect_message(Recovered) == Recovered(0, 0, 0)
    journal.fail_appends.append(OSError("disk full"))
    # The write fails: the actor is restarted (it recovers again), the command
    # is retried on the new instance and acknowledged once, when durable.
    assert await account.ask(Deposit(10)) == 10
    assert await probe.expect_message(Recovered) == Recovered(0, 0, 0)
    assert await journal.highest_sequence_nr("acc") == 1
    assert await account.ask(GetBalance()) == 10


# --- recovery ---------------------------------------------------------------


async def test_recovery_is_the_latest_snapshot_then_a_replay_of_the_later_events(
    backend: Backend,
) -> None:
    async with backend.system() as (system, persistence):
        account = system.spawn(SnapshotEvery3, "acc")
        assert await deposit_all(account, [1, 2, 3, 4, 5, 6, 7]) == [1, 3, 6, 10, 15, 21, 28]
        assert persistence.snapshots is not None
        assert await snapshot_numbers(persistence.snapshots, "acc") == [6, 3]
    async with backend.system() as (system, _):  # a new process
        probe = TestProbe(system)
        account = system.spawn(Account, "acc", probe.ref)
        # snapshot 6, then event 7 only
        assert await probe.expect_message(Recovered) == Recovered(7, 1, 28)
        assert await account.ask(Deposit(2)) == 30


async def test_recovery_without_snapshots_replays_every_event(backend: Backend) -> None:
    async with backend.system() as (system, _):
        account = system.spawn(Account, "acc")
        await deposit_all(account, [1, 2, 3, 4])
    async with backend.system() as (system, _):
        probe = TestProbe(system)
        system.spawn(Account, "acc", probe.ref)
        assert await probe.expect_message(Recovered) == Recovered(4, 4, 10)


async def test_no_command_is_handled_before_recovery_completes(actor_system: ActorSystem) -> None:
    journal = GatedJournal(InMemoryJournal())
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), make_codec())
    first = actor_system.spawn(Account, "acc", name="first")
    await deposit_all(first, [1, 2, 3])
    first.stop()
    await first.wait_terminated()

    journal.read_gate.clear()
    journal.read_waiting.clear()
    probe = TestProbe(actor_system)
    account = actor_system.spawn(Account, "acc", probe.ref, name="second")
    await journal.read_waiting.wait()  # recovery is reading, held
    account.tell(GetBalance(), probe.ref)
    account.tell(Deposit(1), probe.ref)
    await probe.expect_no_message(within=0.05)

    journal.read_gate.set()
    # Recovery first, then the commands, in order, on the recovered state.
    assert await probe.receive_messages(3) == [Recovered(3, 3, 6), 6, 7]


async def test_restart_after_a_failure_recovers_again(actor_system: ActorSystem) -> None:
    install(actor_system)
    probe = TestProbe(actor_system)
    account = actor_system.spawn(Account, "acc", probe.ref, crashes=[1])
    assert await probe.expect_message(Recovered) == Recovered(0, 0, 0)
    await deposit_all(account, [5, 6])
    account.tell(Crash())
    # The new instance starts from empty state and replays both events.
    assert await probe.expect_message(Recovered) == Recovered(2, 2, 11)
    assert await account.ask(GetBalance()) == 11


# --- snapshots ----------------------------------------------------------------


async def test_snapshot_every_n_events(actor_system: ActorSystem) -> None:
    _, snapshots = install(actor_system)
    account = actor_system.spawn(SnapshotEvery3, "acc")
    await deposit_all(account, [1, 1])
    assert await snapshot_numbers(snapshots, "acc") == []
    await deposit_all(account, [1, 1, 1, 1, 1])
    assert await snapshot_numbers(snapshots, "acc") == [6, 3]
    (newest, _) = await snapshots.load_all("acc")
    assert make_codec().decode(newest.type_name, newest.version, newest.payload) == Balance(6)


async def test_snapshot_interval_snapshots_when_the_interval_has_passed(
    actor_system: ActorSystem,
) -> None:
    # Real time only (see the xfail below): an interval that has always passed
    # snapshots after every command; one that never passes never does.
    class Always(Account):
        snapshot_every = 100
        snapshot_interval = 1e-9

    class Never(Account):
        snapshot_interval = 3600.0

    _, snapshots = install(actor_system)
    always = actor_system.spawn(Always, "always")
    never = actor_system.spawn(Never, "never")
    await deposit_all(always, [1, 1, 1])
    await deposit_all(never, [1, 1, 1])
    assert await snapshot_numbers(snapshots, "always") == [3, 2]
    assert await snapshot_numbers(snapshots, "never") == []


async def test_snapshot_interval_follows_the_system_clock() -> None:
    class Every60s(Account):
        snapshot_interval = 60.0

    clock = VirtualClock()
    async with ActorSystem("virtual", config=SystemConfig(clock=clock)) as system:
        _, snapshots = install(system)
        account = system.spawn(Every60s, "acc")
        await deposit_all(account, [1])
        assert await snapshot_numbers(snapshots, "acc") == []
        clock.advance(61.0)
        await deposit_all(account, [1])
        assert await snapshot_numbers(snapshots, "acc") == [2]


async def test_snapshot_on_demand_with_and_snapshot(actor_system: ActorSystem) -> None:
    _, snapshots = install(actor_system)
    account = actor_system.spawn(Account, "acc")
    await deposit_all(account, [1, 2])
    assert await snapshot_numbers(snapshots, "acc") == []
    assert await account.ask(Deposit(3, snapshot=True)) == 6
    assert await snapshot_numbers(snapshots, "acc") == [3]


async def test_keep_snapshots_deletes_the_older_ones(actor_system: ActorSystem) -> None:
    class KeepOne(Account):
        snapshot_every = 2
        keep_snapshots = 1

    class KeepThree(Account):
        snapshot_every = 2
        keep_snapshots = 3

    _, snapshots = install(actor_system)
    one = actor_system.spawn(KeepOne, "one")
    three = actor_system.spawn(KeepThree, "three")
    await deposit_all(one, [1] * 10)
    await deposit_all(three, [1] * 10)
    assert await snapshot_numbers(snapshots, "one") == [10]
    assert await snapshot_numbers(snapshots, "three") == [10, 8, 6]


async def test_delete_events_on_snapshot_keeps_only_later_events_and_recovery_works(
    backend: Backend,
) -> None:
    class Compacting(Account):
        snapshot_every = 3
        delete_events_on_snapshot = True

    async with backend.system() as (system, persistence):
        account = system.spawn(Compacting, "acc")
        await deposit_all(account, [1, 2, 3, 4, 5, 6, 7])
        # Snapshots at 3 and 6 are kept (keep_snapshots=2): only the events both
        # cover are deleted, so recovery can fall back to the one at 3.
        assert await event_numbers(persistence.journal, "acc") == [4, 5, 6, 7]
        assert await persistence.journal.highest_sequence_nr("acc") == 7
    async with backend.system() as (system, _):
        probe = TestProbe(system)
        account = system.spawn(Account, "acc", probe.ref)
        assert await probe.expect_message(Recovered) == Recovered(7, 1, 28)
        assert await account.ask(Deposit(1)) == 29


async def test_a_failing_snapshot_does_not_persist_the_command_twice(
    actor_system: ActorSystem,
) -> None:
    class FailingOnce(InMemorySnapshotStore):
        failures = 1

        async def save(self, snapshot: StoredSnapshot) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("snapshot disk full")
            await super().save(snapshot)

    class EveryEvent(Account):
        snapshot_every = 1

    journal = InMemoryJournal()
    Persistence.install(actor_system, journal, FailingOnce(), make_codec())
    account = actor_system.spawn(EveryEvent, "acc")
    assert await account.ask(Deposit(10)) == 10
    assert await account.ask(GetBalance()) == 10
    assert await journal.highest_sequence_nr("acc") == 1


# --- idempotency ------------------------------------------------------------------


async def test_a_duplicate_idempotency_key_returns_the_original_outcome_and_writes_nothing(
    actor_system: ActorSystem,
) -> None:
    journal, _ = install(actor_system)
    account = actor_system.spawn(Account, "acc")
    assert await account.ask(Deposit(10, idempotency_key="d1")) == 10
    assert await account.ask(Deposit(5)) == 15
    assert await account.ask(Deposit(10, idempotency_key="d1")) == 10  # the original reply
    assert await journal.highest_sequence_nr("acc") == 2
    assert await account.ask(GetBalance()) == 15
    # A refusal is an outcome too: the duplicate is refused although it would pass now.
    assert await account.ask(Withdraw(100, idempotency_key="w1")) == "insufficient funds"
    assert await account.ask(Deposit(100)) == 115
    assert await account.ask(Withdraw(100, idempotency_key="w1")) == "insufficient funds"
    assert await journal.highest_sequence_nr("acc") == 3
    # Keys are per persistence id.
    other = actor_system.spawn(Account, "other")
    assert await other.ask(Deposit(1, idempotency_key="d1")) == 1


async def test_idempotency_keys_survive_a_restart(backend: Backend) -> None:
    async with backend.system() as (system, _):
        account = system.spawn(Account, "acc")
        assert await account.ask(Deposit(10, idempotency_key="d1")) == 10
        assert await account.ask(Deposit(5)) == 15
    async with backend.system() as (system, persistence):  # a new process
        account = system.spawn(Account, "acc")
        assert await account.ask(Deposit(10, idempotency_key="d1")) == 10
        assert await persistence.journal.highest_sequence_nr("acc") == 2
        assert await account.ask(GetBalance()) == 15


async def test_an_idempotency_key_expires_after_the_window(backend: Backend) -> None:
    # The window is wall-clock time (the records' timestamps are durable), so
    # the records are written with timestamps in the past rather than waited for.
    codec = make_codec()
    async with backend.system(idempotency_window=60.0) as (system, persistence):
        journal = persistence.journal
        outcome = codec.encode_outcome(10, True)
        for sequence_nr, key, age in ((1, "old", 61.0), (2, "recent", 30.0)):
            await journal.append(
                "acc",
                sequence_nr - 1,
                [stored("acc", sequence_nr, Deposited(10 * sequence_nr), codec)],
                IdempotencyRecord("acc", key, outcome, time.time() - age),
            )
        account = system.spawn(Account, "acc")
        assert await account.ask(GetBalance()) == 30
        assert await account.ask(Deposit(1, idempotency_key="recent")) == 10  # remembered
        assert await account.ask(Deposit(1, idempotency_key="old")) == 31  # forgotten: done again
        assert await journal.highest_sequence_nr("acc") == 3


async def test_a_duplicate_key_returns_a_reply_equal_to_the_original(
    actor_system: ActorSystem,
) -> None:
    install(actor_system)
    account = actor_system.spawn(Account, "acc")
    assert await account.ask(DepositForReceipt(10, idempotency_key="r1")) == Receipt(10)
    assert await account.ask(DepositForReceipt(10, idempotency_key="r1")) == Receipt(10)


async def test_a_duplicate_key_of_a_command_without_reply_replies_nothing(
    actor_system: ActorSystem,
) -> None:
    install(actor_system)
    probe = TestProbe(actor_system)
    account = actor_system.spawn(Account, "acc")
    account.tell(DepositSilently(10, idempotency_key="s1"), probe.ref)
    account.tell(GetBalance(), probe.ref)
    assert await probe.expect_message(int) == 10
    account.tell(DepositSilently(10, idempotency_key="s1"), probe.ref)
    account.tell(GetBalance(), probe.ref)
    assert await probe.receive_message() == 10  # not None first


# --- optimistic concurrency -------------------------------------------------------


async def test_two_writers_of_one_persistence_id_conflict_and_the_loser_recovers(
    actor_system: ActorSystem,
) -> None:
    journal, _ = install(actor_system)
    log_a, log_b = TestProbe(actor_system), TestProbe(actor_system)
    failures = TestProbe(actor_system)
    actor_system.event_stream.subscribe(failures.ref, ActorFailed)
    a = actor_system.spawn(Account, "shared", log_a.ref, name="a")
    b = actor_system.spawn(Account, "shared", log_b.ref, name="b")
    assert await log_a.expect_message(Recovered) == Recovered(0, 0, 0)
    assert await log_b.expect_message(Recovered) == Recovered(0, 0, 0)

    assert await a.ask(Deposit(10)) == 10
    # b still believes it is at 0: its append conflicts, its supervisor restarts
    # it, it recovers a's event and the retried command applies on top of it.
    assert await b.ask(Deposit(5)) == 15
    failed = await failures.expect_message(ActorFailed)
    assert failed.ref == b
    assert isinstance(failed.exception, ConcurrencyConflict)
    assert (failed.exception.persistence_id, failed.exception.sequence_nr) == ("shared", 1)
    assert await log_b.expect_message(Recovered) == Recovered(1, 1, 10)
    assert await event_numbers(journal, "shared") == [1, 2]


async def test_two_processes_writing_one_sqlite_file_conflict_and_the_loser_recovers(
    tmp_path: Path,
) -> None:
    backend = Backend("sqlite", tmp_path / "journal.db")
    async with backend.system() as (one, _), backend.system() as (two, persistence):
        log = TestProbe(two)
        a = one.spawn(Account, "shared")
        b = two.spawn(Account, "shared", log.ref)
        assert await log.expect_message(Recovered) == Recovered(0, 0, 0)
        assert await a.ask(Deposit(10)) == 10
        assert await b.ask(Deposit(5)) == 15
        assert await log.expect_message(Recovered) == Recovered(1, 1, 10)
        assert await event_numbers(persistence.journal, "shared") == [1, 2]


class Busy(Actor[str]):
    """Holds its first message until ``gate`` opens, so its mailbox fills up."""

    def __init__(self, gate: asyncio.Event, probe: ActorRef[str]) -> None:
        self.gate = gate
        self.probe = probe

    async def receive(self, message: str) -> None:
        self.probe.tell("holding")
        await self.gate.wait()


async def test_a_reply_that_cannot_be_delivered_is_a_dead_letter_not_a_retry(
    actor_system: ActorSystem,
) -> None:
    # The events are durable when the reply fails: failing the command would
    # have its retry persist them again.
    journal, _ = install(actor_system)
    gate, probe, letters = asyncio.Event(), TestProbe(actor_system), TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    busy = actor_system.spawn(Busy, gate, probe.ref, mailbox=Mailbox.bounded(1, Overflow.FAIL))
    busy.tell("hold")
    await probe.expect_message("holding")
    busy.tell("fills the mailbox")
    account = actor_system.spawn(Account, "acc")
    account.tell(Deposit(5), sender=busy)  # its reply meets a full mailbox
    letter = await letters.expect_message(DeadLetter)
    assert letter.message == 5 and "could not be delivered" in letter.reason
    assert await account.ask(Deposit(1)) == 6
    assert [e.sequence_nr async for e in journal.read_events("acc")] == [1, 2]
    gate.set()
