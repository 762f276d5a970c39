"""Floor ``floor-asyncio``: one asyncio task reading its own ``asyncio.Queue`` per actor.

Runs on the stock asyncio selector loop (never uvloop). An actor's reference is the
actor object; ``tell`` is the queue's ``put_nowait``; a reply address is any
``Callable[[object], None]`` (another actor's ``tell``, or a future's ``set_result``
for an ask from outside the actors).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any, Final

from benchmarks._common import (
    SKYNET_FANOUT,
    Metrics,
    asyncio_runner,
    check_skynet,
    check_skynet_size,
    latency_metrics,
    rss_bytes,
)

Reply = Callable[[Any], None]
_ns = time.perf_counter_ns
_GO: Final = object()
_STOP: Final = object()


class Actor:
    """An asyncio task that feeds each message of its queue to :meth:`receive`."""

    __slots__ = ("_task", "alive", "tell")

    def __init__(self) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.tell: Reply = queue.put_nowait
        self.alive = True
        self._task = asyncio.get_running_loop().create_task(self._run(queue))

    async def _run(self, queue: asyncio.Queue[Any]) -> None:
        get = queue.get
        receive = self.receive
        while self.alive:
            receive(await get())
        self.stopped()

    def receive(self, message: Any) -> None:
        raise NotImplementedError

    def stopped(self) -> None:
        """Called once, in the actor's task, after its last message."""


class Counter(Actor):
    __slots__ = ("count", "done", "n")

    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.n = n
        self.count = 0
        self.done = done

    def receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set_result(None)


class Echo(Actor):
    """Replies its payload; a request is ``(payload, reply_to)``."""

    __slots__ = ()

    def receive(self, message: Any) -> None:
        payload, reply_to = message
        reply_to(payload)


