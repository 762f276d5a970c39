"""Floors ``floor-asyncio`` and ``floor-uvloop``: the plain asyncio program a user would write.

No actor machinery: a "server" is a coroutine function run as a task that awaits
``get()`` on its own ``asyncio.Queue``; a request carries where its answer goes (a
future for an ask, another task's queue for a reply that arrives as a message); a
send is the queue's ``put_nowait``. The benchmark's main coroutine is itself a task and
plays the sender, the asker, the pinger or the coordinator. Skynet is one task per node,
started with its arguments and handed its parent's result queue; every node with
children makes a result queue of its own and sums the ten values it receives on it.

``floor-asyncio`` runs on the stock asyncio selector loop, ``floor-uvloop`` runs the same
code on uvloop (the loop hewitt runs on); :func:`loop_choice` says which, as the
registry set it. See benchmarks/README.md, "The floors".
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

from benchmarks import floor_nodes
from benchmarks._common import (
    SKYNET_FANOUT,
    Metrics,
    check_skynet,
    check_skynet_size,
    latency_metrics,
    loop_runner,
    rss_bytes,
)

_ns = time.perf_counter_ns

#: A request whose answer is a future's result (an ask from a coroutine).
Ask = tuple[int, asyncio.Future[int]]
#: A request whose answer is a message: ``reply(payload)`` puts it into the asker's queue.
Request = tuple[int, Callable[[int], None]]


def _runner() -> asyncio.Runner:
    """A runner on uvloop for ``floor-uvloop``, else on the stock selector loop."""
    return loop_runner(default="asyncio")


async def _count(inbox: asyncio.Queue[str], n: int) -> None:
    """Take ``n`` messages off ``inbox``, then return (awaiting the task waits for that)."""
    get = inbox.get
    for _ in range(n):
        await get()


async def _answer(inbox: asyncio.Queue[Ask]) -> None:
    """Answer every ask with its payload, forever."""
    get = inbox.get
    while True:
        payload, future = await get()
        future.set_result(payload)


async def _echo(inbox: asyncio.Queue[Request]) -> None:
    """Reply every request's payload as a message, forever."""
    get = inbox.get
    while True:
        payload, reply = await get()
        reply(payload)


async def _idle(inbox: asyncio.Queue[Ask | None]) -> None:
    """The spawn bench's task: answers asks until it gets ``None``, then returns."""
    get = inbox.get
    while (request := await get()) is not None:
        payload, future = request
        future.set_result(payload)


async def _skynet_node(num: int, size: int, parent: asyncio.Queue[int]) -> None:
    """Put ``num`` into the parent's queue if a leaf; else start ten children on a
    result queue of this node's own and put the sum of their ten results."""
    if size == 1:
        parent.put_nowait(num)
        return
    results: asyncio.Queue[int] = asyncio.Queue()
    size //= SKYNET_FANOUT
    create_task = asyncio.get_running_loop().create_task
    for k in range(SKYNET_FANOUT):
        create_task(_skynet_node(num + k * size, size, results))
    get = results.get
    total = 0
    for _ in range(SKYNET_FANOUT):
        total += await get()
    parent.put_nowait(total)


async def _tell(n: int) -> Metrics:
    inbox: asyncio.Queue[str] = asyncio.Queue()
    counter = asyncio.get_running_loop().create_task(_count(inbox, n))
    await asyncio.sleep(0)  # the counter waits on its queue
    put = inbox.put_nowait
    message = "inc"
    t0 = time.perf_counter()
    for _ in range(n):
        put(message)
    await counter
    return {"msgs_per_s": n / (time.perf_counter() - t0)}


async def _ask(n: int) -> Metrics:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Ask] = asyncio.Queue()
    server = loop.create_task(_answer(inbox))
    await asyncio.sleep(0)
    put = inbox.put_nowait
    create_future = loop.create_future
    latencies = [0] * n
    t0 = time.perf_counter()
    for i in range(n):
        start = _ns()
        future: asyncio.Future[int] = create_future()
        put((i, future))
        await future
        latencies[i] = _ns() - start
    elapsed = time.perf_counter() - t0
    server.cancel()
    return {"rt_per_s": n / elapsed, **latency_metrics(latencies)}


