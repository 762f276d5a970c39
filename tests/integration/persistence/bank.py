"""A small event-sourced account, shared by the conformance suite and the
throughput measurement (``python -m tests.integration.persistence.throughput``)."""

from __future__ import annotations

import msgspec

from hewitt.persistence import Codec, Effect, PersistentActor

INSUFFICIENT_FUNDS = "insufficient funds"


class Deposit(msgspec.Struct, frozen=True):
    amount: int
    idempotency_key: str | None = None


class Withdraw(msgspec.Struct, frozen=True):
    amount: int
    idempotency_key: str | None = None


class GetBalance(msgspec.Struct, frozen=True):
    pass


Command = Deposit | Withdraw | GetBalance


class Deposited(msgspec.Struct, frozen=True):
    amount: int


class Withdrawn(msgspec.Struct, frozen=True):
    amount: int


Event = Deposited | Withdrawn


class Balance(msgspec.Struct, frozen=True):
    value: int = 0


def bank_codec() -> Codec:
    codec = Codec()
    codec.register(Deposited, "bank.Deposited")
    codec.register(Withdrawn, "bank.Withdrawn")
    codec.register(Balance, "bank.Balance")
    return codec


class Account(PersistentActor[Command, Event, Balance]):
    """Replies the new balance (an int) or ``INSUFFICIENT_FUNDS``; plain values,
    so that a reply replayed for a duplicate idempotency key compares equal."""

    def __init__(self, account_id: str) -> None:
        self.persistence_id = f"account-{account_id}"

    def empty_state(self) -> Balance:
        return Balance()

    def on_command(self, state: Balance, command: Command) -> Effect[Event]:
        if isinstance(command, Deposit):
            return Effect.persist(Deposited(command.amount)).then_reply(lambda s: s.value)
        if isinstance(command, Withdraw):
            if command.amount > state.value:
                return Effect.reply(INSUFFICIENT_FUNDS)
            return Effect.persist(Withdrawn(command.amount)).then_reply(lambda s: s.value)
        return Effect.reply(state.value)

    def on_event(self, state: Balance, event: Event) -> Balance:
        if isinstance(event, Deposited):
            return Balance(state.value + event.amount)
        return Balance(state.value - event.amount)

    def tags(self, event: Event) -> tuple[str, ...]:
        return ("bank",)
