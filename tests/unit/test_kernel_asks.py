"""Asks, timers and timeouts (docs/semantics.md §4, docs/flow-control.md):
timeout=None waits forever everywhere, the default is a named setting,
answered asks are freed at once, queued ticks die with a cancel or a restart,
send(timeout=) on a full BLOCK mailbox, implicit senders, per-actor contexts."""

from __future__ import annotations

import asyncio
import contextvars
import tracemalloc
from typing import Any

import pytest

import hewitt
from hewitt import (
    DEFAULT_TIMEOUT,
    Actor,
    ActorRef,
    ActorSystem,
    AskTimeout,
    Mailbox,
    MailboxFull,
    Overflow,
    SystemConfig,
)
from hewitt.testing import TestProbe, VirtualClock


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.reply(message)


class Silent(Actor[Any]):
    def receive(self, message: Any) -> None:
        pass


class Held(Actor[Any]):
    """Answers each request only when told ("release", n): asks stay pending."""

    def __init__(self) -> None:
        self.waiting: list[ActorRef[Any]] = []

    def receive(self, message: Any) -> None:
        match message:
            case ("release", count):
                for sender in self.waiting[:count]:
                    sender.tell("released")
                del self.waiting[:count]
            case _:
                sender = self.context.sender
                assert sender is not None
                if message == "now":
                    sender.tell("answered")
                else:
                    self.waiting.append(sender)


async def test_timeout_none_waits_forever_and_the_default_is_the_configured_setting() -> None:
    clock = VirtualClock()
    # No direct hand-off: the "now" ask goes through the loop, after the three
    # asks started before it.
    config = SystemConfig(clock=clock, ask_timeout=5.0, direct_asks=0)
    async with ActorSystem("timeouts", config=config) as system:
        held = system.spawn(Held)
        forever = asyncio.ensure_future(held.ask("forever", timeout=None))
        defaulted = asyncio.ensure_future(held.ask("default", timeout=DEFAULT_TIMEOUT))
        plain = asyncio.ensure_future(held.ask("plain"))
        assert await held.ask("now", timeout=None) == "answered"  # all three are queued
        clock.advance(5.1)
        for task in (defaulted, plain):
            with pytest.raises(AskTimeout, match="within 5 s"):
                await task
        clock.advance(10_000)
        assert not forever.done()
        held.tell(("release", 1))
        assert await forever == "released"


async def test_an_answered_ask_is_freed_at_once_behind_a_slow_one(
    actor_system: ActorSystem,
) -> None:
    held = actor_system.spawn(Held)
    echo = actor_system.spawn(Echo)
    slow = asyncio.ensure_future(held.ask("slow", timeout=60))
    assert await held.ask("now", timeout=5) == "answered"
    payload = b"x" * 1000
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(20_000):
            assert await echo.ask(payload, timeout=60) is payload
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert actor_system.statistics().pending_asks == 1  # only the slow one
    assert after - before < 2_000_000, f"answered asks retain {after - before} bytes"
    held.tell(("release", 1))
    assert await slow == "released"


class Busy(Actor[Any]):
    """Handles a periodic timer while an async handler keeps it busy."""

    def __init__(self, probe: ActorRef[Any], gate: asyncio.Event) -> None:
        self.probe = probe
        self.gate = gate

    def pre_start(self) -> None:
        self.context.timers.start_periodic_timer("tick", "tick", 1.0)

    def receive(self, message: Any) -> hewitt.HandlerResult:
        match message:
            case "hold":
                return self._hold()
            case "hold, then cancel":
                return self._hold(cancel=True)
            case "cancel":
                self.context.timers.cancel("tick")
                self.context.reply("cancelled")
            case "boom":
                raise RuntimeError("restart me")
            case "tick":
                self.probe.tell("tick")
            case "ping":
                self.context.reply("pong")
        return None

    async def _hold(self, cancel: bool = False) -> None:
        self.probe.tell("holding")
        await self.gate.wait()
        if cancel:
            self.context.timers.cancel("tick")  # while ticks are queued


async def test_cancel_withdraws_every_queued_tick_of_a_periodic_timer() -> None:
    clock = VirtualClock()
    async with ActorSystem("ticks", config=SystemConfig(clock=clock)) as system:
        probe, gate = TestProbe(system), asyncio.Event()
        busy = system.spawn(Busy, probe.ref, gate)
        busy.tell("hold, then cancel")
        await probe.expect_message("holding")
        for _ in range(5):
            clock.advance(1.0)  # five ticks queue up behind the held handler
        reply = asyncio.ensure_future(busy.ask("ping", timeout=None))
        gate.set()  # the handler cancels the timer, with the five ticks queued
        assert await reply == "pong"
        await probe.expect_no_message(within=0.05)  # none of the five was handled


