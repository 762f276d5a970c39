"""A bank account as an event stream, rebuilt from its durable log after a crash.

Reproduces "Example: A Bank Account as an Event Stream" of seed document 000,
chapter 3 ("Beyond the Basics: Advanced Actor Model Patterns", section 3, "The
Event Sourcing Pattern"): instead of mutating a balance, the account handles a
command by producing events (``handle_command`` returns ``Vec<Event>``), and
its state is the result of applying them one by one (``apply_event``)::

    enum Event {
        Deposited { from: u32, amount: i64 },
        Withdrawn { to: u32, amount: i64, reason: String },
        AccountCreated { id: u32, initial_balance: i64 },
        FeeApplied { amount: i64, description: String },
    }

A withdrawal the balance cannot cover produces no event (``_ => vec![]``).
The account keeps the events it applied, its transactions: "a complete audit
trail". And "if the actor crashes and restarts, it can reload all past events
from a durable log and replay them to reconstruct its state": here the account
crashes on purpose, its supervisor restarts it, and the new instance replays
the journal (a SQLite file) to the same balance and history.

hewitt features shown: a :class:`hewitt.persistence.PersistentActor` whose
``on_command`` returns the command's events (``Effect.persist(*events)``) and
replies them once they are durable; ``on_event`` as ``apply_event``; recovery
on restart (``post_restart`` runs ``pre_start``, which replays the journal),
under a :class:`hewitt.Supervisor` whose ``poison_threshold=1`` does not
retry the message that crashed the account (the caller's ``ask`` fails
with the exception instead).

Run it: ``python examples/account_event_stream.py [DB]`` (default: a
temporary file).
"""

from __future__ import annotations

import logging
import sys
import tempfile
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
from hewitt.supervision import WhichChildren

# --- Events (enum Event) -----------------------------------------------------


class Deposited(msgspec.Struct, frozen=True):
    from_id: int
    amount: int


class Withdrawn(msgspec.Struct, frozen=True):
    to: int
    amount: int
    reason: str


class AccountCreated(msgspec.Struct, frozen=True):
    id: int
    initial_balance: int


class FeeApplied(msgspec.Struct, frozen=True):
    amount: int
    description: str


Event = Deposited | Withdrawn | AccountCreated | FeeApplied


# --- Commands ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Create:
    initial_balance: int


@dataclass(frozen=True, slots=True)
class Deposit:
    from_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    to: int
    amount: int


@dataclass(frozen=True, slots=True)
class ChargeFee:
    amount: int
    description: str


@dataclass(frozen=True, slots=True)
class GetAccount:
    """Answered with the :class:`Account` state."""


@dataclass(frozen=True, slots=True)
class Crash:
    """Makes the account fail: a stand-in for any bug or lost connection."""


Command = Create | Deposit | Withdraw | ChargeFee | GetAccount | Crash

#: Every command but the queries is answered with the events it produced, once
#: they are durable (an empty tuple: refused, nothing written).
Produced = tuple[Event, ...]


# --- State (struct Account) --------------------------------------------------


class Account(msgspec.Struct, frozen=True):
    id: int
    balance: int = 0
    #: the events applied so far: the account's audit trail
    transactions: tuple[Event, ...] = ()

    def apply_event(self, event: Event) -> Account:
        match event:
            case Deposited(_, amount):
                balance = self.balance + amount
            case Withdrawn(_, amount):
                balance = self.balance - amount
            case AccountCreated(_, initial_balance):
                balance = initial_balance
            case FeeApplied(amount):
                balance = self.balance - amount
        return Account(self.id, balance, (*self.transactions, event))


def account_codec() -> Codec:
    codec = Codec()
    for cls in (Deposited, Withdrawn, AccountCreated, FeeApplied, Account):
        codec.register(cls, f"stream.{cls.__name__}")
    return codec


# --- The actor ---------------------------------------------------------------


