"""The flow-control examples of examples/ run as tests: their main(), the same
actors on virtual time (exact timer behaviour), and their script."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

import hewitt
from hewitt.testing import VirtualClock
from tests.integration.examples_loader import EXAMPLES, load

EXAMPLE_NAMES = ["hot_counter"]


hot = load("hot_counter")


async def test_hot_counter_loses_nothing_and_writes_in_batches() -> None:
    report = await hot.main()

    # Nothing lost: the counter's own view right after the burst, and the store.
    assert report.count == report.burst
    assert report.after_burst.count == report.burst
    assert report.totals.total == report.increments == report.burst + report.late
    # Every write is accounted for, and there are far fewer writes than increments.
    final = report.late_flushed
    assert report.totals.writes == final.by_size + final.by_timer + final.by_drain
    assert report.totals.writes * 100 < report.increments
    # Size flushes write at least a batch, so fewer of them than burst / batch size.
    assert 0 < report.after_burst.by_size <= report.burst // hot.BATCH_SIZE

    # The burst left nothing batched once the timer had run; the late trickle,
    # smaller than a batch, was written by the timer and by nothing else.
    assert report.settled.pending == 0 and report.settled.flushed == report.burst
    assert final.pending == 0 and final.flushed == report.increments
    assert final.by_timer > report.settled.by_timer
    assert final.by_size == report.settled.by_size
    assert final.by_drain == 0  # nothing was left for Drain to write

    # The bounded store mailbox never held more than its capacity.
    assert report.store_capacity == hot.STORE_CAPACITY
    assert report.store_high_water <= hot.STORE_CAPACITY


async def spawn_pair(
    system: hewitt.ActorSystem,
    *,
    batch_size: int,
    interval: float,
    store_capacity: int = 4,
    store: Any = None,
) -> tuple[hewitt.ActorRef[Any], hewitt.ActorRef[Any]]:
    """A store (bounded BLOCK mailbox) and a HotCounter writing to it."""
    store_ref: hewitt.ActorRef[Any] = system.spawn(
        store or hot.CounterStore,
        mailbox=hewitt.Mailbox.bounded(store_capacity, hewitt.Overflow.BLOCK),
    )
    counter = system.spawn(hot.HotCounter, store_ref, batch_size, interval)
    return counter, store_ref


async def flushed_state(
    counter: hewitt.ActorRef[Any], store: hewitt.ActorRef[Any]
) -> tuple[Any, Any]:
    """The counter's stats, then the store's totals. The counter handles what its
    timer queued before this Stats, and any Write it sent is queued in the store
    before the GetTotals: both are FIFO."""
    stats = await counter.ask(hot.Stats(), timeout=2.0)
    totals = await store.ask(hot.GetTotals(), timeout=2.0)
    return stats, totals


async def test_hot_counter_flush_timing_on_virtual_time() -> None:
    vc = VirtualClock()
    async with hewitt.ActorSystem("hot", config=hewitt.SystemConfig(clock=vc)) as system:
        counter, store = await spawn_pair(system, batch_size=1000, interval=1.0)
        for _ in range(5):
            counter.tell(hot.TICK)
        assert await counter.ask(hot.Get(), timeout=2.0) == 5  # exact, though unwritten

        vc.advance(0.9)  # t = 0.9: the timer is not due
        stats, totals = await flushed_state(counter, store)
        assert (stats.pending, stats.by_timer) == (5, 0)
        assert totals == hot.StoreTotals(total=0, writes=0)

        vc.advance(0.2)  # t = 1.1: the tick at 1.0 wrote the batch, once
        stats, totals = await flushed_state(counter, store)
        assert (stats.flushed, stats.pending, stats.by_timer, stats.by_size) == (5, 0, 1, 0)
        assert totals == hot.StoreTotals(total=5, writes=1)

        vc.advance(1.0)  # t = 2.1: the tick at 2.0 found nothing batched: no write
        stats, totals = await flushed_state(counter, store)
        assert stats.by_timer == 1
        assert totals == hot.StoreTotals(total=5, writes=1)

        for _ in range(3):
            counter.tell(hot.TICK)
        vc.advance(0.8)  # t = 2.9
        assert (await flushed_state(counter, store))[1].writes == 1
        vc.advance(0.2)  # t = 3.1: the tick at 3.0 wrote the 3
        stats, totals = await flushed_state(counter, store)
        assert (stats.by_timer, stats.pending) == (2, 0)
        assert totals == hot.StoreTotals(total=8, writes=2)


async def test_hot_counter_flushes_by_size_without_time_passing() -> None:
    vc = VirtualClock()
    async with hewitt.ActorSystem("hot", config=hewitt.SystemConfig(clock=vc)) as system:
        counter, store = await spawn_pair(system, batch_size=10, interval=1.0)
        for _ in range(25):
            counter.tell(hot.TICK)
        stats, totals = await flushed_state(counter, store)  # the clock never moved
        assert (stats.by_size, stats.by_timer, stats.pending, stats.largest) == (2, 0, 5, 10)
        assert totals == hot.StoreTotals(total=20, writes=2)

        vc.advance(1.0)  # the timer writes the remaining 5
        stats, totals = await flushed_state(counter, store)
        assert (stats.by_size, stats.by_timer, stats.pending) == (2, 1, 0)
        assert totals == hot.StoreTotals(total=25, writes=3)


async def test_hot_counter_keeps_batching_while_the_store_is_full() -> None:
    """A store whose writes wait for a gate, with room for one queued write: the
    counter's flushes are refused, the batch grows instead, and Drain writes it
    (waiting for room) once the store moves again."""
    gate = asyncio.Event()
    writing = asyncio.Event()

    class GatedStore(hot.CounterStore):
        async def receive(self, message: Any) -> None:
            if isinstance(message, hot.Write):
                writing.set()
                await gate.wait()
            await super().receive(message)

    vc = VirtualClock()  # the flush timer stays out of the way: time never moves
    async with hewitt.ActorSystem("hot", config=hewitt.SystemConfig(clock=vc)) as system:
        counter, store = await spawn_pair(
            system, batch_size=10, interval=1.0, store_capacity=1, store=GatedStore
        )

        async def ticks(n: int) -> Any:
            for _ in range(n):
                counter.tell(hot.TICK)
            return await counter.ask(hot.Stats(), timeout=2.0)

        await ticks(10)  # write 1: taken by the store, which now waits at the gate
        await writing.wait()
        stats = await ticks(10)  # write 2: queued, the store's mailbox is full
        assert (stats.by_size, stats.refused, stats.pending) == (2, 0, 0)
        stats = await ticks(10)  # write 3: refused, the 10 stay batched
        assert (stats.by_size, stats.refused, stats.pending) == (2, 1, 10)
        stats = await ticks(5)  # no retry before another batch's worth
        assert (stats.refused, stats.pending) == (1, 15)
        stats = await ticks(5)  # retried at 20: refused again
        assert (stats.refused, stats.pending, stats.count) == (2, 20, 40)
        store_stats = system.actor_statistics(store)
        assert store_stats is not None
        assert (store_stats.mailbox_depth, store_stats.capacity, store_stats.dropped) == (1, 1, 0)

        gate.set()
        totals = await counter.ask(hot.Drain(), timeout=2.0)  # the store answers
        assert totals == hot.StoreTotals(total=40, writes=3)
        stats = await counter.ask(hot.Stats(), timeout=2.0)
        assert (stats.by_size, stats.by_drain, stats.pending, stats.largest) == (2, 1, 0, 20)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_runs_as_a_script(name: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout
    assert not completed.stderr  # no "Exception in callback" or other noise