async def test_ticks_queued_before_a_restart_are_never_handled_after_it() -> None:
    clock = VirtualClock()
    async with ActorSystem("ticks-restart", config=SystemConfig(clock=clock)) as system:
        probe, gate = TestProbe(system), asyncio.Event()
        failures: list[int] = []

        class FailsOnceWhenReleased(Busy):
            async def _hold(self, cancel: bool = False) -> None:
                self.probe.tell("holding")
                await self.gate.wait()
                if not failures:
                    failures.append(1)
                    raise RuntimeError("restart with ticks queued")

        busy = system.spawn(FailsOnceWhenReleased, probe.ref, gate)
        busy.tell("hold")
        await probe.expect_message("holding")
        for _ in range(4):
            clock.advance(1.0)  # four ticks of the old instance's timer queue up
        gate.set()  # the handler fails: a restart, with the four ticks queued
        assert await probe.expect_message(str, within=5) == "holding"  # "hold", retried
        assert await busy.ask("ping", timeout=None) == "pong"
        await probe.expect_no_message(within=0.05)  # none of the old ticks
        clock.advance(1.0)  # the new instance's own timer ticks
        assert await probe.expect_message("tick", within=5) == "tick"


async def test_send_with_a_timeout_waits_that_long_on_the_system_clock() -> None:
    clock = VirtualClock()
    # No direct hand-off: each echo ask below takes loop turns, so the send
    # task started before it has run up to its wait.
    config = SystemConfig(clock=clock, direct_asks=0)
    async with ActorSystem("block", config=config) as system:
        gate = asyncio.Event()
        probe = TestProbe(system)
        echo = system.spawn(Echo)

        class Stuck(Actor[Any]):
            async def receive(self, message: Any) -> None:
                probe.ref.tell("handling")
                await gate.wait()

        ref = system.spawn(Stuck, mailbox=Mailbox.bounded(1, Overflow.BLOCK))
        ref.tell(0)
        await probe.expect_message("handling")  # the actor waits on the gate
        ref.tell(1)  # queued: the mailbox is full
        sending = asyncio.ensure_future(ref.send(2, timeout=30))
        await echo.ask("turn", timeout=None)
        clock.advance(29.0)
        await echo.ask("turn", timeout=None)
        assert not sending.done()  # still waiting at 29 s
        clock.advance(2.0)
        with pytest.raises(MailboxFull):
            await sending
        gate.set()


async def test_a_tell_inside_a_handler_carries_the_actor_as_sender(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)

    class Teller(Actor[Any]):
        async def receive(self, message: Any) -> None:
            probe.ref.tell("before await")
            await asyncio.sleep(0)
            probe.ref.tell("after await")

    teller = actor_system.spawn(Teller)
    teller.tell("go")
    await probe.expect_message("before await")
    assert probe.last_sender == teller
    await probe.expect_message("after await")
    assert probe.last_sender == teller
    probe.ref.tell("from outside")
    await probe.expect_message("from outside")
    assert probe.last_sender is None


TRACE: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="unset")


class Tracer(Actor[Any]):
    def receive(self, message: Any) -> None:
        if message == "set":
            TRACE.set(self.context.self.name)
        self.context.reply(TRACE.get())


async def test_each_actor_runs_its_handlers_in_its_own_context(actor_system: ActorSystem) -> None:
    a = actor_system.spawn(Tracer, name="a")
    b = actor_system.spawn(Tracer, name="b")
    TRACE.set("asker")
    # The direct hand-off runs a's turn on this stack, but not in this context:
    assert await a.ask("get", timeout=5) == "unset"
    assert await a.ask("set", timeout=5) == "a"
    assert await a.ask("get", timeout=5) == "a"  # its own context persists
    assert await b.ask("get", timeout=5) == "unset"  # and is not b's
    assert TRACE.get() == "asker"  # nor the asker's


@pytest.mark.hewitt_config(direct_asks=0)
async def test_dispatcher_turns_do_not_run_in_the_waker_context(actor_system: ActorSystem) -> None:
    a = actor_system.spawn(Tracer)
    TRACE.set("waker")
    assert await a.ask("get", timeout=5) == "unset"


async def test_any_actor_can_spawn_a_top_level_actor(actor_system: ActorSystem) -> None:
    class Spawner(Actor[Any]):
        def receive(self, message: Any) -> None:
            ref = self.context.system.spawn(Echo, name=message)
            self.context.reply(ref)

    spawner = actor_system.spawn(Spawner)
    top = await spawner.ask("top", timeout=5)
    assert top.path == "/user/top"
    assert await top.ask("hi", timeout=5) == "hi"


async def test_hooks_and_blocking_handlers_tell_as_their_actor(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)

    class Hooks(Actor[Any]):
        def pre_start(self) -> None:
            probe.ref.tell("pre_start")

        def receive(self, message: Any) -> None:
            probe.ref.tell("receive")

        def post_stop(self) -> None:
            probe.ref.tell("post_stop")

    class Blocking(Actor[Any]):
        blocking = True

        def receive(self, message: Any) -> None:
            probe.ref.tell("on the pool")

    hooks = actor_system.spawn(Hooks)
    hooks.tell("go")
    for expected in ("pre_start", "receive"):
        await probe.expect_message(expected)
        assert probe.last_sender == hooks
    hooks.stop()
    await probe.expect_message("post_stop")
    assert probe.last_sender == hooks
    blocking = actor_system.spawn(Blocking)
    blocking.tell("go")
    await probe.expect_message("on the pool")
    assert probe.last_sender == blocking
