"""The bank of the demo: accounts, transfers and the desk that keeps them flowing.

An :class:`Account` owns its balance and nothing else touches it. A transfer is
not a method of an account: a :class:`Transfer` actor asks the source account to
``Withdraw`` and, only once the account answers :data:`WITHDRAWN`, tells the
target to ``Deposit``. A withdrawal the source cannot cover is answered
:data:`INSUFFICIENT_FUNDS` and nothing else happens, so money is never created
or lost: every amount that leaves an account arrives in exactly one other.

Each transfer is a short-lived actor, spawned for that transfer and stopped
when it settles, rather than one of a pool of long-lived workers. The transfer
is then a value with its own lifecycle: its state (which step it is at) lives
exactly as long as it does, nothing has to be reset between transfers, and a
transfer can never see a reply meant for another one. It costs one spawn and
one stop per transfer, which hewitt keeps cheap (actors hold no task), and it
shows the actor model's "create more actors" primitive at work. The
:class:`TransferDesk` keeps ``concurrency`` transfers in flight: it starts a
new one each time one settles, until it is closed, and then answers the
closing request once the last one has settled.

No handler awaits anything: every step is a message with a reply-to ref, so an
account is never blocked waiting on another actor.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hewitt import Actor, ActorRef

# ----------------------------------------------------------------------
# Account protocol


@dataclass(frozen=True, slots=True)
class Deposit:
    """Add ``amount`` (> 0) to the balance; answered :data:`DEPOSITED` when there is a sender."""

    amount: int

    def __post_init__(self) -> None:
        # A negative deposit would be a withdrawal that skips the funds check.
        if self.amount <= 0:
            raise ValueError(f"a deposit must be positive, got {self.amount}")


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Take ``amount`` (> 0) if the balance covers it; answered
    :data:`WITHDRAWN` or :data:`INSUFFICIENT_FUNDS`."""

    amount: int

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError(f"a withdrawal must be positive, got {self.amount}")


@dataclass(frozen=True, slots=True)
class GetBalance:
    """Answered with the balance, an ``int``."""


AccountMessage = Deposit | Withdraw | GetBalance


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """The withdrawal was made."""


@dataclass(frozen=True, slots=True)
class InsufficientFunds:
    """The withdrawal was refused: the balance did not cover it."""


@dataclass(frozen=True, slots=True)
class Deposited:
    """The deposit was made."""


# Replies carry no data, so one instance of each serves every reply.
WITHDRAWN: Final = Withdrawn()
INSUFFICIENT_FUNDS: Final = InsufficientFunds()
DEPOSITED: Final = Deposited()

AccountReply = Withdrawn | InsufficientFunds | Deposited


class Account(Actor[AccountMessage]):
    """One bank account: a balance that never goes below zero."""

    def __init__(self, balance: int) -> None:
        self.balance = balance

    def receive(self, message: AccountMessage) -> None:
        match message:
            case Withdraw(amount):
                if amount <= self.balance:
                    self.balance -= amount
                    self.context.reply(WITHDRAWN)
                else:
                    self.context.reply(INSUFFICIENT_FUNDS)
            case Deposit(amount):
                self.balance += amount
                # A deposit told without a reply-to wants no receipt; replying
                # would only make a dead letter.
                if self.context.sender is not None:
                    self.context.reply(DEPOSITED)
            case GetBalance():
                self.context.reply(self.balance)


# ----------------------------------------------------------------------
# Transfers


@dataclass(frozen=True, slots=True)
class TransferCompleted:
    """Told by a transfer to its desk: the money left the source and reached the target."""


@dataclass(frozen=True, slots=True)
class TransferRefused:
    """Told by a transfer to its desk: the source could not cover it; nothing moved."""


TRANSFER_COMPLETED: Final = TransferCompleted()
TRANSFER_REFUSED: Final = TransferRefused()

TransferOutcome = TransferCompleted | TransferRefused


