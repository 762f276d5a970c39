"""A transfer between two bank-account actors, orchestrated by async code.

Reproduces the two-account bank transfer of seed document 000, chapter 2 ("The
Actor Model: A New Covenant for Concurrency", the actix ``Account`` actor and
its Ray ``AccountActor`` twin): account 1 holds $1000, account 2 holds $500;
$100 moves from account 2 to account 1 by a ``Withdraw`` followed, only if it
succeeded, by a ``Deposit``. A second transfer that would overdraw account 2
is refused and changes nothing.

hewitt features shown: an actor built with constructor arguments
(``system.spawn(Account, 1, 1000)``), request-reply with ``await ref.ask``,
explicit error handling as *reply values* (``Withdraw`` answers ``Ok`` or
``Refused`` with the reason, like actix's ``Result<i64, String>``), matching
those replies with ``match``, and a transfer that is not a method of an account
but plain async code orchestrating two actors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import hewitt

# --- Messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetBalance:
    """Replies with the balance (``int``)."""


@dataclass(frozen=True, slots=True)
class Deposit:
    """Replies ``True`` once credited."""

    from_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Replies :class:`Ok` or :class:`Refused`."""

    to_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class GetHistory:
    """Replies with the account's transactions (``tuple[Transaction, ...]``)."""


AccountMsg = GetBalance | Deposit | Withdraw | GetHistory


# --- Replies ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    """The withdrawal was made; ``balance`` is what is left."""

    balance: int


@dataclass(frozen=True, slots=True)
class Refused:
    """The withdrawal was refused, for ``reason``."""

    reason: str


WithdrawResult = Ok | Refused


@dataclass(frozen=True, slots=True)
class Transaction:
    from_id: int
    to_id: int
    amount: int
    timestamp: float


# --- The actor --------------------------------------------------------------


class Account(hewitt.Actor[AccountMsg]):
    def __init__(self, account_id: int, balance: int) -> None:
        self.id = account_id
        self.balance = balance
        self.operations: list[Transaction] = []

    def receive(self, message: AccountMsg) -> None:
        match message:
            case GetBalance():
                self.context.reply(self.balance)
            case Deposit(from_id, amount):
                self.balance += amount
                self.operations.append(Transaction(from_id, self.id, amount, time.monotonic()))
                self.context.reply(True)
            case Withdraw(to_id, amount) if self.balance >= amount:
                self.balance -= amount
                self.operations.append(Transaction(self.id, to_id, amount, time.monotonic()))
                self.context.reply(Ok(self.balance))
            case Withdraw(_, amount):
                self.context.reply(
                    Refused(
                        f"Insufficient funds in account {self.id}. "
                        f"Balance: {self.balance}, needed: {amount}"
                    )
                )
            case GetHistory():
                self.context.reply(tuple(self.operations))


# --- The transfer: async code orchestrating two actors ----------------------


async def transfer(
    source: hewitt.ActorRef[AccountMsg],
    source_id: int,
    target: hewitt.ActorRef[AccountMsg],
    target_id: int,
    amount: int,
) -> WithdrawResult:
    """Withdraw from ``source``, then, only if that succeeded, deposit into ``target``."""
    result: WithdrawResult = await source.ask(Withdraw(target_id, amount), timeout=2.0)
    match result:
        case Ok():
            deposited: bool = await target.ask(Deposit(source_id, amount), timeout=2.0)
            assert deposited
            print(f"Transfer of ${amount} completed successfully.")
        case Refused(reason):
            print(f"Transfer failed: {reason}")
    return result


@dataclass(frozen=True, slots=True)
class BankReport:
    """What the example observed, for its test."""

    transfer: WithdrawResult
    balances_after_transfer: tuple[int, int]
    overdraft: WithdrawResult
    balances_after_overdraft: tuple[int, int]
    history_1: tuple[Transaction, ...]
    history_2: tuple[Transaction, ...]


async def balances(
    account_1: hewitt.ActorRef[AccountMsg], account_2: hewitt.ActorRef[AccountMsg]
) -> tuple[int, int]:
    balance_1: int = await account_1.ask(GetBalance(), timeout=2.0)
    balance_2: int = await account_2.ask(GetBalance(), timeout=2.0)
    print(f"Account 1: ${balance_1}, Account 2: ${balance_2}")
    return balance_1, balance_2


async def main() -> BankReport:
    async with hewitt.ActorSystem("bank") as system:
        account_1 = system.spawn(Account, 1, 1000, name="account-1")
        account_2 = system.spawn(Account, 2, 500, name="account-2")

        # Transfer $100 from account 2 to account 1.
        first = await transfer(account_2, 2, account_1, 1, 100)
        after_first = await balances(account_1, account_2)

        # Account 2 now holds $400: a $1000 transfer is refused and changes nothing.
        overdraft = await transfer(account_2, 2, account_1, 1, 1000)
        after_overdraft = await balances(account_1, account_2)

        history_1: tuple[Transaction, ...] = await account_1.ask(GetHistory(), timeout=2.0)
        history_2: tuple[Transaction, ...] = await account_2.ask(GetHistory(), timeout=2.0)
        return BankReport(first, after_first, overdraft, after_overdraft, history_1, history_2)


if __name__ == "__main__":
    hewitt.run(main())
