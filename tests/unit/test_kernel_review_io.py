"""Regressions from a hostile review of the kernel: mailboxes, memory,
threads, shutdown, contexts and the bytes test double. Each failed before its
fix (docs/semantics.md, docs/flow-control.md)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorInitializationError,
    ActorRef,
    ActorSystem,
    ActorSystemStopped,
    DeadLetter,
    DeliveryError,
    Exit,
    Mailbox,
    MailboxFull,
    NodeUnreachable,
    Overflow,
    RestartType,
    SystemConfig,
    Terminated,
)
from hewitt.testing import BytesNetwork, TestProbe, VirtualClock

HANG = 30.0


@dataclass(frozen=True, slots=True)
class Job:
    priority: Any


class Gate(Actor[Any]):
    """Holds its handler on ``gate`` when told "hold" (so that messages queue)."""

    def __init__(self, gate: asyncio.Event, probe: ActorRef[Any]) -> None:
        self.gate = gate
        self.probe = probe

    async def receive(self, message: Any) -> None:
        if message == "hold":
            self.probe.tell("holding")
            await self.gate.wait()
        elif isinstance(message, tuple) and message[0] == "watch":
            self.context.watch(message[1])
            self.context.reply("watching")
        else:
            self.probe.tell(message)


async def test_an_incomparable_priority_key_is_refused_and_the_heap_stays_whole(
    actor_system: ActorSystem,
) -> None:
    gate, probe = asyncio.Event(), TestProbe(actor_system)
    by_priority = Mailbox.by_priority(lambda m: getattr(m, "priority", 0))
    ref = actor_system.spawn(Gate, gate, probe.ref, mailbox=by_priority)
    ref.tell("hold")
    await probe.expect_message("holding")
    for p in (3, 1, 2):
        ref.tell(Job(p))
    with pytest.raises(TypeError, match="does not compare"):
        ref.tell(Job(None))  # None < int: refused at the sender, nothing stored
    gate.set()
    assert [m.priority for m in await probe.receive_messages(3, within=HANG)] == [1, 2, 3]
    ref.stop()
    await ref.wait_terminated(timeout=HANG)


async def test_a_priority_key_never_ranks_the_runtime_own_messages(
    actor_system: ActorSystem,
) -> None:
    gate, probe = asyncio.Event(), TestProbe(actor_system)
    # None for anything without a priority: a Terminated would not compare with Jobs.
    by_priority = Mailbox.by_priority(lambda m: getattr(m, "priority", None))
    watcher = actor_system.spawn(Gate, gate, probe.ref, mailbox=by_priority)
    target = actor_system.spawn(Gate, gate, probe.ref)
    assert await watcher.ask(("watch", target), timeout=HANG) == "watching"
    watcher.tell("hold")
    await probe.expect_message("holding")
    watcher.tell(Job(1))
    target.stop()  # the watcher's Terminated is queued behind the held handler
    await target.wait_terminated(timeout=HANG)
    gate.set()
    received = await probe.receive_messages(2, within=HANG)
    assert {type(m) for m in received} == {Terminated, Job}


async def test_drop_oldest_never_drops_what_the_runtime_queued(actor_system: ActorSystem) -> None:
    gate, probe = asyncio.Event(), TestProbe(actor_system)
    watcher = actor_system.spawn(
        Gate, gate, probe.ref, mailbox=Mailbox.bounded(2, Overflow.DROP_OLDEST)
    )
    target = actor_system.spawn(Gate, gate, probe.ref)
    assert await watcher.ask(("watch", target), timeout=HANG) == "watching"
    watcher.tell("hold")
    await probe.expect_message("holding")
    target.stop()
    await target.wait_terminated(timeout=HANG)  # Terminated queued in the watcher
    for i in range(5):
        watcher.tell(i)  # the user messages make room among themselves
    gate.set()
    received = await probe.receive_messages(2, within=HANG)
    assert isinstance(received[0], Terminated) and received[1] == 4


async def test_a_withdrawal_wakes_a_sender_blocked_on_a_full_mailbox() -> None:
    clock = VirtualClock()
    async with ActorSystem("wake", config=SystemConfig(clock=clock, direct_asks=0)) as system:
        gate, probe = asyncio.Event(), TestProbe(system)

        class TickThenCancel(Actor[Any]):
            async def receive(self, message: Any) -> None:
                if message == "go":
                    self.context.timers.start_single_timer("k", "tick", 1.0)
                    probe.ref.tell("timer started")
                    await gate.wait()
                    self.context.timers.cancel("k")  # withdraws the queued tick
                elif message == "x":
                    probe.ref.tell("x")

        ref = system.spawn(TickThenCancel, mailbox=Mailbox.bounded(1, Overflow.BLOCK))
        ref.tell("go")
        await probe.expect_message("timer started")
        clock.advance(1.0)  # the tick is queued: the mailbox (capacity 1) is full
        sending = asyncio.ensure_future(ref.send("x"))  # no timeout: waits for room
        assert await system.spawn(Echo).ask("a loop turn", timeout=HANG)
        assert not sending.done()
        gate.set()  # the cancel withdraws the tick: the sender must be woken
        await asyncio.wait_for(sending, HANG)
        assert await probe.expect_message("x", within=HANG) == "x"


async def test_single_timers_that_fired_are_not_kept() -> None:
    import gc

    from hewitt._runtime._timers import _Timer  # counting the kernel's own objects

    clock = VirtualClock()
    async with ActorSystem("fired", config=SystemConfig(clock=clock)) as system:

        class ManyTimers(Actor[Any]):
            def __init__(self) -> None:
                self.fired = 0

            def receive(self, message: Any) -> None:
                if message == "start":
                    for i in range(2000):
                        self.context.timers.start_single_timer(i, "fired", 1.0)
                elif message == "fired":
                    self.fired += 1
                self.context.reply(self.fired)

        ref = system.spawn(ManyTimers)
        await ref.ask("start", timeout=HANG)
        clock.advance(1.0)  # all 2,000 fire; their ticks are queued
        assert await ref.ask("count", timeout=HANG) == 2000  # handled after the ticks
        assert sum(1 for o in gc.get_objects() if isinstance(o, _Timer)) == 0


def test_a_refused_ask_blocking_leaves_nothing_behind() -> None:
    started, release = threading.Event(), threading.Event()

    class Busy(Actor[Any]):
        blocking = True

        def receive(self, message: Any) -> None:
            started.set()
            release.wait(HANG)

    with ActorSystem.start_in_thread("refused") as system:
        ref = system.spawn(Busy, mailbox=Mailbox.bounded(1, Overflow.FAIL))
        ref.tell("occupy")
        assert started.wait(HANG)  # its handler runs: the mailbox is empty
        ref.tell("fill")
        # Through the same FIFO inbox: once this is answered, "fill" is queued.
        assert system.spawn(Echo).ask_blocking("sync", timeout=HANG) == "sync"
        for _ in range(50):  # the mailbox is full: refused at the sending thread
            with pytest.raises(MailboxFull):
                ref.ask_blocking("more", timeout=HANG)
        release.set()
        assert not system._foreign_asks  # nothing of the refused asks is left


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_when_the_loop_dies_blocked_callers_are_released() -> None:
    class Silent(Actor[Any]):
        def receive(self, message: Any) -> None:
            pass

    class Killer(Actor[Any]):
        def receive(self, message: Any) -> None:
            raise SystemExit("the loop thread ends here")

    system = ActorSystem.start_in_thread("dies")
    silent = system.spawn(Silent)
    outcome: list[BaseException] = []
    started = threading.Event()

    def asker() -> None:
        started.set()
        try:
            silent.ask_blocking("q", timeout=None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=asker)
    thread.start()
    assert started.wait(HANG)
    system.spawn(Killer).tell("die")
    thread.join(HANG)
    assert not thread.is_alive() and isinstance(outcome[0], ActorSystemStopped)
    assert not system.is_running
    assert system._thread is not None
    system._thread.join(HANG)  # its exception is reported now, inside this test


def test_shutdown_blocking_returns_within_its_timeout_with_a_stuck_handler() -> None:
    release = threading.Event()

    class Stuck(Actor[Any]):
        async def receive(self, message: Any) -> None:
            while not release.is_set():
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue  # ignores its cancellation (the behaviour under test)

    system = ActorSystem.start_in_thread("stuck")
    ref = system.spawn(Stuck)
    ref.tell("go")
    started = time.monotonic()
    system.shutdown_blocking(timeout=0.5)
    assert time.monotonic() - started < 1.3  # its timeout; before: the grace on top
    with pytest.raises(ActorSystemStopped):
        ref.ask_blocking("after", timeout=HANG)
    release.set()


async def test_when_shutdown_times_out_every_actor_is_stopped_all_the_same() -> None:
    gate = asyncio.Event()

    class SlowStop(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply(message)

        async def post_stop(self) -> None:
            await gate.wait()  # never set: every stop is slow

    system = ActorSystem("slow-stops")
    await system.start()
    refs = [system.spawn(SlowStop) for _ in range(20)]
    await refs[-1].ask("started", timeout=HANG)
    await system.shutdown(timeout=0.2)
    assert all(not ref.is_alive for ref in refs)
    assert system.statistics().live_actors == 0


def test_wait_terminated_blocking_keeps_its_timeout_and_returns_after_shutdown() -> None:
    release = threading.Event()

    class Wedge(Actor[Any]):
        def receive(self, message: Any) -> None:
            release.wait(HANG)  # blocks the loop thread (the behaviour under test)

    system = ActorSystem.start_in_thread("waits")
    ref = system.spawn(Wedge)
    ref.tell("block")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        ref.wait_terminated_blocking(timeout=0.2)
    assert time.monotonic() - started < HANG / 2
    release.set()
    system.shutdown_blocking()
    ref.wait_terminated_blocking(timeout=HANG)  # stopped with its system: returns


VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("review_var", default=None)


async def test_a_blocking_actor_keeps_its_context_between_handlers(
    actor_system: ActorSystem,
) -> None:
    class Remembers(Actor[Any]):
        blocking = True

        def receive(self, message: Any) -> None:
            if message == "set":
                VAR.set("value")
            self.context.reply(VAR.get())

    ref = actor_system.spawn(Remembers)
    assert await ref.ask("set", timeout=HANG) == "value"
    assert await ref.ask("get", timeout=HANG) == "value"


async def test_a_restart_decided_inside_another_actor_turn_runs_pre_restart(
    actor_system: ActorSystem,
) -> None:
    calls: list[str] = []

    class Fails(Actor[Any]):
        def receive(self, message: Any) -> None:
            raise ValueError("fails, and its linked asker restarts")

    class Asker(Actor[Any]):
        def pre_restart(self, exc: BaseException, message: Any) -> None:
            calls.append("pre_restart")

        async def receive(self, message: Any) -> None:
            if message == "ping":
                self.context.reply("pong")
                return
            self.context.link(message)
            with contextlib.suppress(ValueError):
                await message.ask("boom", timeout=HANG)

    fails = actor_system.spawn(Fails, restart=RestartType.TEMPORARY)
    asker = actor_system.spawn(Asker)
    probe = TestProbe(actor_system)
    probe.watch(fails)
    asker.tell(fails)
    await probe.expect_message(Terminated, within=HANG)
    assert await asker.ask("ping", timeout=HANG) == "pong"
    assert calls == ["pre_restart"]


async def test_a_blocking_actor_with_an_async_receive_is_refused(actor_system: ActorSystem) -> None:
    class Wrong(Actor[Any]):
        blocking = True

        async def receive(self, message: Any) -> None:
            pass

    with pytest.raises(ActorInitializationError, match="blocking = True with an async def"):
        actor_system.spawn(Wrong)


async def test_watching_a_temporary_ref_answers_when_its_ask_is_over(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)

    class WatchesItsAsker(Actor[Any]):
        def receive(self, message: Any) -> None:
            if isinstance(message, Terminated):
                probe.ref.tell(message)
                return
            sender = self.context.sender
            assert sender is not None
            self.context.watch(sender)
            self.context.reply("ok")

    assert await actor_system.spawn(WatchesItsAsker).ask("hi", timeout=HANG) == "ok"
    terminated = await probe.expect_message(Terminated, within=HANG)
    assert terminated.ref.path.startswith("/temp")


# --- the bytes test double -------------------------------------------------------


@pytest.fixture
async def pair() -> Any:
    network = BytesNetwork()
    async with ActorSystem("node-a") as a, ActorSystem("node-b") as b:
        network.join(a)
        network.join(b)
        yield network, a, b


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        if message != "never":
            self.context.reply(message)


class Trapper(Actor[Any]):
    trap_exits = True

    def __init__(self, probe: ActorRef[Any]) -> None:
        self.probe = probe

    def receive(self, message: Any) -> None:
        if isinstance(message, Exit):
            self.probe.tell(message)
        else:
            self.context.link(message)
            self.context.reply("linked")


async def test_a_cut_link_breaks_the_links_across_it(pair: Any) -> None:
    network, a, b = pair
    probe = TestProbe(a)
    trapper = a.spawn(Trapper, probe.ref)
    remote = a.resolve(b.spawn(Echo).address)
    assert await trapper.ask(remote, timeout=HANG) == "linked"
    assert await remote.ask("the link frame went first", timeout=HANG)
    network.disconnect(a, b)
    exit_message = await probe.expect_message(Exit, within=HANG)
    assert exit_message.ref == remote and isinstance(exit_message.reason, NodeUnreachable)


async def test_an_ask_in_flight_when_the_link_is_cut_fails_at_once(pair: Any) -> None:
    network, a, b = pair
    remote = a.resolve(b.spawn(Echo).address)
    pending = asyncio.ensure_future(remote.ask("never", timeout=HANG))
    assert await remote.ask("sent after it", timeout=HANG) == "sent after it"
    network.disconnect(a, b)
    with pytest.raises(NodeUnreachable):
        await asyncio.wait_for(pending, HANG / 2)


async def test_a_peer_that_has_shut_down_fails_asks_at_once() -> None:
    network = BytesNetwork()
    async with ActorSystem("stays") as a:
        b = ActorSystem("goes")
        await b.start()
        network.join(a)
        network.join(b)
        remote = a.resolve(b.spawn(Echo).address)
        assert await remote.ask(1, timeout=HANG) == 1
        await b.shutdown()
        with pytest.raises(DeliveryError, match="unreachable"):
            await remote.ask(2, timeout=HANG)


async def test_wait_terminated_on_another_node_leaves_nothing_and_ends_at_shutdown() -> None:
    network = BytesNetwork()
    a, b = ActorSystem("waiter"), ActorSystem("target")
    await a.start()
    await b.start()
    network.join(a)
    network.join(b)
    remote = a.resolve(b.spawn(Echo).address)
    for _ in range(20):
        with pytest.raises(TimeoutError):
            await remote.wait_terminated(timeout=0.001)
    assert not a._temporaries
    waiting = asyncio.ensure_future(remote.wait_terminated())
    assert await remote.ask("sync", timeout=HANG) == "sync"
    await a.shutdown()
    with pytest.raises(ActorSystemStopped):
        await asyncio.wait_for(waiting, HANG)
    await b.shutdown()


async def test_a_late_reply_from_another_node_is_a_late_reply(pair: Any) -> None:
    _, a, b = pair
    dead = TestProbe(a)
    a.event_stream.subscribe(dead.ref, DeadLetter)

    class Slow(Actor[Any]):
        def __init__(self) -> None:
            self.waiting: list[ActorRef[Any]] = []

        def receive(self, message: Any) -> None:
            if message == "later":
                assert self.context.sender is not None
                self.waiting.append(self.context.sender)
            else:
                for sender in self.waiting:
                    sender.tell("too late")
                self.context.reply("answered")

    remote = a.resolve(b.spawn(Slow).address)
    with pytest.raises(Exception, match="no reply"):
        await remote.ask("later", timeout=0.05)
    assert await remote.ask("now", timeout=HANG) == "answered"
    letter = await dead.expect_message(DeadLetter, within=HANG)
    assert letter.reason == "reply to an expired or completed ask"
