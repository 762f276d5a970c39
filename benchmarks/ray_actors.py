"""The hewitt actors of ``benchmarks.ray_bench`` that run on the hosts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.node_actors import COUNT
from hewitt import Actor, ActorRef, ActorSystem


@dataclass(frozen=True)
class Run:
    """Tell ``counter`` ``n`` ints, then ask its count; answered with the seconds."""

    counter: ActorRef[Any]
    n: int


def setup(system: ActorSystem) -> None:
    system.codec.register(Run, name="bench.Run")


class Sender(Actor[Run]):
    async def receive(self, message: Run) -> None:
        counter = message.counter
        start = time.perf_counter()
        send = counter.send
        for i in range(message.n):
            await send(i)
        count = await counter.ask(COUNT, timeout=None)
        if count != message.n:
            raise AssertionError(f"the counter got {count} of {message.n}")
        self.context.reply(time.perf_counter() - start)
