"""The child process of the kill test (test_kill.py): persistent bank accounts under load.

Run as ``python kill_worker.py BACKEND TARGET SEED [--accounts N] [--clients K]``,
where BACKEND is ``sqlite`` (TARGET: the database file) or ``postgres``
(TARGET: a DSN, or ``DSN#SCHEMA`` for tables in SCHEMA). It spawns ``N``
:class:`Account` actors on the store and writes ``recovering`` on stdout, then
``recovered`` as each has recovered, then ``ready``; then ``K``
clients send random deposits, withdrawals, transfers (a withdrawal, then a
deposit) and deposits with a fee (one command, two events written together)
until the process is killed — or stops by itself after ``--max-seconds``, so
that it never outlives a broken test.

After every acknowledged command it writes one line per persisted event on
stdout, as JSON (:class:`Ack`: persistence id, sequence number, event), in one
``write`` of a whole line: the parent may take every complete line it reads
as acknowledged — the event was durable before the reply came. Commands that
persist nothing (refused withdrawals) write nothing.

The parent imports this module for the same types, codec and stores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import time
from typing import Any

import msgspec

import hewitt
from hewitt import ActorRef, ActorSystem
from hewitt.persistence import (
    Codec,
    Effect,
    Journal,
    Persistence,
    PersistentActor,
    SnapshotStore,
    SqliteJournal,
    SqliteSnapshotStore,
)

# ----------------------------------------------------------------------
# Events and state. Every event names the command that wrote it (``command``)
# and its place among that command's events (``part`` of ``parts``): the
# parent checks that no command's events are in the journal only in part.


class Deposited(msgspec.Struct, frozen=True, tag=True):
    amount: int
    command: str
    part: int = 0
    parts: int = 1


class Withdrawn(msgspec.Struct, frozen=True, tag=True):
    amount: int
    command: str
    part: int = 0
    parts: int = 1


class FeeApplied(msgspec.Struct, frozen=True, tag=True):
    amount: int
    command: str
    part: int = 0
    parts: int = 1


Event = Deposited | Withdrawn | FeeApplied


class Balance(msgspec.Struct, frozen=True):
    """An account's state: its balance after ``version`` events."""

    balance: int = 0
    version: int = 0


def apply(state: Balance, event: Event) -> Balance:
    """The state after ``event``: the fold the journal is replayed with."""
    match event:
        case Deposited(amount):
            return Balance(state.balance + amount, state.version + 1)
        case Withdrawn(amount) | FeeApplied(amount):
            return Balance(state.balance - amount, state.version + 1)


def make_codec() -> Codec:
    codec = Codec()
    codec.register(Deposited, "kill.Deposited")
    codec.register(Withdrawn, "kill.Withdrawn")
    codec.register(FeeApplied, "kill.FeeApplied")
    codec.register(Balance, "kill.Balance")
    return codec


# ----------------------------------------------------------------------
# Commands and the account


class Deposit(msgspec.Struct, frozen=True):
    amount: int
    command: str


class Withdraw(msgspec.Struct, frozen=True):
    amount: int
    command: str


class DepositWithFee(msgspec.Struct, frozen=True):
    """Two events in one append: the deposit and its fee (fee <= amount)."""

    amount: int
    fee: int
    command: str


class GetState(msgspec.Struct, frozen=True):
    pass


Command = Deposit | Withdraw | DepositWithFee | GetState


class Acked(msgspec.Struct, frozen=True):
    """The command's events are durable; ``version`` is the last one's sequence number."""

    version: int


class Refused(msgspec.Struct, frozen=True):
    pass


REFUSED = Refused()


def events_of(command: Deposit | Withdraw | DepositWithFee) -> tuple[Event, ...]:
    """The events ``command`` persists when it is accepted."""
    match command:
        case Deposit(amount, name):
            return (Deposited(amount, name),)
        case Withdraw(amount, name):
            return (Withdrawn(amount, name),)
        case DepositWithFee(amount, fee, name):
            return (Deposited(amount, name, 0, 2), FeeApplied(fee, name, 1, 2))


def _acked(state: Balance) -> Acked:
    return Acked(state.version)


class Account(PersistentActor[Command, Event, Balance]):
    """A balance that never goes below zero; snapshots often, so that recovery
    after a kill goes through snapshots too."""

    snapshot_every = 25

    def __init__(self, persistence_id: str) -> None:
        self.persistence_id = persistence_id

    def empty_state(self) -> Balance:
        return Balance()

    def on_command(self, state: Balance, command: Command) -> Effect[Event]:
        match command:
            case GetState():
                return Effect.reply(state)
            case Withdraw(amount) if amount > state.balance:
                return Effect.reply(REFUSED)
            case Deposit() | Withdraw() | DepositWithFee():
                return Effect.persist(*events_of(command)).then_reply(_acked)

    def on_event(self, state: Balance, event: Event) -> Balance:
        return apply(state, event)


