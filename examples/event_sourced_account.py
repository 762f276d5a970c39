"""An event-sourced account actor whose journal survives a restart.

Reproduces "Example 4 — Kafka-backed event-sourced actor" of seed document 003
(section "Persistence and event sourcing"): an account aggregate takes
``Deposit`` and ``Withdraw`` commands; each accepted command becomes an event
(``Deposited`` or ``Withdrew``, with its timestamp) that is appended to the
journal *before* the state changes and the sender gets ``Ack(version)``; a
withdrawal the balance cannot cover is answered ``Nack("insufficient
funds")`` and writes nothing. ``AccountState.apply`` is the fold: the state is
``fold(events, AccountState(0, 0))``. "Crash recovery is identical to cold
startup": the example stops the whole actor system, starts a new one on the
same journal, and the account is back with the same balance and version.

The seed's journal is a Kafka topic keyed by account id (so one account's
events stay in order); here it is hewitt's SQLite journal, where each
persistence id's events are numbered and kept in order. The seed ends with
"for production scale you add: snapshots every N events, idempotency keys on
commands": both are here, ``snapshot_every = 3`` (recovery loads the latest
snapshot, then replays only the events after it) and an idempotency key on a
deposit that a client sends twice (the retry gets the original outcome and
writes nothing).

hewitt features shown: :class:`hewitt.persistence.PersistentActor` with
``on_command`` returning an :class:`~hewitt.persistence.Effect` (persist, then
reply) and ``on_event`` (the fold), a :class:`~hewitt.persistence.Codec` with
stable type names, ``Persistence.install`` with the SQLite journal and
snapshot store, recovery at start, snapshots and idempotency keys.

Run it: ``python examples/event_sourced_account.py [DB]`` (default: a
temporary file).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

import hewitt
from hewitt.persistence import (
    Codec,
    Effect,
    Persistence,
    PersistentActor,
    SqliteJournal,
    SqliteSnapshotStore,
)

# --- Commands (sealed trait AccountCommand) ----------------------------------


class Deposit(msgspec.Struct, frozen=True):
    """Answered :class:`Ack` once the deposit is durable. A retry with the same
    ``idempotency_key`` gets the first outcome again and deposits nothing."""

    amount: int
    idempotency_key: str | None = None


class Withdraw(msgspec.Struct, frozen=True):
    """Answered :class:`Ack` once durable, or :class:`Nack` if the balance is short."""

    amount: int


class GetState(msgspec.Struct, frozen=True):
    """Answered with the :class:`AccountState`."""


AccountCommand = Deposit | Withdraw | GetState


# --- Replies -----------------------------------------------------------------


class Ack(msgspec.Struct, frozen=True):
    """The command's event is durable; ``version`` is the account's version after it."""

    version: int


class Nack(msgspec.Struct, frozen=True):
    reason: str


# --- Events (sealed trait AccountEvent) --------------------------------------


class Deposited(msgspec.Struct, frozen=True):
    amount: int
    ts: float


class Withdrew(msgspec.Struct, frozen=True):
    amount: int
    ts: float


AccountEvent = Deposited | Withdrew


# --- State -------------------------------------------------------------------


class AccountState(msgspec.Struct, frozen=True):
    balance: int = 0
    version: int = 0

    def apply(self, event: AccountEvent) -> AccountState:
        match event:
            case Deposited(amount):
                return AccountState(self.balance + amount, self.version + 1)
            case Withdrew(amount):
                return AccountState(self.balance - amount, self.version + 1)


def account_codec() -> Codec:
    """Events and snapshots are stored under these names, not Python paths.
    The replies are registered too: the outcome of a command with an
    idempotency key is stored, and a retry gets it back with its type."""
    codec = Codec()
    codec.register(Deposited, "account.Deposited")
    codec.register(Withdrew, "account.Withdrew")
    codec.register(AccountState, "account.AccountState")
    codec.register(Ack, "account.Ack")
    codec.register(Nack, "account.Nack")
    return codec


# --- The actor ---------------------------------------------------------------


def _ack(state: AccountState) -> Ack:
    return Ack(state.version)


class AccountActor(PersistentActor[AccountCommand, AccountEvent, AccountState]):
    """``AccountActor(accountId, journal)`` of the seed; the journal is the
    system's (``Persistence.install``)."""

    snapshot_every = 3

    def __init__(self, account_id: str) -> None:
        self.persistence_id = account_id

    def empty_state(self) -> AccountState:
        return AccountState(0, 0)

    def on_command(self, state: AccountState, command: AccountCommand) -> Effect[AccountEvent]:
        event: AccountEvent
        match command:
            case Deposit(amount):
                event = Deposited(amount, time.time())
            case Withdraw(amount) if state.balance >= amount:
                event = Withdrew(amount, time.time())
            case Withdraw():
                return Effect.reply(Nack("insufficient funds"))
            case GetState():
                return Effect.reply(state)
        # Appended before acknowledging; the state changes once it is durable.
        return Effect.persist(event).then_reply(_ack)

    def on_event(self, state: AccountState, event: AccountEvent) -> AccountState:
        return state.apply(event)


