"""The dispatcher: one message at a time, fairness, async and blocking handlers
(docs/semantics.md §1 and §9)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from hewitt import Actor, ActorRef, ActorSystem
from hewitt.testing import TestProbe

from .messages import Get


class Overlap(Actor[Any]):
    """An async handler that yields: another message must not start meanwhile."""

    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.order: list[int] = []

    async def receive(self, message: Any) -> None:
        if isinstance(message, Get):
            self.context.reply((self.max_active, list(self.order)))
            return
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(0)  # suspends this actor only
        await asyncio.sleep(0)
        self.order.append(message)
        self.active -= 1


async def test_async_handler_runs_one_message_at_a_time_in_order(
    actor_system: ActorSystem,
) -> None:
    actor = actor_system.spawn(Overlap)
    for i in range(200):
        actor.tell(i)
    max_active, order = await actor.ask(Get())
    assert max_active == 1
    assert order == list(range(200))


async def test_async_handler_suspends_only_its_actor(actor_system: ActorSystem) -> None:
    gate = asyncio.Event()

    class Waits(Actor[Any]):
        async def receive(self, message: Any) -> None:
            await gate.wait()
            self.context.reply("released")

    class Quick(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply("quick")

    waiting = actor_system.spawn(Waits)
    pending = asyncio.ensure_future(waiting.ask("wait"))
    quick = actor_system.spawn(Quick)
    assert await quick.ask("go") == "quick"  # not stalled by the suspended actor
    assert not pending.done()
    gate.set()
    assert await pending == "released"


@__import__("pytest").mark.hewitt_config(throughput=10)
async def test_busy_actor_does_not_starve_others(actor_system: ActorSystem) -> None:
    """With throughput N, a flooded actor yields the dispatcher after N messages."""
    probe = TestProbe(actor_system)

    class Busy(Actor[Any]):
        def __init__(self) -> None:
            self.count = 0

        def receive(self, message: Any) -> None:
            self.count += 1
            if self.count == 100_000:
                probe.ref.tell("busy done")

    class Light(Actor[Any]):
        def receive(self, message: Any) -> None:
            probe.ref.tell("light done")

    busy = actor_system.spawn(Busy)
    light = actor_system.spawn(Light)
    for _ in range(100_000):
        busy.tell(1)
    light.tell(1)
    assert await probe.expect_message(str) == "light done"
    assert await probe.expect_message(str) == "busy done"


async def test_event_loop_keeps_running_while_actors_are_busy(actor_system: ActorSystem) -> None:
    """The dispatcher yields to the loop every batch: other tasks progress meanwhile."""
    probe = TestProbe(actor_system)
    ticks: list[int] = []

    class Busy(Actor[Any]):
        def __init__(self) -> None:
            self.count = 0

        def receive(self, message: Any) -> None:
            self.count += 1
            if self.count == 200_000:
                probe.ref.tell(len(ticks))

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    busy = actor_system.spawn(Busy)
    for _ in range(200_000):
        busy.tell(1)
    ticks_while_busy = await probe.expect_message(int, within=10)
    task.cancel()
    batches = 200_000 // actor_system.config.batch_messages
    assert ticks_while_busy >= batches - 1


async def test_blocking_actor_runs_on_thread_pool(actor_system: ActorSystem) -> None:
    loop_thread = threading.get_ident()

    class Blocking(Actor[Any]):
        blocking = True

        def receive(self, message: Any) -> None:
            time.sleep(0.05)  # the blocking call under test, on a pool thread
            self.context.reply(threading.get_ident())

    class Quick(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply("quick")

    blocking = actor_system.spawn(Blocking)
    slow = asyncio.ensure_future(blocking.ask("block"))
    quick = actor_system.spawn(Quick)
    assert await quick.ask("go") == "quick"
    assert not slow.done()  # the loop answered while the pool thread blocks
    assert await slow != loop_thread


async def test_blocking_actor_keeps_order_and_one_at_a_time(actor_system: ActorSystem) -> None:
    class Blocking(Actor[Any]):
        blocking = True

        def __init__(self, out: ActorRef[Any]) -> None:
            self.out = out

        def receive(self, message: Any) -> None:
            self.out.tell(message)

    probe = TestProbe(actor_system)
    actor = actor_system.spawn(Blocking, probe.ref)
    for i in range(50):
        actor.tell(i)
    assert await probe.receive_messages(50) == list(range(50))


async def test_actor_statistics_report_depth_and_high_water_mark(
    actor_system: ActorSystem,
) -> None:
    class Slow(Actor[Any]):
        async def receive(self, message: Any) -> None:
            if message == "hold":
                probe.ref.tell("holding")
                await gate.wait()
            elif message == "get":
                self.context.reply("ok")

    gate = asyncio.Event()
    probe = TestProbe(actor_system)
    actor = actor_system.spawn(Slow)
    actor.tell("hold")
    for _ in range(5):
        actor.tell("x")
    await probe.expect_message("holding")
    stats = actor_system.actor_statistics(actor)
    assert stats is not None and stats.mailbox_depth == 5
    gate.set()
    assert await actor.ask("get") == "ok"
    stats = actor_system.actor_statistics(actor)
    assert stats is not None
    assert stats.mailbox_depth == 0 and stats.high_water_mark >= 5
    actor.stop()
    await actor.wait_terminated(timeout=1)
    assert actor_system.actor_statistics(actor) is None