async def _ask_actor(n: int) -> Metrics:
    # This task is the pinger: it sends a request carrying its own queue's put_nowait
    # and takes the reply off its queue before it sends the next.
    loop = asyncio.get_running_loop()
    echo_inbox: asyncio.Queue[Request] = asyncio.Queue()
    echo = loop.create_task(_echo(echo_inbox))
    inbox: asyncio.Queue[int] = asyncio.Queue()
    await asyncio.sleep(0)
    send = echo_inbox.put_nowait
    reply_to = inbox.put_nowait
    get = inbox.get
    latencies = [0] * n
    t0 = time.perf_counter()
    for i in range(n):
        start = _ns()
        send((i, reply_to))
        await get()
        latencies[i] = _ns() - start
    elapsed = time.perf_counter() - t0
    echo.cancel()
    return {
        "rt_per_s": n / elapsed,
        "msgs_per_s": 2 * n / elapsed,
        **latency_metrics(latencies),
    }


async def _spawn(n: int) -> Metrics:
    loop = asyncio.get_running_loop()
    create_task = loop.create_task
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    inboxes: list[asyncio.Queue[Ask | None]] = []
    tasks = []
    for _ in range(n):
        inbox: asyncio.Queue[Ask | None] = asyncio.Queue()
        inboxes.append(inbox)
        tasks.append(create_task(_idle(inbox)))
    t1 = time.perf_counter()
    for inbox in (inboxes[0], inboxes[-1]):  # usable: they answer (and all have started)
        probe: asyncio.Future[int] = loop.create_future()
        inbox.put_nowait((7, probe))
        assert await probe == 7
    gc.collect()
    after = rss_bytes()
    t2 = time.perf_counter()
    for inbox in inboxes:
        inbox.put_nowait(None)
    for task in tasks:
        await task
    t3 = time.perf_counter()
    return {
        "spawn_per_s": n / (t1 - t0),
        "stop_per_s": n / (t3 - t2),
        "kib_per_actor": (after - before) / n / 1024,
    }


async def _fanout(n: int) -> Metrics:
    # This task is the coordinator: one request to each of n echo tasks, then n replies
    # off its own queue.
    create_task = asyncio.get_running_loop().create_task
    inboxes: list[asyncio.Queue[Request]] = [asyncio.Queue() for _ in range(n)]
    workers = [create_task(_echo(inbox)) for inbox in inboxes]
    replies: asyncio.Queue[int] = asyncio.Queue()
    await asyncio.sleep(0)  # every worker waits on its queue
    gc.collect()  # the round must not pay for the set-up's garbage-collector debt
    request = (1, replies.put_nowait)
    get = replies.get
    t0 = time.perf_counter()
    for inbox in inboxes:
        inbox.put_nowait(request)
    for _ in range(n):
        await get()
    secs = time.perf_counter() - t0
    for worker in workers:
        worker.cancel()
    return {"secs": secs}


async def _skynet(n: int) -> Metrics:
    check_skynet_size(n)
    result: asyncio.Queue[int] = asyncio.Queue()
    t0 = time.perf_counter()
    asyncio.get_running_loop().create_task(_skynet_node(0, n, result))
    total = await result.get()
    secs = time.perf_counter() - t0
    check_skynet(n, total)
    return {"secs": secs}


def bench_tell(n: int) -> Metrics:
    with _runner() as runner:
        return runner.run(_tell(n))


def bench_ask(n: int) -> Metrics:
    with _runner() as runner:
        return runner.run(_ask(n))


#: The floor's ask has one path, a hop through the server's queue: no direct hand-off
#: to switch off, so the ``ask-nodirect`` row runs this same program again.
bench_ask_nodirect = bench_ask


def bench_ask_actor(n: int) -> Metrics:
    with _runner() as runner:
        return runner.run(_ask_actor(n))


def bench_spawn(n: int) -> Metrics:
    with _runner() as runner:
        return runner.run(_spawn(n))


def bench_fanout(n: int) -> Metrics:
    with _runner() as runner:
        return runner.run(_fanout(n))


def bench_skynet(n: int) -> Metrics:
    with _runner() as runner:
        return runner.run(_skynet(n))


# The cross-node benches: two processes over TCP (floor_nodes.py).
bench_node_ask = floor_nodes.bench_node_ask
bench_node_tell = floor_nodes.bench_node_tell
bench_node_scale = floor_nodes.bench_node_scale
