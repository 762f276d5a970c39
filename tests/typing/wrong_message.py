"""Checked by test_typing.py: every line marked `# E:` must be a mypy error."""

from dataclasses import dataclass

from hewitt import Actor, ActorRef, ActorSystem


@dataclass(frozen=True, slots=True)
class Deposit:
    amount: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    amount: int


@dataclass(frozen=True, slots=True)
class Unrelated:
    text: str


class Account(Actor[Deposit | Withdraw]):
    def receive(self, message: Deposit | Withdraw) -> None:
        pass


def use(system: ActorSystem) -> None:
    account = system.spawn(Account)
    account.tell(Deposit(1))
    account.tell(Withdraw(1))
    account.tell(Unrelated("x"))  # E: wrong message type
    account.tell("deposit 5")  # E: a string is not a message of this actor
    deposits_only: ActorRef[Deposit] = account  # fine: accepts at least Deposit
    deposits_only.tell(Deposit(2))
    deposits_only.tell(Withdraw(2))  # E: this view accepts Deposit only
    wrong: ActorRef[Unrelated] = account  # E: the actor does not accept Unrelated
    wrong.tell(Unrelated("y"))
