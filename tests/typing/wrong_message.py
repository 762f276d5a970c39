"""Checked by test_typing.py: every line marked `# E:` must be a mypy error."""

from dataclasses import dataclass

from hewitt import Actor, ActorRef, ActorSystem
from hewitt.routing import AddRoutee, Broadcast, Group, Pool, RemoveRoutee, Resize, RoundRobin


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


def use_routers(system: ActorSystem, account: ActorRef[Deposit | Withdraw]) -> None:
    # docs/routing.md, Typing: a subscripted router's ref takes the routees'
    # messages and the commands of that kind of router only.
    pool = system.spawn(Pool[Deposit | Withdraw], RoundRobin(), Account, size=2)
    pool.tell(Deposit(1))
    pool.tell(Resize(3))
    pool.tell(Broadcast(Withdraw(1)))
    pool.tell(AddRoutee(account))  # E: a pool does not take AddRoutee
    pool.tell(Unrelated("x"))  # E: nor messages its routees do not take
    group = system.spawn(Group[Deposit | Withdraw], RoundRobin(), [account])
    group.tell(AddRoutee(account))
    group.tell(RemoveRoutee(account))
    group.tell(Resize(3))  # E: a group does not take Resize
