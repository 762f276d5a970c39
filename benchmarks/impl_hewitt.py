"""The ``hewitt`` and ``hewitt-asyncio`` impls: the same benches on hewitt's public API.

Each bench mirrors the floors' structure (see floor_asyncio.py): same messages, same
reply pattern, set-up outside the timed part. Runs on uvloop via ``hewitt.run`` unless
``loop_choice() == "asyncio"``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

import hewitt
from benchmarks import node_benches, persistence_benches
from benchmarks._common import (
    SKYNET_FANOUT,
    Metrics,
    asyncio_runner,
    check_skynet,
    check_skynet_size,
    latency_metrics,
    loop_choice,
    rss_bytes,
)
from hewitt import Actor, ActorRef, ActorSystem, SupervisorStrategy, SystemConfig

R = TypeVar("R")
_ns = time.perf_counter_ns
_GO: Final = object()
_FIRED: Final = object()
#: The timers bench: each timer's delay (the loop is then blocked this long, untimed).
TIMER_DELAY: Final = 0.01
#: The send-block bench: the BLOCK mailbox's capacity.
SEND_BLOCK_CAPACITY: Final = 1000


def _run(main: Coroutine[Any, Any, R]) -> R:
    if loop_choice() == "asyncio":
        with asyncio_runner() as runner:
            return runner.run(main)
    return hewitt.run(main)


class Counter(Actor[str]):
    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.n = n
        self.count = 0
        self.done = done

    def receive(self, message: str) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set_result(None)


class Supervisor(Actor[Any]):
    """A parent with a supervisor strategy of its own; its one child is built by
    ``factory(*args)`` and named ``child``."""

    supervisor_strategy = SupervisorStrategy.one_for_one(max_restarts=10, within=1.0)

    def __init__(self, factory: Any, *args: Any) -> None:
        self.context.spawn(factory, *args, name="child")

    def receive(self, message: Any) -> None:
        raise AssertionError(f"the supervisor got {message!r}")


class RestartSupervisor(Supervisor):
    """Restarts its child after every failure (up to a million, far above any
    n of the restart bench); a message that failed is not retried but goes to
    dead letters at once (``poison_threshold=1``): every message is a new failure."""

    supervisor_strategy = SupervisorStrategy.one_for_one(
        max_restarts=1_000_000, within=3600.0, poison_threshold=1
    )


class Crasher(Actor[int]):
    """Raises on every message but the ``n``-th (numbered from 0), which ends the run."""

    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.n = n
        self.done = done

    def receive(self, message: int) -> None:
        if message == self.n:
            self.done.set_result(None)
            return
        raise _Crash


class _Crash(Exception):
    pass


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.reply(message)


class Pinger(Actor[Any]):
    """Sends ``n`` sequential requests to an echo actor, timing each round trip;
    ``done`` gets the round trips' latencies after the last."""

    def __init__(self, echo: ActorRef[Any], n: int, done: asyncio.Future[list[int]]) -> None:
        self.echo = echo
        self.n = n
        self.done = done
        self.sent = 0
        self.last = 0
        self.latencies: list[int] = []

    def receive(self, message: Any) -> None:
        now = _ns()
        if self.sent:
            self.latencies.append(now - self.last)
            if self.sent == self.n:
                self.done.set_result(self.latencies)
                return
        self.last = now
        self.sent += 1
        self.echo.tell(self.sent, self.context.self)


class Coordinator(Actor[Any]):
    def __init__(self, workers: list[ActorRef[Any]], done: asyncio.Future[None]) -> None:
        self.workers = workers
        self.done = done
        self.replies = 0

    def receive(self, message: Any) -> None:
        if message is _GO:
            me = self.context.self
            for worker in self.workers:
                worker.tell(1, me)
            return
        self.replies += 1
        if self.replies == len(self.workers):
            self.done.set_result(None)


class Node(Actor[Any]):
    """A skynet actor: told ``(num, size)``, then sums its children's replies."""

    def __init__(self, reply_to: ActorRef[int]) -> None:
        self.reply_to = reply_to
        self.total = 0
        self.pending = SKYNET_FANOUT

    def receive(self, message: Any) -> None:
        if type(message) is tuple:
            num, size = message
            if size == 1:
                self.reply_to.tell(num)
                self.context.stop()
                return
            size //= SKYNET_FANOUT
            context = self.context
            me = context.self
            spawn = context.spawn
            for k in range(SKYNET_FANOUT):
                spawn(Node, me).tell((num + k * size, size))
            return
        self.total += message
        self.pending -= 1
        if not self.pending:
            self.reply_to.tell(self.total)
            self.context.stop()


