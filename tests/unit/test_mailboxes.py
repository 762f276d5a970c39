"""Bounded and priority mailboxes, overflow policies and backpressure
(docs/flow-control.md)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorRef,
    ActorSystem,
    DeadLetter,
    Mailbox,
    MailboxFull,
    Overflow,
    SystemConfig,
    WrongThread,
)
from hewitt.testing import TestProbe


class Gated(Actor[Any]):
    """Holds on its first message until the gate opens, then records the rest."""

    def __init__(self, gate: asyncio.Event, log: ActorRef[Any]) -> None:
        self.gate = gate
        self.log = log

    async def receive(self, message: Any) -> None:
        if message == "hold":
            self.log.tell("holding")
            await self.gate.wait()
        elif message == "seen":
            self.context.reply("done")
        else:
            self.log.tell(message)


async def held(
    system: ActorSystem, mailbox: Mailbox
) -> tuple[ActorRef[Any], asyncio.Event, TestProbe, TestProbe]:
    gate = asyncio.Event()
    probe = TestProbe(system)
    letters = TestProbe(system)
    system.event_stream.subscribe(letters.ref, DeadLetter)
    ref = system.spawn(Gated, gate, probe.ref, mailbox=mailbox, name="gated")
    ref.tell("hold")
    await probe.expect_message("holding")
    return ref, gate, probe, letters


async def test_drop_newest(actor_system: ActorSystem) -> None:
    ref, gate, probe, letters = await held(actor_system, Mailbox.bounded(3, Overflow.DROP_NEWEST))
    for i in range(5):
        ref.tell(i)
    dropped = await letters.receive_messages(2)
    assert [d.message for d in dropped] == [3, 4]
    assert all("capacity 3" in d.reason and "newest" in d.reason for d in dropped)
    gate.set()
    assert await probe.receive_messages(3) == [0, 1, 2]
    stats = actor_system.actor_statistics(ref)
    assert stats is not None and stats.capacity == 3 and stats.dropped == 2


async def test_drop_oldest(actor_system: ActorSystem) -> None:
    ref, gate, probe, letters = await held(actor_system, Mailbox.bounded(3, Overflow.DROP_OLDEST))
    for i in range(5):
        ref.tell(i)
    assert [d.message for d in await letters.receive_messages(2)] == [0, 1]
    gate.set()
    assert await probe.receive_messages(3) == [2, 3, 4]


async def test_fail_raises_and_names_actor_and_capacity(actor_system: ActorSystem) -> None:
    ref, gate, probe, letters = await held(actor_system, Mailbox.bounded(2, Overflow.FAIL))
    ref.tell(0)
    ref.tell(1)
    with pytest.raises(MailboxFull) as info:
        ref.tell(2)
    assert "/user/gated" in str(info.value) and "capacity 2" in str(info.value)
    assert "int" in str(info.value)
    gate.set()
    assert await probe.receive_messages(2) == [0, 1]
    await letters.expect_no_message(within=0.02)  # refused, not dropped


async def test_block_send_waits_for_room_and_loses_nothing(actor_system: ActorSystem) -> None:
    ref, gate, probe, _ = await held(actor_system, Mailbox.bounded(2, Overflow.BLOCK))
    await ref.send(0)
    await ref.send(1)
    with pytest.raises(MailboxFull):
        ref.tell(2)  # tell never blocks: under BLOCK a full mailbox refuses it
    blocked = asyncio.ensure_future(ref.send(2))
    await probe.expect_no_message(within=0.02)
    assert not blocked.done()
    gate.set()
    await blocked
    assert await probe.receive_messages(3) == [0, 1, 2]


async def test_block_send_times_out(actor_system: ActorSystem) -> None:
    ref, gate, _, _ = await held(actor_system, Mailbox.bounded(1, Overflow.BLOCK))
    await ref.send(0)
    with pytest.raises(MailboxFull, match="capacity 1"):
        await ref.send(1, timeout=0.02)
    gate.set()


def test_send_blocking_from_a_thread() -> None:
    with ActorSystem.start_in_thread("blocking") as system:
        gate = threading.Event()

        all_handled = threading.Event()

        class Slow(Actor[Any]):
            blocking = True  # waits on a threading.Event in the pool

            def __init__(self) -> None:
                self.n = 0

            def receive(self, message: Any) -> None:
                if message == "hold":
                    gate.wait(5)
                else:
                    self.n += 1
                    if self.n == 20:
                        all_handled.set()

        ref = system.spawn(Slow, mailbox=Mailbox.bounded(5, Overflow.BLOCK))
        ref.send_blocking("hold")
        done = threading.Event()

        def produce() -> None:
            for i in range(20):
                ref.send_blocking(i)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        assert not done.wait(0.05)  # the producer is held back by the full mailbox
        gate.set()
        producer.join(5)
        assert done.is_set()
        # (An ask now could find the mailbox still full: BLOCK refuses a tell.)
        assert all_handled.wait(5)


async def test_send_blocking_on_the_loop_thread_is_refused(actor_system: ActorSystem) -> None:
    ref = actor_system.spawn(Gated, asyncio.Event(), TestProbe(actor_system).ref)
    with pytest.raises(WrongThread):
        ref.send_blocking(1)


async def test_priority_mailbox_orders_by_key_and_keeps_arrival_order(
    actor_system: ActorSystem,
) -> None:
    ref, gate, probe, _ = await held(
        actor_system, Mailbox.by_priority(lambda m: 0 if str(m).startswith("urgent") else 1)
    )
    for message in ["a", "urgent-1", "b", "urgent-2", "c"]:
        ref.tell(message)
    gate.set()
    assert await probe.receive_messages(5) == ["urgent-1", "urgent-2", "a", "b", "c"]


async def test_bounded_priority_mailbox_drops_newest(actor_system: ActorSystem) -> None:
    ref, gate, probe, letters = await held(
        actor_system, Mailbox.by_priority(lambda m: m, capacity=2, overflow=Overflow.DROP_NEWEST)
    )
    for value in (3, 1, 2):
        ref.tell(value)
    assert (await letters.expect_message(DeadLetter)).message == 2
    gate.set()
    assert await probe.receive_messages(2) == [1, 3]


@pytest.mark.hewitt_config(default_mailbox=Mailbox.bounded(1, Overflow.DROP_NEWEST))
async def test_system_wide_default_mailbox(actor_system: ActorSystem) -> None:
    ref, gate, probe, letters = await held(actor_system, actor_system.config.default_mailbox)
    ref.tell(1)
    ref.tell(2)
    assert (await letters.expect_message(DeadLetter)).message == 2
    gate.set()
    assert await probe.expect_message(1)


async def test_a_stopping_actor_releases_blocked_senders(actor_system: ActorSystem) -> None:
    ref, gate, _, letters = await held(actor_system, Mailbox.bounded(1, Overflow.BLOCK))
    await ref.send(0)
    blocked = asyncio.ensure_future(ref.send(1))
    await asyncio.sleep(0)  # let the sender block (the behaviour under test)
    ref.stop()
    gate.set()
    await asyncio.wait_for(blocked, 1)
    messages = {d.message for d in await letters.receive_messages(2)}
    assert messages == {0, 1}  # the queued one and the released sender's one


def test_mailbox_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Mailbox.bounded(0)
    with pytest.raises(ValueError, match="overflow"):
        Mailbox(capacity=3, overflow="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default_mailbox"):
        SystemConfig(default_mailbox="big")  # type: ignore[arg-type]


async def test_runtime_messages_bypass_a_full_bounded_mailbox(actor_system: ActorSystem) -> None:
    """Terminated (and timer ticks, ReceiveTimeout, Exit) are never refused by a
    full FAIL/BLOCK mailbox, and a watched actor's stop is never disturbed."""
    from hewitt import Terminated

    target = actor_system.spawn(Gated, asyncio.Event(), TestProbe(actor_system).ref)
    ref, gate, probe, _ = await held(actor_system, Mailbox.bounded(1, Overflow.FAIL))
    ref.tell("filler")  # the mailbox is full now
    probe.watch(target)

    class Watcher(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        def receive(self, message: Any) -> None:
            if message == "watch":
                self.context.watch(target)
            self.log.tell(message)

    watcher = actor_system.spawn(
        Watcher, probe.ref, mailbox=Mailbox.bounded(1, Overflow.FAIL), name="watcher"
    )
    watcher.tell("watch")
    assert await probe.expect_message("watch")
    target.stop()  # its Terminated must reach the watcher and the probe
    await target.wait_terminated(timeout=1)
    assert isinstance(await probe.expect_message(Terminated), Terminated)
    assert isinstance(await probe.expect_message(Terminated), Terminated)
    gate.set()


async def test_timer_tick_into_a_full_mailbox_is_not_lost() -> None:
    from hewitt.testing import VirtualClock

    clock = VirtualClock()

    class Ticked(Actor[Any]):
        def __init__(self, log: ActorRef[Any], gate: asyncio.Event) -> None:
            self.log = log
            self.gate = gate
            self.context.timers.start_single_timer("t", "tick", 1.0)

        async def receive(self, message: Any) -> None:
            if message == "hold":
                self.log.tell("holding")
                await self.gate.wait()
            else:
                self.log.tell(message)

    async with ActorSystem("t", config=SystemConfig(clock=clock)) as system:
        probe = TestProbe(system)
        gate = asyncio.Event()
        ref = system.spawn(Ticked, probe.ref, gate, mailbox=Mailbox.bounded(1, Overflow.BLOCK))
        ref.tell("hold")
        await probe.expect_message("holding")
        ref.tell("queued")  # full now
        clock.advance(1.0)  # the tick must not raise or vanish
        gate.set()
        assert await probe.receive_messages(2) == ["queued", "tick"]
