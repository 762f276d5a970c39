"""Floor ``floor-deque``: a bare synchronous dispatcher, no event loop at all.

Each actor has a ``deque`` mailbox; ``tell`` appends to it and, if the actor is not
already scheduled, appends the actor to one global ready ``deque``. :func:`run_until_idle`
pops ready actors and feeds them their messages by a direct method call. An ask from
outside is a ``tell`` with a reply slot (a list's ``append``), ``run_until_idle()``, then
reading the slot. This is the raw cost of enqueue + dispatch in CPython.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from benchmarks._common import (
    SKYNET_FANOUT,
    Metrics,
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
    """A mailbox plus a :meth:`receive` method; set ``alive = False`` to stop."""

    __slots__ = ("_mailbox", "_scheduled", "alive")

    def __init__(self) -> None:
        self._mailbox: deque[Any] = deque()
        self._scheduled = False
        self.alive = True

    def tell(self, message: Any) -> None:
        self._mailbox.append(message)
        if not self._scheduled:
            self._scheduled = True
            _ready.append(self)

    def receive(self, message: Any) -> None:
        raise NotImplementedError

    def stopped(self) -> None:
        """Called once, by the dispatcher, after the actor's last message."""


_ready: deque[Actor] = deque()  # actors with messages, each at most once


def run_until_idle() -> None:
    """Dispatch until no actor has a message left."""
    ready = _ready
    next_actor = ready.popleft
    while ready:
        actor = next_actor()
        mailbox = actor._mailbox
        next_message = mailbox.popleft
        receive = actor.receive
        while mailbox:
            receive(next_message())
            if not actor.alive:  # stays "scheduled" forever: never dispatched again
                mailbox.clear()
                actor.stopped()
                break
        else:
            actor._scheduled = False


class Counter(Actor):
    __slots__ = ("count",)

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def receive(self, message: Any) -> None:
        self.count += 1


class Echo(Actor):
    """Replies its payload; a request is ``(payload, reply_to)``."""

    __slots__ = ()

    def receive(self, message: Any) -> None:
        payload, reply_to = message
        reply_to(payload)


class Pinger(Actor):
    """Sends ``n`` sequential requests to an echo actor, timing each round trip."""

    __slots__ = ("echo", "last", "latencies", "n", "sent")

    def __init__(self, echo: Actor, n: int) -> None:
        super().__init__()
        self.echo = echo.tell
        self.n = n
        self.sent = 0
        self.last = 0
        self.latencies: list[int] = []

    def receive(self, message: Any) -> None:  # the first message starts, others are replies
        now = _ns()
        if self.sent:
            self.latencies.append(now - self.last)
            if self.sent == self.n:
                return
        self.last = now
        self.sent += 1
        self.echo((self.sent, self.tell))


class Coordinator(Actor):
    """On ``_GO`` tells every worker once, then counts the replies."""

    __slots__ = ("replies", "workers")

    def __init__(self, workers: list[Actor]) -> None:
        super().__init__()
        self.workers = workers
        self.replies = 0

    def receive(self, message: Any) -> None:
        if message is _GO:
            request = (1, self.tell)
            for worker in self.workers:
                worker.tell(request)
            return
        self.replies += 1


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


def bench_tell(n: int) -> Metrics:
    counter = Counter()
    tell = counter.tell
    message = "inc"
    t0 = time.perf_counter()
    for _ in range(n):
        tell(message)
    run_until_idle()
    elapsed = time.perf_counter() - t0
    assert counter.count == n
    return {"msgs_per_s": n / elapsed}


def bench_ask(n: int) -> Metrics:
    tell = Echo().tell
    latencies = [0] * n
    t0 = time.perf_counter()
    for i in range(n):
        start = _ns()
        slot: list[int] = []
        tell((i, slot.append))
        run_until_idle()
        assert slot[0] == i
        latencies[i] = _ns() - start
    elapsed = time.perf_counter() - t0
    return {"rt_per_s": n / elapsed, **latency_metrics(latencies)}


#: The floor's ask has one path (tell, dispatch, reply): no direct hand-off to switch
#: off, so the ``ask-nodirect`` row runs this same program again.
bench_ask_nodirect = bench_ask


def bench_ask_actor(n: int) -> Metrics:
    pinger = Pinger(Echo(), n)
    t0 = time.perf_counter()
    pinger.tell(None)
    run_until_idle()
    elapsed = time.perf_counter() - t0
    assert len(pinger.latencies) == n
    return {
        "rt_per_s": n / elapsed,
        "msgs_per_s": 2 * n / elapsed,
        **latency_metrics(pinger.latencies),
    }


def bench_spawn(n: int) -> Metrics:
    stopped = 0

    def on_stop() -> None:
        nonlocal stopped
        stopped += 1

    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    actors = [Idle(on_stop) for _ in range(n)]
    t1 = time.perf_counter()
    for actor in (actors[0], actors[-1]):  # usable: they answer
        slot: list[int] = []
        actor.tell((7, slot.append))
        run_until_idle()
        assert slot == [7]
    gc.collect()
    after = rss_bytes()
    t2 = time.perf_counter()
    for actor in actors:
        actor.tell(_STOP)
    run_until_idle()
    t3 = time.perf_counter()
    assert stopped == n
    return {
        "spawn_per_s": n / (t1 - t0),
        "stop_per_s": n / (t3 - t2),
        "kib_per_actor": (after - before) / n / 1024,
    }


def bench_fanout(n: int) -> Metrics:
    coordinator = Coordinator([Echo() for _ in range(n)])
    gc.collect()  # the round must not pay for the set-up's garbage-collector debt
    t0 = time.perf_counter()
    coordinator.tell(_GO)
    run_until_idle()
    secs = time.perf_counter() - t0
    assert coordinator.replies == n
    return {"secs": secs}


def bench_skynet(n: int) -> Metrics:
    check_skynet_size(n)
    slot: list[int] = []
    t0 = time.perf_counter()
    Node(slot.append).tell((0, n))
    run_until_idle()
    secs = time.perf_counter() - t0
    check_skynet(n, slot[0])
    return {"secs": secs}