class Result(Actor[int]):
    def __init__(self, result: asyncio.Future[int]) -> None:
        self.result = result

    def receive(self, message: int) -> None:
        self.result.set_result(message)


class TimerStarter(Actor[Any]):
    """On ``_GO``: starts ``n`` single timers (keys 0..n-1, each sending ``_FIRED``
    after ``delay``), then blocks the loop for ``delay`` so that all of them are
    due when it returns; counts the ``_FIRED`` messages it handles."""

    def __init__(self, n: int, delay: float, done: asyncio.Future[tuple[float, float]]) -> None:
        self.n = n
        self.delay = delay
        self.done = done
        self.fired = 0
        self.start_secs = 0.0  # starting the n timers
        self.due_at = 0.0  # all n are due from here on

    def receive(self, message: Any) -> None:
        if message is _GO:
            start = self.context.timers.start_single_timer
            delay = self.delay
            t0 = time.perf_counter()
            for key in range(self.n):
                start(key, _FIRED, delay)
            self.start_secs = time.perf_counter() - t0
            time.sleep(delay)  # untimed: every timer is due once this handler returns
            self.due_at = time.perf_counter()
            return
        self.fired += 1
        if self.fired == self.n:
            self.done.set_result((self.start_secs, time.perf_counter() - self.due_at))


async def _timed_tells(tell: Callable[[str], None], n: int, done: asyncio.Future[None]) -> float:
    """Tell n messages back to back; messages per second until ``done``."""
    message = "inc"
    t0 = time.perf_counter()
    for _ in range(n):
        tell(message)
    await done
    return n / (time.perf_counter() - t0)


async def _tell(n: int) -> Metrics:
    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        return {"msgs_per_s": await _timed_tells(system.spawn(Counter, n, done).tell, n, done)}


def _child(system: ActorSystem, supervisor: ActorRef[Any]) -> ActorRef[Any]:
    child = system.lookup(f"{supervisor.path}/child")
    assert child is not None
    return child


async def _tell_supervised(n: int) -> Metrics:
    # _tell with the counter one level down, under a supervisor with a strategy.
    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        tell = _child(system, system.spawn(Supervisor, Counter, n, done)).tell
        return {"msgs_per_s": await _timed_tells(tell, n, done)}


async def _tell_bounded(n: int) -> Metrics:
    # _tell into a bounded mailbox (DROP_NEWEST) big enough that nothing is dropped.
    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        mailbox = hewitt.Mailbox.bounded(n, hewitt.Overflow.DROP_NEWEST)
        counter = system.spawn(Counter, n, done, mailbox=mailbox)
        rate = await _timed_tells(counter.tell, n, done)
        _check_bounded(system, counter, n, n)
        return {"msgs_per_s": rate}


async def _tell_router(n: int) -> Metrics:
    # _tell through a round-robin pool of one counting routee (sender-side routing).
    from hewitt.routing import GetRoutees, Pool, RoundRobin

    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        router = system.spawn(Pool, RoundRobin(), Counter, n, done, size=1)
        await router.ask(GetRoutees())  # the pool has started its routee
        return {"msgs_per_s": await _timed_tells(router.tell, n, done)}


async def _send_block(n: int) -> Metrics:
    # One producer awaits send() into a BLOCK mailbox of SEND_BLOCK_CAPACITY: it runs
    # without suspending while there is room and waits for room when it is full.
    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        mailbox = hewitt.Mailbox.bounded(SEND_BLOCK_CAPACITY, hewitt.Overflow.BLOCK)
        counter = system.spawn(Counter, n, done, mailbox=mailbox)
        send = counter.send
        message = "inc"
        t0 = time.perf_counter()
        for _ in range(n):
            await send(message)
        await done
        elapsed = time.perf_counter() - t0
        _check_bounded(system, counter, n, SEND_BLOCK_CAPACITY)
        return {"msgs_per_s": n / elapsed}