def account_id(index: int) -> str:
    return f"account-{index}"


# ----------------------------------------------------------------------
# Stores


def open_stores(backend: str, target: str) -> tuple[Journal, SnapshotStore]:
    """The journal and snapshot store of ``backend`` at ``target``: a SQLite
    file, or for PostgreSQL ``DSN`` or ``DSN#SCHEMA`` (tables in SCHEMA)."""
    if backend == "sqlite":
        return SqliteJournal(target), SqliteSnapshotStore(target)
    if backend == "postgres":
        dsn, _, schema = target.partition("#")
        persistence: Any = importlib.import_module("hewitt.persistence")
        journal: Journal = persistence.PostgresJournal(dsn, schema=schema or "public")
        snapshots: SnapshotStore = persistence.PostgresSnapshotStore(dsn, schema=schema or "public")
        return journal, snapshots
    raise ValueError(f"unknown backend {backend!r}")


# ----------------------------------------------------------------------
# What the worker writes

#: The lines before the acknowledged events, in this order (``RECOVERED``
#: once per account).
RECOVERING = b"recovering\n"
RECOVERED = b"recovered\n"
READY = b"ready\n"


class Ack(msgspec.Struct, frozen=True):
    """One acknowledged event: ``event`` is number ``sequence_nr`` of ``persistence_id``."""

    persistence_id: str
    sequence_nr: int
    event: Event


_ack_encoder = msgspec.json.Encoder()
ack_decoder = msgspec.json.Decoder(Ack)


def _write(line: bytes) -> None:
    # One write() per line: a line in the pipe is whole or absent (< PIPE_BUF).
    os.write(1, line)


def _write_acks(pid: str, version: int, events: tuple[Event, ...]) -> None:
    first = version - len(events) + 1
    _write(
        b"".join(
            _ack_encoder.encode(Ack(pid, first + i, event)) + b"\n"
            for i, event in enumerate(events)
        )
    )


async def _client(
    accounts: list[ActorRef[Command]], rng: random.Random, name: str, deadline: float
) -> None:
    count = len(accounts)
    number = 0
    while time.monotonic() < deadline:
        number += 1
        command_id = f"{name}/{number}"
        source = rng.randrange(count)
        amount = rng.randint(1, 100)
        kind = rng.random()
        steps: list[tuple[int, Deposit | Withdraw | DepositWithFee]]
        if kind < 0.3:
            steps = [(source, Deposit(amount, command_id))]
        elif kind < 0.5:
            steps = [(source, Withdraw(amount, command_id))]
        elif kind < 0.65:
            fee = rng.randint(1, amount)
            steps = [(source, DepositWithFee(amount, fee, command_id))]
        else:  # a transfer: the deposit only once the withdrawal is acknowledged
            target = (source + rng.randrange(1, count)) % count
            steps = [
                (source, Withdraw(amount, command_id + "w")),
                (target, Deposit(amount, command_id + "d")),
            ]
        for index, command in steps:
            reply = await accounts[index].ask(command, timeout=30.0)
            if isinstance(reply, Refused):
                break
            assert isinstance(reply, Acked), reply
            _write_acks(account_id(index), reply.version, events_of(command))


async def run(
    backend: str, target: str, seed: int, accounts: int, clients: int, max_seconds: float
) -> None:
    journal, snapshots = open_stores(backend, target)
    async with ActorSystem("kill-worker") as system:
        persistence = Persistence.install(system, journal, snapshots, make_codec())
        refs: list[ActorRef[Command]] = [
            system.spawn(Account, account_id(i), name=account_id(i)) for i in range(accounts)
        ]
        _write(RECOVERING)
        for ref in refs:  # recovered: the first reply comes after recovery
            await ref.ask(GetState(), timeout=30.0)
            _write(RECOVERED)
        _write(READY)
        deadline = time.monotonic() + max_seconds
        await asyncio.gather(
            *(
                _client(refs, random.Random(f"{seed}/{k}"), f"{seed}.{k}", deadline)
                for k in range(clients)
            )
        )
        for ref in refs:
            ref.stop()
        for ref in refs:
            await ref.wait_terminated(30.0)
    await persistence.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("backend", choices=["sqlite", "postgres"])
    parser.add_argument("target")
    parser.add_argument("seed", type=int)
    parser.add_argument("--accounts", type=int, default=16)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    hewitt.run(
        run(args.backend, args.target, args.seed, args.accounts, args.clients, args.max_seconds)
    )


if __name__ == "__main__":
    main()