class Transfer(Actor[AccountReply]):
    """Moves ``amount`` from ``source`` to ``target``: withdraw, then deposit.

    Reports its outcome to ``report_to`` and stops.
    """

    def __init__(
        self,
        source: ActorRef[AccountMessage],
        target: ActorRef[AccountMessage],
        amount: int,
        report_to: ActorRef[TransferOutcome],
    ) -> None:
        self.source = source
        self.target = target
        self.amount = amount
        self.report_to = report_to

    def pre_start(self) -> None:
        self.source.tell(Withdraw(self.amount), self.context.self)

    def receive(self, message: AccountReply) -> None:
        match message:
            case Withdrawn():
                # The money is now held by this transfer alone: only a deposit
                # may follow, and only one.
                self.target.tell(Deposit(self.amount), self.context.self)
            case Deposited():
                self._settle(TRANSFER_COMPLETED)
            case InsufficientFunds():
                self._settle(TRANSFER_REFUSED)

    def _settle(self, outcome: TransferOutcome) -> None:
        self.report_to.tell(outcome)
        self.context.stop()


# ----------------------------------------------------------------------
# The desk


@dataclass(frozen=True, slots=True)
class OpenDesk:
    """Start transfers: keep ``concurrency`` of them in flight until :class:`CloseDesk`."""


@dataclass(frozen=True, slots=True)
class CloseDesk:
    """Start no new transfer; answered :class:`Progress` once none is in flight."""


@dataclass(frozen=True, slots=True)
class GetProgress:
    """Answered :class:`Progress` at once."""


@dataclass(frozen=True, slots=True)
class Progress:
    """The desk's counters."""

    completed: int
    refused: int
    in_flight: int


DeskMessage = OpenDesk | CloseDesk | GetProgress | TransferOutcome


class TransferDesk(Actor[DeskMessage]):
    """Keeps ``concurrency`` transfers of random amounts between random accounts in flight."""

    def __init__(
        self,
        accounts: Sequence[ActorRef[AccountMessage]],
        concurrency: int,
        max_amount: int,
        seed: int,
    ) -> None:
        if len(accounts) < 2:
            raise ValueError("transfers need at least 2 accounts")
        self.accounts = tuple(accounts)
        self.concurrency = concurrency
        self.max_amount = max_amount
        self.rng = random.Random(seed)
        self.open = False
        self.completed = 0
        self.refused = 0
        self.in_flight = 0
        # The ref that asked to close, answered when the last transfer settles.
        self.closing_for: ActorRef[Progress] | None = None

    def receive(self, message: DeskMessage) -> None:
        match message:
            case TransferCompleted():
                self.completed += 1
                self._on_settled()
            case TransferRefused():
                self.refused += 1
                self._on_settled()
            case GetProgress():
                self.context.reply(self._progress())
            case OpenDesk():
                self.open = True
                while self.in_flight < self.concurrency:
                    self._start_transfer()
            case CloseDesk():
                self.open = False
                self.closing_for = self.context.sender
                self._answer_close_when_idle()

    def _on_settled(self) -> None:
        self.in_flight -= 1
        if self.open:
            self._start_transfer()
        else:
            self._answer_close_when_idle()

    def _start_transfer(self) -> None:
        accounts = self.accounts
        rng = self.rng
        source = rng.randrange(len(accounts))
        # Any account but the source, uniformly.
        target = (source + 1 + rng.randrange(len(accounts) - 1)) % len(accounts)
        amount = rng.randint(1, self.max_amount)
        self.context.spawn(
            Transfer, accounts[source], accounts[target], amount, self.context.self
        )
        self.in_flight += 1

    def _answer_close_when_idle(self) -> None:
        if self.in_flight == 0 and self.closing_for is not None:
            self.closing_for.tell(self._progress(), self.context.self)
            self.closing_for = None

    def _progress(self) -> Progress:
        return Progress(self.completed, self.refused, self.in_flight)