def _check_bounded(system: ActorSystem, ref: ActorRef[Any], n: int, capacity: int) -> None:
    stats = system.actor_statistics(ref)
    if stats is None or stats.capacity != capacity or stats.dropped:
        raise AssertionError(f"bounded mailbox (capacity {capacity}, n {n}): {stats}")
    if stats.high_water_mark > capacity:
        raise AssertionError(f"mailbox above its capacity {capacity}: {stats}")


async def _timers(n: int) -> Metrics:
    async with ActorSystem("bench") as system:
        done: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        actor = system.spawn(TimerStarter, n, TIMER_DELAY, done)
        actor.tell(_GO)
        start_secs, fire_secs = await done
        return {"timers_per_s": n / start_secs, "fire_per_s": n / fire_secs}


async def _restart(n: int) -> Metrics:
    if n > 1_000_000:  # RestartSupervisor's intensity
        raise ValueError(f"restart bench: n must be at most 1,000,000, got {n}")
    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        tell = _child(system, system.spawn(RestartSupervisor, Crasher, n, done)).tell
        t0 = time.perf_counter()
        for i in range(n + 1):
            tell(i)
        await done
        elapsed = time.perf_counter() - t0
        stats = system.statistics()
        if not stats.failures == stats.restarts == stats.dead_letters == n:
            raise AssertionError(f"restart({n}): expected {n} failures and restarts, got {stats}")
        return {"restarts_per_s": n / elapsed, "restart_us": elapsed / n * 1e6}


async def _ask(n: int, config: SystemConfig | None = None) -> Metrics:
    async with ActorSystem("bench", config=config) as system:
        ask = system.spawn(Echo).ask
        latencies = [0] * n
        t0 = time.perf_counter()
        for i in range(n):
            start = _ns()
            await ask(i)
            latencies[i] = _ns() - start
        elapsed = time.perf_counter() - t0
        return {"rt_per_s": n / elapsed, **latency_metrics(latencies)}


async def _ask_actor(n: int) -> Metrics:
    async with ActorSystem("bench") as system:
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        actor = system.spawn(Pinger, system.spawn(Echo), n, done)
        t0 = time.perf_counter()
        actor.tell(None)
        latencies = await done
        elapsed = time.perf_counter() - t0
        return {
            "rt_per_s": n / elapsed,
            "msgs_per_s": 2 * n / elapsed,
            **latency_metrics(latencies),
        }


async def _spawn(n: int) -> Metrics:
    async with ActorSystem("bench") as system:
        gc.collect()
        before = rss_bytes()
        t0 = time.perf_counter()
        refs = [system.spawn(Echo) for _ in range(n)]
        t1 = time.perf_counter()
        for ref in (refs[0], refs[-1]):  # usable: they answer (and all have started)
            assert await ref.ask(7) == 7
        gc.collect()
        after = rss_bytes()
        t2 = time.perf_counter()
        for ref in refs:
            ref.stop()
        for ref in refs:
            await ref.wait_terminated()
        t3 = time.perf_counter()
        assert system.statistics().live_actors == 0
        return {
            "spawn_per_s": n / (t1 - t0),
            "stop_per_s": n / (t3 - t2),
            "kib_per_actor": (after - before) / n / 1024,
        }


async def _fanout(n: int) -> Metrics:
    async with ActorSystem("bench") as system:
        done = asyncio.get_running_loop().create_future()
        coordinator = system.spawn(Coordinator, [system.spawn(Echo) for _ in range(n)], done)
        gc.collect()
        t0 = time.perf_counter()
        coordinator.tell(_GO)
        await done
        return {"secs": time.perf_counter() - t0}


async def _skynet(n: int) -> Metrics:
    check_skynet_size(n)
    async with ActorSystem("bench") as system:
        result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        sink = system.spawn(Result, result)
        t0 = time.perf_counter()
        system.spawn(Node, sink).tell((0, n))
        total = await result
        secs = time.perf_counter() - t0
        check_skynet(n, total)
        return {"secs": secs}


def bench_tell(n: int) -> Metrics:
    return _run(_tell(n))


def bench_tell_supervised(n: int) -> Metrics:
    return _run(_tell_supervised(n))


def bench_tell_bounded(n: int) -> Metrics:
    return _run(_tell_bounded(n))


