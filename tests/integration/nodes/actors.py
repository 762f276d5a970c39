"""Actors and messages the node tests spawn on other nodes (by import path,
so both processes import this module)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hewitt import Actor, ActorRef, ActorSystem


@dataclass
class Ping:
    n: int


@dataclass
class Forwarded:
    """A message that carries a ref: the receiver answers ``reply_to``."""

    payload: str
    reply_to: ActorRef[Any]


@dataclass
class Count:
    """Sent ``total`` times in order 0..total-1; the last one is answered to ``report``."""

    seq: int
    total: int
    report: ActorRef[Any]


@dataclass
class Counted:
    received: int
    in_order: bool


@dataclass
class Payload:
    seq: int
    data: bytes


MESSAGES: tuple[type[Any], ...] = (Ping, Forwarded, Count, Counted, Payload)


def register(system: ActorSystem) -> None:
    system.codec.register(*MESSAGES)


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        if isinstance(message, Forwarded):
            message.reply_to.tell(f"echo:{message.payload}")
            return
        if message == "stop":
            self.context.stop()
            return
        if message == "crash":
            raise RuntimeError("asked to crash")
        self.context.reply(message)


class Sequence(Actor[Any]):
    """Checks that ``Count`` messages arrive in order, and reports at the end."""

    def __init__(self) -> None:
        self.expected = 0
        self.in_order = True

    def receive(self, message: Any) -> None:
        if isinstance(message, Count):
            if message.seq != self.expected:
                self.in_order = False
            self.expected = message.seq + 1
            if message.seq == message.total - 1:
                message.report.tell(Counted(self.expected, self.in_order))
        elif isinstance(message, Payload):
            self.expected += 1
        elif message == "count":
            self.context.reply(self.expected)
        elif message == "state":
            self.context.reply(Counted(self.expected, self.in_order))


class Greeter(Actor[Any]):
    def __init__(self, greeting: str, ping: Ping) -> None:
        self.greeting = greeting
        self.ping = ping

    def receive(self, message: Any) -> None:
        self.context.reply(f"{self.greeting} {message} {self.ping.n}")


class Failing(Actor[Any]):
    def __init__(self) -> None:
        raise ValueError("this actor refuses to start")

    def receive(self, message: Any) -> None:  # pragma: no cover - never built
        pass


NOT_AN_ACTOR = 42


class Counter(Actor[Any]):
    """Counts "inc"; "get" answers the count; "crash" raises RuntimeError,
    "bad" raises ValueError (for deciders)."""

    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: Any) -> None:
        if message == "inc":
            self.count += 1
        elif message == "get":
            self.context.reply(self.count)
        elif message == "crash":
            raise RuntimeError("asked to crash")
        elif message == "bad":
            raise ValueError("a bad message")


class Forwarder(Actor[Any]):
    """Forwards everything to ``target`` (the reply goes straight to the asker)."""

    def __init__(self, target: ActorRef[Any]) -> None:
        self.target = target

    def receive(self, message: Any) -> None:
        self.context.forward(self.target, message)


def register_noisily(system: ActorSystem) -> None:
    """A setup hook that prints (a worker's stdout also carries its ready line)."""
    print("setting up, and saying so on stdout", flush=True)
    print("ready? not yet: this line is not the ready line", flush=True)
    register(system)
