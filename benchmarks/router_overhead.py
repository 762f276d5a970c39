"""Router overhead: tell n messages directly to a counting actor vs through a
round-robin Pool of 1 and of 4 counting routees (best of `repeat` runs each).

Run from the repo root: .venv/bin/python benchmarks/router_overhead.py [n] [repeat]
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

import hewitt
from hewitt import Actor, ActorSystem
from hewitt.routing import (
    ConsistentHashing,
    Pool,
    RandomRouting,
    RoundRobin,
    RoutingStrategy,
    SmallestMailbox,
)


class Tally:
    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.n = n
        self.count = 0
        self.done = done


class Counter(Actor[str]):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def receive(self, message: str) -> None:
        tally = self.tally
        tally.count += 1
        if tally.count == tally.n:
            tally.done.set_result(None)


async def run(n: int, routees: int, strategy: RoutingStrategy | None = None) -> float:
    async with ActorSystem("bench") as system:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tally = Tally(n, done)
        if routees == 0:
            ref: Any = system.spawn(Counter, tally)
        else:
            ref = system.spawn(Pool, strategy or RoundRobin(), Counter, tally, size=routees)
            await ref.ask(hewitt.routing.GetRoutees())
        tell = ref.tell
        message = "inc"
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            tell(message)
        await done
        return n / (time.perf_counter() - t0)


async def main(n: int, repeat: int) -> None:
    best: dict[int, float] = {}
    for _ in range(repeat):
        for routees in (0, 1, 4):
            best[routees] = max(best.get(routees, 0.0), await run(n, routees))
    direct = best[0]
    print(f"direct tell          {direct:12,.0f} msg/s")
    for routees in (1, 4):
        rate = best[routees]
        print(f"round-robin pool of {routees} {rate:12,.0f} msg/s  ratio {rate / direct:.2f}")
    others: list[RoutingStrategy] = [
        RandomRouting(seed=1),
        SmallestMailbox(),
        ConsistentHashing(key=lambda m: m),
    ]
    for strategy in others:
        rate = 0.0
        for _ in range(repeat):
            rate = max(rate, await run(n // 4, 4, strategy))
        name = type(strategy).__name__
        print(f"{name:16} pool of 4 {rate:12,.0f} msg/s  ratio {rate / direct:.2f}")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    hewitt.run(main(n, repeat))