class AccountActor(PersistentActor[Command, Event, Account]):
    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.persistence_id = f"account-{account_id}"

    def empty_state(self) -> Account:
        return Account(self.account_id)

    def handle_command(self, account: Account, command: Command) -> list[Event]:
        """The seed's ``handle_command``: the events a command produces."""
        match command:
            case Create(initial_balance):
                return [AccountCreated(self.account_id, initial_balance)]
            case Deposit(from_id, amount):
                return [Deposited(from_id, amount)]
            case Withdraw(to, amount) if account.balance >= amount:
                return [Withdrawn(to, amount, "withdrawal")]
            case ChargeFee(amount, description):
                return [FeeApplied(amount, description)]
            case _:
                return []

    def on_command(self, state: Account, command: Command) -> Effect[Event]:
        match command:
            case GetAccount():
                return Effect.reply(state)
            case Crash():
                raise RuntimeError(f"account {self.account_id} crashed (on purpose)")
        events = self.handle_command(state, command)
        return Effect.persist(*events).then_reply(tuple(events))

    def on_event(self, state: Account, event: Event) -> Account:
        return state.apply_event(event)


# --- The run -----------------------------------------------------------------

#: Restart a crashed account at once; the message that crashed it is not retried.
STRATEGY = hewitt.SupervisorStrategy.one_for_one(max_restarts=3, within=10, poison_threshold=1)


@dataclass(frozen=True, slots=True)
class StreamReport:
    """What the example observed, for its test."""

    produced: tuple[Produced, ...]
    before_crash: Account
    crash_error: str
    restarts: int
    same_ref_after_restart: bool
    after_restart: Account
    #: (sequence number, event) of every event in the journal
    journal: tuple[tuple[int, Event], ...]


async def main(db: Path | None = None) -> StreamReport:
    if db is None:
        with tempfile.TemporaryDirectory() as directory:
            return await main(Path(directory) / "accounts.db")

    async with hewitt.ActorSystem("bank") as system:
        persistence = Persistence.install(
            system, SqliteJournal(db), SqliteSnapshotStore(db), account_codec()
        )
        supervisor: hewitt.ActorRef[Any] = system.spawn(
            hewitt.Supervisor,
            [hewitt.ChildSpec(name="account-7", factory=AccountActor, args=(7,))],
            STRATEGY,
            name="accounts",
        )
        children: list[tuple[str, hewitt.ActorRef[Command]]] = await supervisor.ask(WhichChildren())
        account = children[0][1]
        produced: list[Produced] = []
        for command in (
            Create(1000),
            Deposit(from_id=2, amount=250),
            Withdraw(to=3, amount=400),
            Withdraw(to=3, amount=5000),  # not covered: no event
            ChargeFee(15, "monthly maintenance"),
        ):
            events: Produced = await account.ask(command)
            print(f"{command} -> {list(events)}")
            produced.append(events)
        before: Account = await account.ask(GetAccount())
        print(f"balance {before.balance}, {len(before.transactions)} transactions")

        try:
            await account.ask(Crash())
            raise AssertionError("the account should have crashed")
        except RuntimeError as exc:
            crash_error = str(exc)
        # The restarted account replayed its journal before this reply.
        after: Account = await account.ask(GetAccount())
        print(f"after the crash and restart: balance {after.balance}, history {after.transactions}")
        restarts = system.statistics().restarts
        same_ref = system.lookup("/user/accounts/account-7") == account

        codec = persistence.codec
        journal = tuple(
            [
                (stored.sequence_nr, codec.decode(stored.type_name, stored.version, stored.payload))
                async for stored in persistence.journal.read_events("account-7")
            ]
        )
        supervisor.stop()
        await supervisor.wait_terminated(5.0)
        await persistence.close()
    return StreamReport(
        produced=tuple(produced),
        before_crash=before,
        crash_error=crash_error,
        restarts=restarts,
        same_ref_after_restart=same_ref,
        after_restart=after,
        journal=journal,
    )


if __name__ == "__main__":
    # The crash is on purpose: its traceback on the "hewitt" logger is not shown.
    logging.basicConfig(level=logging.CRITICAL)
    hewitt.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
