"""Timers, receive timeout and virtual time (docs/flow-control.md, "Timers")."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorRef,
    ActorSystem,
    AskTimeout,
    Backoff,
    DeadLetter,
    ReceiveTimeout,
    SupervisorStrategy,
    SystemConfig,
)
from hewitt.testing import TestProbe, VirtualClock


@pytest.fixture
def virtual() -> VirtualClock:
    return VirtualClock()


class Ticker(Actor[Any]):
    """Control messages are tuples; anything else is reported to the log."""

    def __init__(self, log: ActorRef[Any]) -> None:
        self.log = log

    def receive(self, message: Any) -> None:
        match message:
            case ("single", key, msg, delay):
                self.context.timers.start_single_timer(key, msg, delay)
            case ("periodic", key, msg, interval, fixed_rate):
                self.context.timers.start_periodic_timer(key, msg, interval, fixed_rate=fixed_rate)
            case ("cancel", key):
                self.context.timers.cancel(key)
            case ("active", key):
                self.context.reply(self.context.timers.is_timer_active(key))
            case ("receive_timeout", seconds):
                self.context.set_receive_timeout(seconds)
            case "crash":
                raise RuntimeError("crash")
            case _:
                self.log.tell(message)
        if isinstance(message, tuple):
            self.context.reply("ok")


async def ticker(system: ActorSystem) -> tuple[ActorRef[Any], TestProbe]:
    probe = TestProbe(system)
    return system.spawn(Ticker, probe.ref), probe


def make_system_config(virtual: VirtualClock, **settings: Any) -> SystemConfig:
    return SystemConfig(clock=virtual, **settings)


async def test_single_timer_fires_once_after_its_delay(virtual: VirtualClock) -> None:
    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        ref, probe = await ticker(system)
        assert await ref.ask(("single", "k", "tick", 1.0)) == "ok"
        virtual.advance(0.9)
        await probe.expect_no_message(within=0.01)
        virtual.advance(0.2)
        assert await probe.expect_message("tick")
        virtual.advance(10)
        await probe.expect_no_message(within=0.01)
        assert await ref.ask(("active", "k")) is False


async def test_same_key_replaces_the_timer(virtual: VirtualClock) -> None:
    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        ref, probe = await ticker(system)
        await ref.ask(("single", "k", "first", 1.0))
        await ref.ask(("single", "k", "second", 2.0))
        virtual.advance(1.5)
        await probe.expect_no_message(within=0.01)
        virtual.advance(1.0)
        assert await probe.expect_message("second")


@pytest.mark.parametrize("fixed_rate", [False, True])
async def test_periodic_timer(virtual: VirtualClock, fixed_rate: bool) -> None:
    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        ref, probe = await ticker(system)
        await ref.ask(("periodic", "p", "tick", 0.5, fixed_rate))
        virtual.advance(2.2)
        assert await probe.receive_messages(4) == ["tick"] * 4
        await ref.ask(("cancel", "p"))
        virtual.advance(5)
        await probe.expect_no_message(within=0.01)


class LateClock(VirtualClock):
    """Runs a due callback at the current time if it is late (like a busy loop)."""

    def skip(self, seconds: float) -> None:
        self._now += seconds  # time passes without the callbacks running


@pytest.mark.parametrize(("fixed_rate", "ticks_by_3s"), [(True, 3), (False, 2)])
async def test_fixed_rate_catches_up_and_fixed_delay_does_not(
    fixed_rate: bool, ticks_by_3s: int
) -> None:
    """Ticks every 1 s; the 2nd tick fires late, at 2.5 s. Fixed rate keeps to the
    schedule (3rd tick at 3.0 s); fixed delay shifts (3rd tick at 3.5 s)."""
    clock = LateClock()
    async with ActorSystem("t", config=SystemConfig(clock=clock)) as system:
        ref, probe = await ticker(system)
        await ref.ask(("periodic", "p", "tick", 1.0, fixed_rate))
        clock.advance(1.0)  # tick 1 at 1.0
        clock.skip(1.5)  # now 2.5: tick 2 (due 2.0) has not run yet
        clock.advance(0.0)  # ... and runs now, late
        clock.advance(0.5)  # 3.0
        assert await probe.receive_messages(ticks_by_3s) == ["tick"] * ticks_by_3s
        await probe.expect_no_message(within=0.01)


async def test_cancel_withdraws_a_queued_tick(virtual: VirtualClock) -> None:
    gate = asyncio.Event()

    class Busy(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        async def receive(self, message: Any) -> None:
            if message == "start":
                self.context.timers.start_single_timer("t", "tick", 1.0)
                self.context.reply("ok")
            elif message == "hold":
                self.log.tell("holding")
                await gate.wait()
                self.context.timers.cancel("t")  # the tick is queued behind us
            else:
                self.log.tell(message)

    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        probe = TestProbe(system)
        ref = system.spawn(Busy, probe.ref)
        await ref.ask("start")
        ref.tell("hold")
        await probe.expect_message("holding")
        virtual.advance(1.0)  # the tick is queued now
        ref.tell("after")
        gate.set()
        assert await probe.expect_message("after")  # and never "tick"


async def test_timers_die_with_the_actor(virtual: VirtualClock) -> None:
    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        ref, _probe = await ticker(system)
        letters = TestProbe(system)
        system.event_stream.subscribe(letters.ref, DeadLetter)
        await ref.ask(("periodic", "p", "tick", 1.0, False))
        ref.stop()
        await ref.wait_terminated(timeout=1)
        virtual.advance(5)
        await letters.expect_no_message(within=0.01)  # nothing fired at the dead actor
        assert virtual.pending == 0


async def test_timers_die_with_a_restart(
    virtual: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="hewitt")
    strategy = SupervisorStrategy(poison_threshold=1)
    async with ActorSystem(
        "t", config=make_system_config(virtual, guardian_strategy=strategy)
    ) as system:
        ref, probe = await ticker(system)
        await ref.ask(("periodic", "p", "tick", 1.0, False))
        ref.tell("crash")
        assert await ref.ask(("active", "p")) is False
        virtual.advance(5)
        await probe.expect_no_message(within=0.01)


async def test_receive_timeout_fires_after_an_idle_period(virtual: VirtualClock) -> None:
    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        ref, probe = await ticker(system)
        await ref.ask(("receive_timeout", 1.0))
        virtual.advance(0.8)
        ref.tell("activity")  # resets the idle period
        assert await probe.expect_message("activity")
        virtual.advance(0.8)
        await probe.expect_no_message(within=0.01)
        virtual.advance(0.3)
        await probe.expect_message(ReceiveTimeout)
        virtual.advance(1.05)  # and again after a further idle period
        await probe.expect_message(ReceiveTimeout)
        await ref.ask(("receive_timeout", None))
        virtual.advance(5)
        await probe.expect_no_message(within=0.01)


async def test_ask_timeout_on_virtual_time(virtual: VirtualClock) -> None:
    class Silent(Actor[Any]):
        def receive(self, message: Any) -> None:
            pass

    async with ActorSystem("t", config=make_system_config(virtual)) as system:
        ask = asyncio.ensure_future(system.spawn(Silent).ask("hello", timeout=30))
        await asyncio.sleep(0)  # let the ask start (the behaviour under test)
        assert not ask.done()
        virtual.advance(30)
        with pytest.raises(AskTimeout):
            await ask


async def test_backoff_on_virtual_time(
    virtual: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="hewitt")
    strategy = SupervisorStrategy(
        poison_threshold=1, backoff=Backoff(min_delay=10, max_delay=100, jitter=0)
    )
    async with ActorSystem(
        "t", config=make_system_config(virtual, guardian_strategy=strategy)
    ) as system:
        ref, probe = await ticker(system)
        ref.tell("crash")
        ref.tell("after restart")
        await probe.expect_no_message(within=0.02)  # suspended during the backoff
        virtual.advance(9.9)
        await probe.expect_no_message(within=0.02)
        virtual.advance(0.2)
        assert await probe.expect_message("after restart")


def test_timer_validation() -> None:
    with pytest.raises(ValueError, match="backwards"):
        VirtualClock().advance(-1)
