"""Threads, other loops and shutdown (docs/semantics.md §10, §6): nothing
hangs or is made up after shutdown, a flooding thread cannot hold shutdown,
blocking calls keep their timeouts in the calling thread, a blocking actor's
Context works from its pool thread, routers respect the routees' threads."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorRef,
    ActorSystem,
    ActorSystemStopped,
    AskTimeout,
    ReceiveTimeout,
    SystemConfig,
)
from hewitt.routing import Group, RoundRobin
from hewitt.testing import TestProbe

#: Bounds that catch hangs; the behaviour under test takes a fraction of them.
HANG = 30.0


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.reply(message)


class Never(Actor[Any]):
    def receive(self, message: Any) -> None:
        pass


def in_other_loop(coroutine_factory: Any) -> Any:
    """Run a coroutine on a fresh event loop in a fresh thread; return its outcome."""
    outcome: dict[str, Any] = {}

    def main() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine_factory())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(HANG)
    assert not thread.is_alive(), "the call in the other loop hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_after_shutdown_blocking_every_call_fails_fast() -> None:
    system = ActorSystem.start_in_thread("gone")
    ref = system.spawn(Echo)
    assert ref.ask_blocking("hi", timeout=HANG) == "hi"
    system.shutdown_blocking()
    started = time.monotonic()
    with pytest.raises(ActorSystemStopped, match="gone"):
        ref.ask_blocking("hi", timeout=HANG)
    with pytest.raises(ActorSystemStopped):
        ref.tell("hi")
    with pytest.raises(ActorSystemStopped):
        in_other_loop(lambda: ref.ask("hi", timeout=HANG))
    with pytest.raises(ActorSystemStopped):
        system.spawn(Echo)
    assert time.monotonic() - started < HANG / 2  # fast, not by timeout
    system.shutdown_blocking()  # a second call is harmless


async def test_after_shutdown_asks_and_tells_fail_with_a_clear_error() -> None:
    system = ActorSystem("closed")
    await system.start()
    ref = system.spawn(Echo)
    await system.shutdown()
    with pytest.raises(ActorSystemStopped, match="closed"):
        await ref.ask("x", timeout=HANG)
    with pytest.raises(ActorSystemStopped, match="closed"):
        ref.tell("x")


async def test_asks_pending_at_shutdown_fail_with_a_shutdown_error() -> None:
    system = ActorSystem("pending")
    await system.start()
    never = system.spawn(Never)
    pending = [asyncio.ensure_future(never.ask(i, timeout=HANG)) for i in range(3)]
    forever = asyncio.ensure_future(never.ask("forever", timeout=None))
    await system.spawn(Echo).ask("let them start", timeout=HANG)
    await system.shutdown()
    for task in [*pending, forever]:
        with pytest.raises(ActorSystemStopped):
            await task


async def test_a_second_shutdown_waits_for_the_first() -> None:
    gate = asyncio.Event()
    stopping = asyncio.Event()

    class SlowStop(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply(message)

        async def post_stop(self) -> None:
            stopping.set()
            await gate.wait()

    system = ActorSystem("twice")
    await system.start()
    await system.spawn(SlowStop).ask("ready", timeout=HANG)
    first = asyncio.ensure_future(system.shutdown())
    await stopping.wait()
    second = asyncio.ensure_future(system.shutdown())
    await asyncio.wait([second], timeout=0.05)
    assert not second.done() and not first.done()
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), HANG)


def test_shutdown_blocking_returns_in_time_while_another_thread_keeps_telling() -> None:
    system = ActorSystem.start_in_thread("flood", config=SystemConfig(shutdown_timeout=1))
    sink = system.spawn(Never)
    stop = threading.Event()
    told = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            try:
                sink.tell("spam")
            except ActorSystemStopped:
                return
            told.set()

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        assert told.wait(HANG)
        started = time.monotonic()
        system.shutdown_blocking(timeout=1)
        assert time.monotonic() - started < 1 + 3  # its timeout, plus the cancel grace
    finally:
        stop.set()
        flooder.join(HANG)
    assert not flooder.is_alive()


def test_ask_blocking_keeps_its_timeout_when_the_loop_is_wedged() -> None:
    release = threading.Event()

    class Wedge(Actor[Any]):
        def receive(self, message: Any) -> None:
            release.wait(HANG)  # blocks the system's loop thread (on purpose)

    with ActorSystem.start_in_thread("wedged") as system:
        wedge = system.spawn(Wedge)
        echo = system.spawn(Echo)
        wedge.tell("block")
        started = time.monotonic()
        with pytest.raises(AskTimeout, match=r"message str"):
            echo.ask_blocking("hello", timeout=0.2)
        assert time.monotonic() - started < HANG / 2
        release.set()
        assert echo.ask_blocking("after", timeout=HANG) == "after"


async def test_wait_terminated_with_a_timeout_leaves_nothing_behind(
    actor_system: ActorSystem,
) -> None:
    ref = actor_system.spawn(Echo)
    for _ in range(50):
        with pytest.raises(TimeoutError):
            await ref.wait_terminated(timeout=0.001)
    await ref.ask("sync", timeout=HANG)  # the unwatches have been applied
    stats = actor_system.actor_statistics(ref)
    assert stats is not None and stats.watchers == 0
    ref.stop()
    await ref.wait_terminated(timeout=HANG)


def test_wait_terminated_from_another_loop_and_blocking_variants() -> None:
    with ActorSystem.start_in_thread("waits") as system:
        ref = system.spawn(Echo)
        with pytest.raises(TimeoutError):
            in_other_loop(lambda: ref.wait_terminated(timeout=0.05))
        with pytest.raises(TimeoutError):
            ref.wait_terminated_blocking(timeout=0.05)
        ref.stop()
        in_other_loop(lambda: ref.wait_terminated(timeout=HANG))
        ref.wait_terminated_blocking(timeout=HANG)
        others = [system.spawn(Echo) for _ in range(5)]
        for other in others:
            other.stop()
        in_other_loop(lambda: system.wait_all_terminated(others, timeout=HANG))
    system.wait_terminated_blocking(timeout=HANG)


class PoolThreadUser(Actor[Any]):
    """A blocking actor that uses its Context from its pool thread."""

    blocking = True

    def __init__(self, probe: ActorRef[Any]) -> None:
        self.probe = probe

    def receive(self, message: Any) -> None:
        on_pool = threading.current_thread().name.startswith("hewitt-")
        match message:
            case "timers":
                self.context.timers.start_single_timer("t", "timer fired", 0.001)
                self.probe.tell(("on pool", on_pool))
            case "timer fired":
                self.probe.tell("timer fired")
            case "idle":
                self.context.set_receive_timeout(0.01)
            case ReceiveTimeout():
                self.context.set_receive_timeout(None)
                self.probe.tell("receive timeout")
            case "stash me":
                self.context.stash()
            case "unstash":
                self.context.unstash_all()
            case "spawn":
                child = self.context.spawn(Echo, name="kid")
                self.probe.tell(child)


async def test_a_blocking_actor_context_works_from_its_pool_thread(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    ref = actor_system.spawn(PoolThreadUser, probe.ref)
    ref.tell("timers")
    assert await probe.expect_message(tuple, within=HANG) == ("on pool", True)
    assert await probe.expect_message(str, within=HANG) == "timer fired"
    ref.tell("idle")
    assert await probe.expect_message(str, within=HANG) == "receive timeout"
    ref.tell("stash me")
    ref.tell("unstash")  # the stashed message comes back: it stashes itself again
    ref.tell("spawn")
    child = await probe.expect_message(ActorRef, within=HANG)
    assert child.path.endswith("/kid")
    assert await child.ask("hi", timeout=HANG) == "hi"


def test_a_router_delivers_to_routees_of_another_system_on_their_own_thread() -> None:
    class WhereAmI(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply(threading.get_ident())

    with (
        ActorSystem.start_in_thread("routers") as home,
        ActorSystem.start_in_thread("routees") as away,
    ):
        routees = [away.spawn(WhereAmI) for _ in range(3)]
        away_thread = routees[0].ask_blocking("where", timeout=HANG)
        router = home.spawn(Group[Any], RoundRobin(), routees)
        for _ in range(6):  # sender-side routing: the router is idle on home's thread
            assert router.ask_blocking("where", timeout=HANG) == away_thread

        class Forwarder(Actor[Any]):
            """Tells through the router from home's own loop thread."""

            def receive(self, message: Any) -> None:
                router.tell(message, self.context.sender)

        forwarder = home.spawn(Forwarder)
        for _ in range(6):
            assert forwarder.ask_blocking("where", timeout=HANG) == away_thread