class Pinger(Actor):
    """Sends ``n`` sequential requests to an echo actor, timing each round trip."""

    __slots__ = ("done", "echo", "last", "latencies", "n", "sent")

    def __init__(self, echo: Actor, n: int, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.echo = echo.tell
        self.n = n
        self.done = done
        self.sent = 0
        self.last = 0
        self.latencies: list[int] = []

    def receive(self, message: Any) -> None:  # the first message starts, others are replies
        now = _ns()
        if self.sent:
            self.latencies.append(now - self.last)
            if self.sent == self.n:
                self.done.set_result(None)
                return
        self.last = now
        self.sent += 1
        self.echo((self.sent, self.tell))


class Coordinator(Actor):
    """On ``_GO`` tells every worker once, then counts the replies."""

    __slots__ = ("done", "replies", "workers")

    def __init__(self, workers: list[Actor], done: asyncio.Future[None]) -> None:
        super().__init__()
        self.workers = workers
        self.done = done
        self.replies = 0

    def receive(self, message: Any) -> None:
        if message is _GO:
            request = (1, self.tell)
            for worker in self.workers:
                worker.tell(request)
            return
        self.replies += 1
        if self.replies == len(self.workers):
            self.done.set_result(None)


class Idle(Actor):
    """A spawned actor for the spawn bench: echoes requests, stops on ``_STOP``."""

    __slots__ = ("on_stop",)

    def __init__(self, on_stop: Callable[[], None]) -> None:
        super().__init__()
        self.on_stop = on_stop

    def receive(self, message: Any) -> None:
        if message is _STOP:
            self.alive = False
            return
        payload, reply_to = message
        reply_to(payload)

    def stopped(self) -> None:
        self.on_stop()


class Node(Actor):
    """A skynet actor: told ``(num, size)``, then sums its children's replies."""

    __slots__ = ("pending", "reply_to", "total")

    def __init__(self, reply_to: Reply) -> None:
        super().__init__()
        self.reply_to = reply_to
        self.total = 0
        self.pending = SKYNET_FANOUT

    def receive(self, message: Any) -> None:
        if type(message) is tuple:
            num, size = message
            if size == 1:
                self.reply_to(num)
                self.alive = False
                return
            size //= SKYNET_FANOUT
            tell = self.tell
            for k in range(SKYNET_FANOUT):
                Node(tell).tell((num + k * size, size))
            return
        self.total += message
        self.pending -= 1
        if not self.pending:
            self.reply_to(self.total)
            self.alive = False


async def _tell(n: int) -> Metrics:
    done = asyncio.get_running_loop().create_future()
    tell = Counter(n, done).tell
    await asyncio.sleep(0)  # the counter is started and waiting
    message = "inc"
    t0 = time.perf_counter()
    for _ in range(n):
        tell(message)
    await done
    return {"msgs_per_s": n / (time.perf_counter() - t0)}


async def _ask(n: int) -> Metrics:
    create_future = asyncio.get_running_loop().create_future
    tell = Echo().tell
    await asyncio.sleep(0)
    latencies = [0] * n
    t0 = time.perf_counter()
    for i in range(n):
        start = _ns()
        future: asyncio.Future[int] = create_future()
        tell((i, future.set_result))
        await future
        latencies[i] = _ns() - start
    elapsed = time.perf_counter() - t0
    return {"rt_per_s": n / elapsed, **latency_metrics(latencies)}


async def _ask_actor(n: int) -> Metrics:
    done = asyncio.get_running_loop().create_future()
    pinger = Pinger(Echo(), n, done)
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    pinger.tell(None)
    await done
    elapsed = time.perf_counter() - t0
    return {
        "rt_per_s": n / elapsed,
        "msgs_per_s": 2 * n / elapsed,
        **latency_metrics(pinger.latencies),
    }


async def _spawn(n: int) -> Metrics:
    loop = asyncio.get_running_loop()
    all_stopped = loop.create_future()
    remaining = n

    def on_stop() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_stopped.set_result(None)

    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    actors = [Idle(on_stop) for _ in range(n)]
    await asyncio.sleep(0)  # every task has started and waits on its queue
    t1 = time.perf_counter()
    gc.collect()
    after = rss_bytes()
    for actor in (actors[0], actors[-1]):  # usable: they answer
        probe: asyncio.Future[int] = loop.create_future()
        actor.tell((7, probe.set_result))
        assert await probe == 7
    t2 = time.perf_counter()
    for actor in actors:
        actor.tell(_STOP)
    await all_stopped
    t3 = time.perf_counter()
    return {
        "spawn_per_s": n / (t1 - t0),
        "stop_per_s": n / (t3 - t2),
        "kib_per_actor": (after - before) / n / 1024,
    }


async def _fanout(n: int) -> Metrics:
    done = asyncio.get_running_loop().create_future()
    coordinator = Coordinator([Echo() for _ in range(n)], done)
    await asyncio.sleep(0)
    gc.collect()  # the round must not pay for the set-up's garbage-collector debt
    t0 = time.perf_counter()
    coordinator.tell(_GO)
    await done
    return {"secs": time.perf_counter() - t0}


async def _skynet(n: int) -> Metrics:
    check_skynet_size(n)
    result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    t0 = time.perf_counter()
    Node(result.set_result).tell((0, n))
    total = await result
    secs = time.perf_counter() - t0
    check_skynet(n, total)
    return {"secs": secs}


def bench_tell(n: int) -> Metrics:
    with asyncio_runner() as runner:
        return runner.run(_tell(n))


def bench_ask(n: int) -> Metrics:
    with asyncio_runner() as runner:
        return runner.run(_ask(n))


def bench_ask_actor(n: int) -> Metrics:
    with asyncio_runner() as runner:
        return runner.run(_ask_actor(n))


def bench_spawn(n: int) -> Metrics:
    with asyncio_runner() as runner:
        return runner.run(_spawn(n))


def bench_fanout(n: int) -> Metrics:
    with asyncio_runner() as runner:
        return runner.run(_fanout(n))


def bench_skynet(n: int) -> Metrics:
    with asyncio_runner() as runner:
        return runner.run(_skynet(n))