# --- The run -----------------------------------------------------------------

ACCOUNT_ID = "account-42"


@dataclass(frozen=True, slots=True)
class AccountReport:
    """What the example observed, for its test."""

    replies: tuple[Any, ...]
    #: the reply to a deposit sent again with the same idempotency key
    retry_reply: Any
    before_restart: AccountState
    after_restart: AccountState
    #: (sequence number, event type, amount) of every event in the journal
    journal: tuple[tuple[int, str, int], ...]
    #: the fold of the journal's events from AccountState(0, 0)
    replayed: AccountState
    #: sequence number of the latest snapshot (recovery replays the events after it)
    snapshot_at: int


def _install(system: hewitt.ActorSystem, db: Path) -> Persistence:
    return Persistence.install(system, SqliteJournal(db), SqliteSnapshotStore(db), account_codec())


async def main(db: Path | None = None) -> AccountReport:
    if db is None:
        with tempfile.TemporaryDirectory() as directory:
            return await main(Path(directory) / "accounts.db")

    async with hewitt.ActorSystem("bank") as system:
        persistence = _install(system, db)
        account = system.spawn(AccountActor, ACCOUNT_ID, name="account")
        replies = (
            await account.ask(Deposit(100, idempotency_key="deposit-1")),
            await account.ask(Withdraw(30)),
            await account.ask(Withdraw(500)),  # refused: nothing is written
            await account.ask(Deposit(25)),
        )
        retry = await account.ask(Deposit(100, idempotency_key="deposit-1"))
        before: AccountState = await account.ask(GetState())
        for reply in replies:
            print(f"reply: {reply}")
        print(f"retried deposit-1: {retry}; state before the restart: {before}")
        await persistence.close()

    # A new actor system, as after a crash: the account replays its journal.
    async with hewitt.ActorSystem("bank-restarted") as system:
        persistence = _install(system, db)
        account = system.spawn(AccountActor, ACCOUNT_ID, name="account")
        after: AccountState = await account.ask(GetState())
        print(f"state after the restart:  {after}")
        journal = []
        replayed = AccountState(0, 0)
        codec = persistence.codec
        async for stored in persistence.journal.read_events(ACCOUNT_ID):
            event: AccountEvent = codec.decode(stored.type_name, stored.version, stored.payload)
            journal.append((stored.sequence_nr, stored.type_name, event.amount))
            replayed = replayed.apply(event)
            print(f"journal #{stored.sequence_nr}: {event}")
        assert persistence.snapshots is not None
        snapshots = await persistence.snapshots.load_all(ACCOUNT_ID)
        await persistence.close()
    return AccountReport(
        replies=replies,
        retry_reply=retry,
        before_restart=before,
        after_restart=after,
        journal=tuple(journal),
        replayed=replayed,
        snapshot_at=snapshots[0].sequence_nr if snapshots else 0,
    )


if __name__ == "__main__":
    hewitt.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
