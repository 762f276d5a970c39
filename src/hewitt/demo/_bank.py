"""The bank of the demo: accounts, the tellers that move money, their desk, and
an audit service that crashes on purpose.

An :class:`Account` owns its balance and nothing else touches it. It is a
persistent actor: every change is an event (:class:`AccountOpened`,
:class:`FundsDeposited`, :class:`FundsWithdrawn`) in the bank's journal, durable
before the command is answered, and its balance is the fold of its events,
recovered at every start. The :class:`AccountRegister` records which accounts
exist and the money they were opened with (the capital), so that a later run
knows what the total must be.

A transfer is not a method of an account but the work of a separate actor, a
:class:`Teller`: it asks the source account to ``Withdraw`` and, only once the
account answers :data:`WITHDRAWN`, tells the target to ``Deposit``. A
withdrawal the source cannot cover is answered :data:`INSUFFICIENT_FUNDS` and
nothing moves. So money is never created or lost: every amount that leaves an
account is on its way to exactly one other.

The :class:`TransferDesk` runs a fixed pool of long-lived tellers, one per
transfer in flight, and hands each a new :class:`TransferOrder` as soon as it
reports the previous one settled. A pool rather than one short-lived actor per
transfer, because:

* the demo shows message throughput, and spawning and stopping an actor per
  transfer costs about as much as the transfer's own five messages (measured
  with accounts in memory: ~86,000 transfers/s with an actor per transfer,
  ~135,000 with the pool, on 2 cores), which would hide what the demo is about;
* ``--concurrency`` is then exactly the number of tellers, by construction;
* a teller still carries one transfer at a time, so a reply can never be taken
  for another transfer's: the order in progress is the teller's only state.

No handler waits for another actor: every step is a message with a reply-to
ref. An account awaits only its journal write (the commands that arrive
meanwhile wait in its mailbox), and the journal writes the events of all
accounts waiting at once together, in one transaction.

Every completed transfer is also told to an :class:`AuditService`, which records
it and holds no money. The audit fails on a random fraction of its messages (a
:class:`FaultInjector` makes it raise :class:`InjectedFault`). The desk is its
supervisor: its one-for-one strategy restarts the audit, and the runtime hands
the transfer that failed to the new instance again, until it has failed the
strategy's ``poison_threshold`` times in a row (3) and goes to dead letters
unrecorded. The transfers never wait for the audit, so they go on through its
crashes, and the books still balance.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from hewitt import Actor, ActorRef, SupervisorStrategy
from hewitt.persistence import Codec, Effect, PersistentActor

# ----------------------------------------------------------------------
# Account protocol


@dataclass(frozen=True, slots=True)
class Open:
    """Open the account with ``balance`` (>= 0) unless it is open already;
    answered :class:`AccountStatus` either way."""

    balance: int

    def __post_init__(self) -> None:
        if self.balance < 0:
            raise ValueError(f"an opening balance cannot be negative, got {self.balance}")


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


AccountMessage = Open | Deposit | Withdraw | GetBalance


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """The answer to :class:`Open`: what the account was opened with, and its balance."""

    opened_with: int
    balance: int


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


# ----------------------------------------------------------------------
# Account events and state: what the journal holds. Named after what happened
# to the money, not after the commands.


class AccountOpened(msgspec.Struct, frozen=True):
    balance: int


class FundsDeposited(msgspec.Struct, frozen=True):
    amount: int


class FundsWithdrawn(msgspec.Struct, frozen=True):
    amount: int


AccountEvent = AccountOpened | FundsDeposited | FundsWithdrawn


class AccountState(msgspec.Struct, frozen=True):
    """A balance, and what the account was opened with (``opened``: whether it is)."""

    balance: int = 0
    opened_with: int = 0
    opened: bool = False


def _withdrawn(state: AccountState) -> Withdrawn:
    return WITHDRAWN


def _deposited(state: AccountState) -> Deposited:
    return DEPOSITED


def _status(state: AccountState) -> AccountStatus:
    return AccountStatus(state.opened_with, state.balance)


class Account(PersistentActor[AccountMessage, AccountEvent, AccountState]):
    """One bank account: a balance that never goes below zero, event-sourced.

    Every change is an event in the journal, durable before the command is
    answered: a withdrawal is answered :data:`WITHDRAWN` only once
    :class:`FundsWithdrawn` is stored, so a teller never moves money that a
    restart would bring back. The state is the fold of the events (from the
    latest snapshot, taken every ``snapshot_every`` events, on).
    """

    snapshot_every = 1000

    def __init__(self, number: int) -> None:
        self.persistence_id = account_id(number)

    def empty_state(self) -> AccountState:
        return AccountState()

    def on_command(self, state: AccountState, command: AccountMessage) -> Effect[AccountEvent]:
        match command:
            case Withdraw(amount):
                if amount > state.balance:
                    return Effect.reply(INSUFFICIENT_FUNDS)
                return Effect.persist(FundsWithdrawn(amount)).then_reply(_withdrawn)
            case Deposit(amount):
                # A deposit told without a reply-to gets no receipt (none is sent
                # to a missing sender, so no dead letter either).
                return Effect.persist(FundsDeposited(amount)).then_reply(_deposited)
            case GetBalance():
                return Effect.reply(state.balance)
            case Open(balance):
                if state.opened:
                    return Effect.reply(_status(state))
                return Effect.persist(AccountOpened(balance)).then_reply(_status)

    def on_event(self, state: AccountState, event: AccountEvent) -> AccountState:
        match event:
            case FundsWithdrawn(amount):
                return AccountState(state.balance - amount, state.opened_with, state.opened)
            case FundsDeposited(amount):
                return AccountState(state.balance + amount, state.opened_with, state.opened)
            case AccountOpened(balance):
                return AccountState(state.balance + balance, balance, True)


def account_id(number: int) -> str:
    """The persistence id of account ``number``."""
    return f"account-{number}"


# ----------------------------------------------------------------------
# The bank's register of accounts


@dataclass(frozen=True, slots=True)
class RegisterAccounts:
    """Record that accounts ``0`` to ``accounts - 1`` are open, ``capital`` being
    what the ones not registered yet were opened with; answered :class:`BankBooks`."""

    accounts: int
    capital: int


@dataclass(frozen=True, slots=True)
class GetBooks:
    """Answered :class:`BankBooks`."""


RegisterMessage = RegisterAccounts | GetBooks


class AccountsRegistered(msgspec.Struct, frozen=True):
    """Accounts up to ``accounts`` are open, and brought ``capital`` into the bank."""

    accounts: int
    capital: int


class BankBooks(msgspec.Struct, frozen=True):
    """How many accounts the bank has (numbered from 0), and the money they were
    opened with: the total that transfers must conserve, run after run."""

    accounts: int = 0
    capital: int = 0


class AccountRegister(PersistentActor[RegisterMessage, AccountsRegistered, BankBooks]):
    """The bank's books: which accounts exist and the money they brought in.

    The journal keeps no list of persistence ids, so the bank keeps one: a
    later run knows every account that holds money, and what their total must be.
    """

    def __init__(self) -> None:
        self.persistence_id = "bank"

    def empty_state(self) -> BankBooks:
        return BankBooks()

    def on_command(self, state: BankBooks, command: RegisterMessage) -> Effect[AccountsRegistered]:
        match command:
            case GetBooks():
                return Effect.reply(state)
            case RegisterAccounts(accounts, capital):
                if accounts <= state.accounts:
                    return Effect.reply(state)
                return Effect.persist(AccountsRegistered(accounts, capital)).then_reply(_books)

    def on_event(self, state: BankBooks, event: AccountsRegistered) -> BankBooks:
        return BankBooks(event.accounts, state.capital + event.capital)


def _books(state: BankBooks) -> BankBooks:
    return state


def bank_codec() -> Codec:
    """The codec of the bank's events and snapshots (stable names: they are in
    the journal)."""
    codec = Codec()
    for cls in (AccountOpened, FundsDeposited, FundsWithdrawn, AccountState):
        codec.register(cls, f"demo.{cls.__name__}")
    codec.register(AccountsRegistered, "demo.AccountsRegistered")
    codec.register(BankBooks, "demo.BankBooks")
    return codec


# ----------------------------------------------------------------------
# Transfers


@dataclass(frozen=True, slots=True)
class TransferOrder:
    """Move ``amount`` from ``source`` to ``target``; told by the desk to a teller."""

    source: ActorRef[AccountMessage]
    target: ActorRef[AccountMessage]
    amount: int


@dataclass(frozen=True, slots=True)
class TransferCompleted:
    """Told by a teller to its desk: the money left the source and reached the target."""


@dataclass(frozen=True, slots=True)
class TransferRefused:
    """Told by a teller to its desk: the source could not cover it; nothing moved."""


TRANSFER_COMPLETED: Final = TransferCompleted()
TRANSFER_REFUSED: Final = TransferRefused()

TransferOutcome = TransferCompleted | TransferRefused
TellerMessage = TransferOrder | AccountReply


# ----------------------------------------------------------------------
# The audit service


class InjectedFault(RuntimeError):
    """The failure a :class:`FaultInjector` makes its service raise."""


class FaultInjector:
    """Makes a service fail on a random fraction ``rate`` of its calls, as chaos
    testing does, and counts the faults it injected.

    It is given to the service's factory, so it outlives any one instance of
    the service: a restart does not start its random sequence over (which
    would repeat the same failures forever).
    """

    __slots__ = ("_random", "injected", "rate")

    def __init__(self, rate: float, seed: int | str) -> None:
        if not 0 <= rate <= 1:  # also rejects nan
            raise ValueError(f"a fault rate is a fraction from 0 to 1, got {rate}")
        self.rate = rate
        self._random = random.Random(seed).random
        self.injected = 0

    def strike(self) -> None:
        """Raise :class:`InjectedFault` with probability ``rate``."""
        if self._random() < self.rate:
            self.injected += 1
            raise InjectedFault(f"injected fault number {self.injected}")


class AuditJournal:
    """Where the audit service records transfers. It stands for the service's
    durable storage (a database, a file): given to its factory, it outlives
    every instance, so a restart rebuilds the service but keeps its records."""

    __slots__ = ("recorded",)

    def __init__(self) -> None:
        self.recorded = 0


@dataclass(frozen=True, slots=True)
class GetAuditTally:
    """Answered :class:`AuditTally`."""


@dataclass(frozen=True, slots=True)
class AuditTally:
    """The audit's counters: transfers recorded, and the faults injected into it
    (each one a failure of the service, and a restart)."""

    recorded: int
    faults: int


GET_AUDIT_TALLY: Final = GetAuditTally()

AuditMessage = TransferOrder | GetAuditTally


class AuditService(Actor[AuditMessage]):
    """Records every completed transfer (told the transfer's order by its teller).

    Fails whenever ``faults`` strikes, before recording anything: a transfer is
    recorded once when a later attempt succeeds, and never when it is dropped
    as a poison message. Holds no money, and no state of its own either: its
    records are in ``journal``.
    """

    def __init__(self, journal: AuditJournal, faults: FaultInjector) -> None:
        self.journal = journal
        self.faults = faults

    def receive(self, message: AuditMessage) -> None:
        match message:
            case TransferOrder():
                self.faults.strike()
                self.journal.recorded += 1
            case GetAuditTally():
                self.context.reply(AuditTally(self.journal.recorded, self.faults.injected))


# ----------------------------------------------------------------------
# Tellers


class Teller(Actor[TellerMessage]):
    """Carries out transfer orders one at a time: withdraw, then deposit.

    Tells ``audit`` every transfer it completes, and reports each outcome to
    ``desk``, which answers with the next order.
    """

    def __init__(self, desk: ActorRef[TransferOutcome], audit: ActorRef[AuditMessage]) -> None:
        self.desk = desk
        self.audit = audit
        self.order: TransferOrder | None = None

    def receive(self, message: TellerMessage) -> None:
        match message:
            case TransferOrder(source, _, amount):
                if self.order is not None:
                    raise RuntimeError("a teller carries one transfer at a time")
                self.order = message
                source.tell(Withdraw(amount), self.context.self)
            case Withdrawn():
                # The amount has left the source and is held by this transfer
                # alone: a deposit must follow, and only one.
                order = self._order_in_progress()
                order.target.tell(Deposit(order.amount), self.context.self)
            case Deposited():
                # Told before the desk hears of the transfer: once the desk has
                # no transfer in flight, every audit is in the audit's mailbox.
                self.audit.tell(self._order_in_progress())
                self._settle(TRANSFER_COMPLETED)
            case InsufficientFunds():
                self._settle(TRANSFER_REFUSED)

    def _order_in_progress(self) -> TransferOrder:
        order = self.order
        if order is None:
            raise RuntimeError("an account answered a teller that has no transfer in progress")
        return order

    def _settle(self, outcome: TransferOutcome) -> None:
        self._order_in_progress()
        self.order = None
        self.desk.tell(outcome, self.context.self)


# ----------------------------------------------------------------------
# The desk


@dataclass(frozen=True, slots=True)
class OpenDesk:
    """Keep every teller busy with random transfers until :class:`CloseDesk`."""


@dataclass(frozen=True, slots=True)
class CloseDesk:
    """Hand out no new order; answered :class:`Progress` once no transfer is in flight."""


@dataclass(frozen=True, slots=True)
class GetProgress:
    """Answered :class:`Progress` at once."""


@dataclass(frozen=True, slots=True)
class Progress:
    """The desk's counters."""

    completed: int
    refused: int
    in_flight: int


DeskMessage = OpenDesk | CloseDesk | GetProgress | GetAuditTally | TransferOutcome


class TransferDesk(Actor[DeskMessage]):
    """Keeps ``concurrency`` tellers busy with transfers of random amounts
    (1 to ``max_amount``) between random pairs of distinct accounts.

    Supervises them and the audit service, which fails on a fraction
    ``crash_rate`` of its messages. :class:`GetAuditTally` is forwarded to the
    audit (ask it once the desk is closed for the final figures).
    """

    # One-for-one: a crash of the audit restarts the audit alone, never the
    # tellers with their transfers in flight. Failures are restarts (the
    # default decider), and the intensity is a bound the crashes cannot reach:
    # an actor fails at most once per message it is handed, and the whole demo
    # handles about a million messages a second. Giving up would stop every
    # child of the desk, tellers included, so here it must never happen.
    supervisor_strategy = SupervisorStrategy.one_for_one(max_restarts=1_000_000, within=1.0)

    audit: ActorRef[AuditMessage]

    def __init__(
        self,
        accounts: Sequence[ActorRef[AccountMessage]],
        concurrency: int,
        max_amount: int,
        seed: int,
        crash_rate: float = 0.0,
    ) -> None:
        if len(accounts) < 2:
            raise ValueError("transfers need at least 2 accounts")
        self.accounts = tuple(accounts)
        self.concurrency = concurrency
        self.max_amount = max_amount
        self.random = random.Random(seed).random
        # Its own stream, so that the crashes do not change the transfers.
        self.faults = FaultInjector(crash_rate, f"{seed}/audit")
        self.open = False
        self.completed = 0
        self.refused = 0
        self.idle: list[ActorRef[TellerMessage]] = []
        # The ref that asked to close, answered when the last transfer settles.
        self.closing_for: ActorRef[Progress] | None = None

    def pre_start(self) -> None:
        context = self.context
        self.audit = context.spawn(AuditService, AuditJournal(), self.faults, name="audit")
        self.idle = [
            context.spawn(Teller, context.self, self.audit, name=f"teller-{i}")
            for i in range(self.concurrency)
        ]

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
            case GetAuditTally():
                self.context.forward(self.audit, message)
            case OpenDesk():
                self.open = True
                for teller in self.idle:
                    teller.tell(self._new_order())
                self.idle.clear()
            case CloseDesk():
                self.open = False
                self.closing_for = self.context.sender
                self._answer_close_when_idle()

    def _on_settled(self) -> None:
        if self.open:
            self.context.reply(self._new_order())
            return
        teller = self.context.sender
        if teller is not None:
            self.idle.append(teller)
        self._answer_close_when_idle()

    def _new_order(self) -> TransferOrder:
        accounts = self.accounts
        count = len(accounts)
        random = self.random
        # random() is several times cheaper than randrange(), and its bias
        # over a few thousand accounts is far below anything observable.
        source = int(random() * count)
        # Any account but the source, uniformly.
        target = (source + 1 + int(random() * (count - 1))) % count
        amount = 1 + int(random() * self.max_amount)
        return TransferOrder(accounts[source], accounts[target], amount)

    def _answer_close_when_idle(self) -> None:
        if len(self.idle) == self.concurrency and self.closing_for is not None:
            self.closing_for.tell(self._progress(), self.context.self)
            self.closing_for = None

    def _progress(self) -> Progress:
        return Progress(self.completed, self.refused, self.concurrency - len(self.idle))
