"""A counter spammed from ten threads, replying to a printer named in the message.

Reproduces the Python ``CounterActor`` / ``Printer`` example of seed document
002 ("Actors and Message Passing", section "a python actor"): ten threads send
1000 ``add`` messages each to a counter, then a ``get`` message carrying
``reply_to: printer`` makes the counter send its count to the printer, which
prints ``count: 10000``.

hewitt features shown: *reply-to refs carried in messages*. ``Get`` is a frozen
dataclass holding an ``ActorRef[int]``: the counter may send it an ``int`` and
nothing else, and mypy checks both sides. Refs are contravariant, so the
printer's ``ActorRef[int | GetPrinted]`` is accepted where an ``ActorRef[int]``
is expected (it accepts ints, and more). Also shown: ``tell`` from plain
threads into an async system, and ``stash`` / ``unstash_all``: the printer holds
a question that arrives before the count it is about. The seed waits with
``time.sleep(1)`` "to let the actor drain its mailbox"; no sleeping is needed
here: ``Get`` is queued after every ``Add``, and the printer's answer is awaited.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import hewitt

THREADS = 10
ADDS_PER_THREAD = 1000


@dataclass(frozen=True, slots=True)
class Add:
    value: int


@dataclass(frozen=True, slots=True)
class Get:
    """Send the current count to ``reply_to``."""

    reply_to: hewitt.ActorRef[int]


CounterMsg = Add | Get


class Counter(hewitt.Actor[CounterMsg]):
    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: CounterMsg) -> None:
        match message:
            case Add(value):
                self.count += value
            case Get(reply_to):
                reply_to.tell(self.count, sender=self.context.self)


@dataclass(frozen=True, slots=True)
class GetPrinted:
    """Ask the printer for the count it printed (it answers once it has one)."""


PrinterMsg = int | GetPrinted


class Printer(hewitt.Actor[PrinterMsg]):
    def __init__(self) -> None:
        self.printed: int | None = None

    def receive(self, message: PrinterMsg) -> None:
        match message:
            case int(value):
                print(f"count: {value}")  # always 10000
                self.printed = value
                self.context.unstash_all()  # answer the questions that came early
            case GetPrinted() if self.printed is None:
                self.context.stash()  # nothing printed yet: keep the question
            case GetPrinted():
                self.context.reply(self.printed)


async def main() -> int:
    """Run the example; returns the count the printer printed (always 10000)."""
    async with hewitt.ActorSystem("counter-printer") as system:
        counter: hewitt.ActorRef[CounterMsg] = system.spawn(Counter, name="counter")
        printer: hewitt.ActorRef[PrinterMsg] = system.spawn(Printer, name="printer")

        def spam_adds() -> None:
            for _ in range(ADDS_PER_THREAD):
                counter.tell(Add(1))  # thread-safe

        await asyncio.gather(*(asyncio.to_thread(spam_adds) for _ in range(THREADS)))

        # The printer's ref travels inside the message; ActorRef[int | GetPrinted]
        # is an ActorRef[int] (refs are contravariant in their message type).
        counter.tell(Get(reply_to=printer))

        printed: int = await printer.ask(GetPrinted(), timeout=5.0)
        return printed


if __name__ == "__main__":
    hewitt.run(main())
