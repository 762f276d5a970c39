"""A hot counter that batches its increments and flushes them to a store.

Reproduces "Example 2 - Migrating a thread pool to actors" of seed document 003
("Message-Passing Concurrency - Professional Level", section "Code Examples"):
the lock-protected ``HotCounter`` becomes an actor that takes ``Tick`` messages,
keeps the increments in memory and flushes them when the batch reaches a size
(the seed's 1000) and on a timer (the seed's 50 ms ``Flush``); ``Get`` replies
``count + batch``. Here the flushes go to a separate (simulated) store actor, as
they would to a database, so the example can check that the store's total equals
the number of increments and that it took far fewer writes than increments.

hewitt features shown:

- a periodic timer (``context.timers.start_periodic_timer("flush", Flush(),
  interval)``) instead of the seed's re-armed ``scheduleOnce``; it dies with the
  actor, and ticks while nothing is batched write nothing;
- a bounded mailbox for the store, ``Mailbox.bounded(4, Overflow.BLOCK)``, used
  both ways: on the hot path the counter flushes with ``tell``, which a full
  BLOCK mailbox refuses at once with ``MailboxFull`` (a "try-send"); at the end,
  ``Drain`` flushes with ``await store.send(...)``, which waits for room;
- a handler that is synchronous on the hot path and returns a coroutine only
  for ``Drain`` (``HandlerResult``), and forwarding: ``Drain`` passes the
  caller's reply address on to the store (``send(..., sender=asker)``), which
  answers the caller directly;
- ``ActorSystem.actor_statistics`` (the store's high-water mark and capacity)
  and a deferred reply (``AwaitFlushed`` is answered by a later flush).

Why BLOCK and "refused means keep batching" rather than another policy: the
seed's point is that an increment costs one message send and that the actor
absorbs the load by batching. Increments add up, so a batch that the store
cannot take yet is not lost but simply grows: the slower the store, the bigger
and rarer the writes, and the store's mailbox never holds more than 4 writes
(the seed's remedy for "ever-growing mailboxes"). A DROP policy would lose
counts (the example must lose none); waiting in the hot path (``await
store.send`` for every flush) would stall the counter behind the store, which
is the lock contention the migration removes, with the increments piling up
in the counter's mailbox instead. Only the final drain, where nothing is left
to batch into, waits for room.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import hewitt

BATCH_SIZE = 1000  # the seed's "if (batch >= 1000)"
FLUSH_INTERVAL = 0.05  # the seed's 50.millis
STORE_CAPACITY = 4  # writes the store's mailbox may hold
WRITE_LATENCY = 0.005  # the simulated store takes 5 ms per write


# --- The counter's protocol -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """One increment (the seed's ``Tick``)."""


TICK = Tick()


@dataclass(frozen=True, slots=True)
class Flush:
    """The periodic timer's message: write whatever is batched."""


@dataclass(frozen=True, slots=True)
class Get:
    """Replies the count (``int``): flushed plus still batched, as in the seed."""


@dataclass(frozen=True, slots=True)
class Stats:
    """Replies a :class:`FlushStats`."""


@dataclass(frozen=True, slots=True)
class AwaitFlushed:
    """Replies a :class:`FlushStats` once nothing is batched (at once if nothing is)."""


@dataclass(frozen=True, slots=True)
class Drain:
    """Write what is batched, waiting for room in the store; then the store
    replies its :class:`StoreTotals` to the caller."""


CounterMsg = Tick | Flush | Get | Stats | AwaitFlushed | Drain


@dataclass(frozen=True, slots=True)
class FlushStats:
    count: int  # flushed + pending: what Get replies
    flushed: int  # increments written to the store
    pending: int  # increments batched in memory
    by_size: int  # flushes because the batch reached its size
    by_timer: int  # flushes by the periodic timer
    by_drain: int  # flushes by Drain
    refused: int  # flushes the full store refused (the batch was kept)
    largest: int  # the biggest batch written


# --- The store's protocol ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    """Add ``amount`` to the stored total (one simulated database write)."""

    amount: int


@dataclass(frozen=True, slots=True)
class GetTotals:
    """Replies a :class:`StoreTotals`."""


StoreMsg = Write | GetTotals


@dataclass(frozen=True, slots=True)
class StoreTotals:
    total: int
    writes: int


class CounterStore(hewitt.Actor[StoreMsg]):
    """The simulated store: each write takes ``write_latency`` seconds."""

    def __init__(self, write_latency: float = 0.0) -> None:
        self.write_latency = write_latency
        self.total = 0
        self.writes = 0

    async def receive(self, message: StoreMsg) -> None:
        match message:
            case Write(amount):
                if self.write_latency:
                    await asyncio.sleep(self.write_latency)  # the simulated I/O
                self.total += amount
                self.writes += 1
            case GetTotals():
                self.context.reply(StoreTotals(self.total, self.writes))


class HotCounter(hewitt.Actor[CounterMsg]):
    """Counts in memory; writes the batch to ``store`` when it reaches
    ``batch_size`` and every ``flush_interval`` seconds."""

    def __init__(
        self,
        store: hewitt.ActorRef[StoreMsg],
        batch_size: int = BATCH_SIZE,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_at = batch_size  # the batch size that triggers the next flush
        self.batch = 0
        self.flushed = 0
        self.by_size = self.by_timer = self.by_drain = self.refused = self.largest = 0
        self.waiting: list[hewitt.ActorRef[Any]] = []  # AwaitFlushed callers
        self.context.timers.start_periodic_timer("flush", Flush(), flush_interval)

    def receive(self, message: CounterMsg) -> hewitt.HandlerResult:
        if type(message) is Tick:  # the hot path: one comparison, no allocation
            self.batch += 1
            if self.batch >= self.flush_at:
                self._flush(by_timer=False)
            return None
        match message:
            case Flush():
                self._flush(by_timer=True)
            case Get():
                self.context.reply(self.flushed + self.batch)
            case Stats():
                self.context.reply(self._stats())
            case AwaitFlushed():
                sender = self.context.sender
                if not self.batch:
                    self.context.reply(self._stats())
                elif sender is not None:
                    self.waiting.append(sender)
            case Drain():
                return self._drain(self.context.sender)
        return None

    def _flush(self, *, by_timer: bool) -> None:
        amount = self.batch
        if not amount:
            return  # a tick with nothing batched writes nothing
        try:
            self.store.tell(Write(amount))
        except hewitt.MailboxFull:
            # The store is behind. Nothing is lost: the increments stay in the
            # batch, which keeps growing; retry after another batch_size
            # increments or at the next timer tick, whichever comes first.
            self.refused += 1
            self.flush_at = amount + self.batch_size
            return
        if by_timer:
            self.by_timer += 1
        else:
            self.by_size += 1
        self._written(amount)

    async def _drain(self, asker: hewitt.ActorRef[Any] | None) -> None:
        # While this awaits, the counter handles nothing else: the batch cannot change.
        if self.batch:
            amount = self.batch
            await self.store.send(Write(amount))  # waits for room: never refused
            self.by_drain += 1
            self._written(amount)
        # The store answers the caller itself, after every write queued before.
        await self.store.send(GetTotals(), sender=asker)

    def _written(self, amount: int) -> None:
        self.flushed += amount
        self.largest = max(self.largest, amount)
        self.batch = 0
        self.flush_at = self.batch_size
        if self.waiting:
            stats = self._stats()
            for waiter in self.waiting:
                waiter.tell(stats)
            self.waiting.clear()

    def _stats(self) -> FlushStats:
        return FlushStats(
            count=self.flushed + self.batch,
            flushed=self.flushed,
            pending=self.batch,
            by_size=self.by_size,
            by_timer=self.by_timer,
            by_drain=self.by_drain,
            refused=self.refused,
            largest=self.largest,
        )


async def produce(counter: hewitt.ActorRef[CounterMsg], n: int, yield_every: int = 100) -> None:
    """Tell ``n`` ticks as fast as possible, letting the loop run every ``yield_every``."""
    for i in range(1, n + 1):
        counter.tell(TICK)
        if i % yield_every == 0:
            await asyncio.sleep(0)  # a yield, not a wait: the counter and the timer run


@dataclass(frozen=True, slots=True)
class HotCounterReport:
    """What the example observed, for its test."""

    increments: int  # all the ticks sent: the burst and the late trickle
    burst: int  # ticks sent by the producers as fast as they could
    burst_seconds: float  # sending the burst until Get had counted it
    count: int  # Get right after the burst: the counter's exact view
    after_burst: FlushStats  # Stats right after the burst
    settled: FlushStats  # once the timer had written what the burst left batched
    late: int  # ticks sent afterwards, fewer than a batch: only the timer writes them
    late_flushed: FlushStats  # once those were written
    late_seconds: float  # from the late ticks to their write
    totals: StoreTotals  # the store after Drain
    store_capacity: int | None
    store_high_water: int


async def main(
    producers: int = 4,
    ticks_per_producer: int = 250_000,
    late: int = BATCH_SIZE // 4,
    batch_size: int = BATCH_SIZE,
    flush_interval: float = FLUSH_INTERVAL,
) -> HotCounterReport:
    burst = producers * ticks_per_producer
    async with hewitt.ActorSystem("hot-counter") as system:
        store: hewitt.ActorRef[StoreMsg] = system.spawn(
            CounterStore,
            WRITE_LATENCY,
            name="store",
            mailbox=hewitt.Mailbox.bounded(STORE_CAPACITY, hewitt.Overflow.BLOCK),
        )
        counter: hewitt.ActorRef[CounterMsg] = system.spawn(
            HotCounter, store, batch_size, flush_interval, name="counter"
        )

        t0 = time.perf_counter()
        await asyncio.gather(*(produce(counter, ticks_per_producer) for _ in range(producers)))
        count: int = await counter.ask(Get(), timeout=10.0)
        burst_seconds = time.perf_counter() - t0
        after_burst: FlushStats = await counter.ask(Stats(), timeout=5.0)
        # No more ticks come: whatever the burst left batched, the timer writes.
        settled: FlushStats = await counter.ask(AwaitFlushed(), timeout=5.0)

        # A trickle smaller than a batch never triggers a flush by size: it
        # reaches the store by the timer, within about one flush interval.
        t1 = time.perf_counter()
        for _ in range(late):
            counter.tell(TICK)
        late_flushed: FlushStats = await counter.ask(AwaitFlushed(), timeout=5.0)
        late_seconds = time.perf_counter() - t1

        totals: StoreTotals = await counter.ask(Drain(), timeout=5.0)
        store_stats = system.actor_statistics(store)
        assert store_stats is not None

    increments = burst + late
    print(
        f"burst: {burst} ticks from {producers} producers in {burst_seconds:.2f} s "
        f"({burst / burst_seconds / 1e6:.2f}M/s); Get says {count} "
        f"({after_burst.flushed} written, {after_burst.pending} batched)"
    )
    print(
        f"flushes during the burst: {after_burst.by_size} by size, {after_burst.by_timer} by "
        f"the {flush_interval * 1e3:g} ms timer; {after_burst.refused} refused by the full "
        f"store, so batches grew (largest {after_burst.largest})"
    )
    print(
        f"then {late} late ticks: written {late_seconds * 1e3:.0f} ms later by the timer "
        f"({late_flushed.by_timer - settled.by_timer} timer flush)"
    )
    print(
        f"store: total {totals.total} for {increments} increments, in {totals.writes} writes; "
        f"its mailbox held at most {store_stats.high_water_mark} (capacity "
        f"{store_stats.capacity})"
    )
    return HotCounterReport(
        increments=increments,
        burst=burst,
        burst_seconds=burst_seconds,
        count=count,
        after_burst=after_burst,
        settled=settled,
        late=late,
        late_flushed=late_flushed,
        late_seconds=late_seconds,
        totals=totals,
        store_capacity=store_stats.capacity,
        store_high_water=store_stats.high_water_mark,
    )


if __name__ == "__main__":
    hewitt.run(main())