def bench_tell_router(n: int) -> Metrics:
    return _run(_tell_router(n))


def bench_send_block(n: int) -> Metrics:
    return _run(_send_block(n))


def bench_timers(n: int) -> Metrics:
    return _run(_timers(n))


def bench_restart(n: int) -> Metrics:
    # Every failure is logged with its traceback: at ERROR this would measure logging.
    hewitt_logger = logging.getLogger("hewitt")
    level = hewitt_logger.level
    hewitt_logger.setLevel(logging.CRITICAL)
    try:
        return _run(_restart(n))
    finally:
        hewitt_logger.setLevel(level)


def bench_ask(n: int) -> Metrics:
    return _run(_ask(n))


def bench_ask_nodirect(n: int) -> Metrics:
    # The path of an ask to a busy actor or (later) another node: the reply comes back
    # through the dispatcher, never by running the handler in the asker's turn.
    return _run(_ask(n, SystemConfig(direct_asks=0)))


def bench_ask_actor(n: int) -> Metrics:
    return _run(_ask_actor(n))


def bench_spawn(n: int) -> Metrics:
    return _run(_spawn(n))


def bench_fanout(n: int) -> Metrics:
    return _run(_fanout(n))


def bench_skynet(n: int) -> Metrics:
    return _run(_skynet(n))


def bench_tell_codec(n: int) -> Metrics:
    """Two ActorSystems in this process joined only by the kernel codec's bytes test
    double (``hewitt.testing.BytesNetwork``); one sender outside the actors of system
    A tells a counting actor of system B, through a ref resolved from B's address,
    ``n`` messages back to back. ``msgs_per_s``: ``n`` / the time from the first tell
    until B's counter has handled the ``n``-th; ``codec_us``: microseconds per encode
    + decode of one such envelope, timed apart over ``n`` envelopes (no delivery)."""
    return _run(_tell_codec(n))


async def _tell_codec(n: int) -> Metrics:
    from hewitt.testing import BytesNetwork

    network = BytesNetwork()
    async with ActorSystem("bench-a") as a, ActorSystem("bench-b") as b:
        network.join(a)
        network.join(b)
        done = asyncio.get_running_loop().create_future()
        counter = a.resolve(b.spawn(Counter, n, done).address)
        tell = counter.tell
        t0 = time.perf_counter()
        for _ in range(n):
            tell("msg")
        await done
        elapsed = time.perf_counter() - t0
        encode, decode = a.codec.encode_message, b.codec.decode_message
        t1 = time.perf_counter()
        for _ in range(n):
            decode(encode(counter, "msg"))
        codec_s = time.perf_counter() - t1
        return {"msgs_per_s": n / elapsed, "codec_us": codec_s / n * 1e6}


def bench_node_ask(n: int) -> Metrics:
    return _run(node_benches.node_ask(n))


def bench_node_tell(n: int) -> Metrics:
    return _run(node_benches.node_tell(n))


def bench_node_scale(n: int) -> Metrics:
    return _run(node_benches.node_scale(n))


#: The persistence benches' actors: 1 (persist-1) and 1,000 (persist-1000).
MANY_PERSISTING: Final = 1000
#: recovery-snapshots: the actor snapshots every this many events.
SNAPSHOT_EVERY: Final = 1000


def bench_persist_1(n: int) -> Metrics:
    return _run(persistence_benches.sqlite_persist(n, 1))


def bench_persist_1000(n: int) -> Metrics:
    return _run(persistence_benches.sqlite_persist(n, MANY_PERSISTING))


def bench_persist_1000_thread(n: int) -> Metrics:
    return _run(persistence_benches.sqlite_persist(n, MANY_PERSISTING, writer="thread"))


def bench_persist_1_pg(n: int) -> Metrics:
    return _run(persistence_benches.postgres_persist(n, 1))


def bench_persist_1000_pg(n: int) -> Metrics:
    return _run(persistence_benches.postgres_persist(n, MANY_PERSISTING))


def bench_recovery_replay(n: int) -> Metrics:
    return _run(persistence_benches.sqlite_recover(n, None))


def bench_recovery_snapshots(n: int) -> Metrics:
    return _run(persistence_benches.sqlite_recover(n, SNAPSHOT_EVERY))
