"""Overload: a producer ten times faster than its consumer, with a bounded mailbox.

The consumer handles one message per event-loop iteration (its handler awaits
once); the producer sends ten per iteration. Memory stays flat (measured with
tracemalloc while 20,000 messages of 1 KiB go through a mailbox of 100), every
message is processed or counted as dropped, and with BLOCK the producer is
slowed to the consumer's pace and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest

from hewitt import Actor, ActorSystem, DeadLetter, Mailbox, MailboxFull, Overflow

MESSAGES = 20_000
PAYLOAD = 1024
CAPACITY = 100


class Monitor(Actor[Any]):
    """Counts processed messages (told by the consumer) and dead letters; resolves
    ``settled`` once processed + dropped reaches the target set by the test."""

    def __init__(self, settled: asyncio.Future[tuple[int, int]]) -> None:
        self.settled = settled
        self.processed = 0
        self.dropped = 0
        self.target: int | None = None

    def receive(self, message: Any) -> None:
        if isinstance(message, DeadLetter):
            self.dropped += 1
        elif message == "processed":
            self.processed += 1
        else:
            self.target = message
        settled = self.target is not None and self.processed + self.dropped == self.target
        if settled and not self.settled.done():
            self.settled.set_result((self.processed, self.dropped))


class SlowConsumer(Actor[Any]):
    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    async def receive(self, message: Any) -> None:
        await asyncio.sleep(0)  # one loop iteration per message: the slow consumer
        self.monitor.tell("processed")


async def produce(ref: Any, use_send: bool) -> tuple[int, int]:
    """Ten messages per loop iteration; returns (sent, refused)."""
    refused = 0
    for i in range(MESSAGES):
        payload = bytes(PAYLOAD)  # a fresh 1 KiB message each time
        if use_send:
            await ref.send(payload)
        else:
            try:
                ref.tell(payload)
            except MailboxFull:
                refused += 1
        if i % 10 == 9:
            await asyncio.sleep(0)  # the producer's pace: 10 per iteration
    return MESSAGES, refused


async def run(system: ActorSystem, overflow: Overflow, use_send: bool) -> dict[str, int]:
    settled: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
    monitor = system.spawn(Monitor, settled)
    system.event_stream.subscribe(monitor, DeadLetter)
    consumer = system.spawn(SlowConsumer, monitor, mailbox=Mailbox.bounded(CAPACITY, overflow))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    sent, refused = await produce(consumer, use_send)
    monitor.tell(sent - refused)  # everything admitted is processed or dropped
    processed, dropped = await asyncio.wait_for(settled, 30)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    stats = system.actor_statistics(consumer)
    assert stats is not None
    return {
        "sent": sent,
        "refused": refused,
        "processed": processed,
        "dropped": dropped,
        "peak_kib": peak // 1024,
        "high_water": stats.high_water_mark,
    }


@pytest.mark.parametrize("overflow", [Overflow.DROP_NEWEST, Overflow.DROP_OLDEST, Overflow.FAIL])
async def test_overload_with_a_dropping_policy(
    actor_system: ActorSystem, overflow: Overflow
) -> None:
    result = await run(actor_system, overflow, use_send=False)
    assert result["processed"] + result["dropped"] + result["refused"] == MESSAGES
    assert result["dropped"] + result["refused"] > MESSAGES // 2  # most did not fit
    assert result["high_water"] <= CAPACITY
    # 20,000 x 1 KiB went through; an unbounded mailbox would hold ~20 MiB.
    assert result["peak_kib"] < 2 * 1024, result


async def test_overload_with_block_slows_the_producer_and_drops_nothing(
    actor_system: ActorSystem,
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run(actor_system, Overflow.BLOCK, use_send=True)
    assert result["processed"] == MESSAGES
    assert result["dropped"] == result["refused"] == 0
    assert result["high_water"] <= CAPACITY
    assert result["peak_kib"] < 2 * 1024, result
    assert loop.time() - started > 0  # finished; the pace is checked below


async def test_block_paces_the_producer_to_the_consumer(actor_system: ActorSystem) -> None:
    """With BLOCK, when the producer has sent everything the consumer is never
    more than one mailbox behind: the producer went at the consumer's pace."""
    settled: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
    monitor = actor_system.spawn(Monitor, settled)
    consumer = actor_system.spawn(
        SlowConsumer, monitor, mailbox=Mailbox.bounded(CAPACITY, Overflow.BLOCK)
    )
    await produce(consumer, use_send=True)
    stats = actor_system.actor_statistics(consumer)
    assert stats is not None and stats.mailbox_depth <= CAPACITY
    monitor.tell(MESSAGES)
    assert await asyncio.wait_for(settled, 30) == (MESSAGES, 0)
