"""Mailbox kinds: bounded (with an overflow policy) and priority mailboxes.

An unbounded mailbox is the cell's plain deque (see ``Cell``): it costs nothing
extra. A bounded or priority mailbox is created at spawn and kept for the
actor's life; the runtime uses the same deque-like calls on it (``append``,
``popleft``, ``appendleft``/``extendleft`` for retries and unstash, which
bypass the capacity because they return messages that were already admitted).
"""

from __future__ import annotations

import asyncio
import enum
import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any

from ._envelope import describe, message_of, split
from ._errors import HewittError
from ._messages import Exit, ReceiveTimeout, Terminated

if TYPE_CHECKING:
    from ._cell import Cell
    from ._clock import Clock


class Overflow(enum.Enum):
    """What happens to a message that arrives when a bounded mailbox is full."""

    #: ``await ref.send(msg)`` (``ref.send_blocking`` from threads) waits for
    #: room; ``tell`` raises MailboxFull (it never blocks).
    BLOCK = "block"
    #: the arriving message goes to dead letters.
    DROP_NEWEST = "drop_newest"
    #: the oldest queued message goes to dead letters, the new one is queued.
    DROP_OLDEST = "drop_oldest"
    #: the sender gets MailboxFull (``tell`` and ``send`` raise it).
    FAIL = "fail"


class MailboxFull(HewittError):
    """A bounded mailbox refused a message; names the actor, its capacity and the type."""

    def __init__(self, path: str, capacity: int, message_type: str) -> None:
        super().__init__(f"mailbox of {path} is full (capacity {capacity}): {message_type} refused")
        self.path = path
        self.capacity = capacity
        self.message_type = message_type


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    """The mailbox an actor gets at spawn (``spawn(..., mailbox=...)``).

    Attributes:
        capacity: most queued messages; None for unbounded.
        overflow: the policy when full (bounded only; default FAIL).
        priority: a function message -> sort key; lower keys are handled
            first, arrival order within a key (None: FIFO).
    """

    capacity: int | None = None
    overflow: Overflow = Overflow.FAIL
    priority: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.capacity is not None and (not isinstance(self.capacity, int) or self.capacity < 1):
            raise ValueError(f"Mailbox.capacity must be an int >= 1 or None, got {self.capacity!r}")
        if not isinstance(self.overflow, Overflow):
            raise ValueError(f"Mailbox.overflow must be an Overflow, got {self.overflow!r}")
        if self.priority is not None and not callable(self.priority):
            raise ValueError(f"Mailbox.priority must be callable, got {self.priority!r}")

    @classmethod
    def unbounded(cls) -> Mailbox:
        """FIFO, no limit (the default)."""
        return cls()

    @classmethod
    def bounded(cls, capacity: int, overflow: Overflow = Overflow.FAIL) -> Mailbox:
        """FIFO with at most ``capacity`` messages and an overflow policy."""
        return cls(capacity=capacity, overflow=overflow)

    @classmethod
    def by_priority(
        cls,
        priority: Callable[[Any], Any],
        capacity: int | None = None,
        overflow: Overflow = Overflow.FAIL,
    ) -> Mailbox:
        """Lowest ``priority(message)`` first, FIFO within a priority."""
        return cls(capacity=capacity, overflow=overflow, priority=priority)

    @property
    def is_plain(self) -> bool:
        return self.capacity is None and self.priority is None

    def build(self, cell: Cell[Any]) -> BoundedMailbox | PriorityMailbox:
        built: BoundedMailbox | PriorityMailbox
        if self.priority is not None:
            built = PriorityMailbox(cell, self.capacity, self.overflow, self.priority)
        else:
            assert self.capacity is not None
            built = BoundedMailbox(cell, self.capacity, self.overflow)
        built.spec = self
        return built


def is_runtime_item(item: Any) -> bool:
    """True for what the runtime itself queues: Terminated, Exit,
    ReceiveTimeout and timer ticks."""
    if type(item) is tuple and len(item) == 5:
        return True  # a timer tick (see _timers)
    return type(message_of(item)) in _RUNTIME_MESSAGES


_RUNTIME_MESSAGES: frozenset[type[Any]] = frozenset({Terminated, Exit, ReceiveTimeout})


class Admission:
    """Capacity, overflow policy and blocked senders, shared by both kinds.

    (No __slots__ of its own: the attributes live in the concrete classes.)
    """

    __slots__ = ()

    if TYPE_CHECKING:
        cell: Cell[Any]
        #: the Mailbox it was built from (a permanent child's new incarnation gets the same)
        spec: Mailbox
        capacity: int | None
        overflow: Overflow
        waiters: deque[asyncio.Future[None]]
        dropped: int

        def __len__(self) -> int: ...

    def _reject(self, item: Any) -> None:
        raise MailboxFull(self.cell.ref.path, self.capacity or 0, describe(message_of(item)))

    def _dead(self, item: Any, reason: str) -> None:
        self.dropped += 1  # type: ignore[misc]  # the slot is declared by the subclasses
        message, sender = split(item)
        self.cell.system._dead_letter(
            message,
            sender,
            self.cell.ref,
            f"mailbox full (capacity {self.capacity}): {reason}",
        )

    def _wake_sender(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # type: ignore[arg-type]
                return

    def full(self) -> bool:
        capacity = self.capacity
        return capacity is not None and len(self) >= capacity

    async def wait_for_room(self, timeout: float | None, clock: Clock) -> bool:
        """Wait (FIFO among senders) until the mailbox has room; False when
        ``timeout`` seconds of the system's clock pass first (None: no limit)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else clock.now() + timeout
        while self.full():
            waiter: asyncio.Future[bool | None] = loop.create_future()
            self.waiters.append(waiter)  # type: ignore[arg-type]
            timer = None
            if deadline is not None:
                timer = clock.call_later(max(0.0, deadline - clock.now()), _give_up, waiter)
            try:
                granted = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.result():
                    self._wake_sender()  # pass the slot on
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if granted is False:
                return False
            if granted is None:
                return True  # the actor stopped: the message becomes a dead letter
        return True


def _give_up(waiter: asyncio.Future[bool | None]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class BoundedMailbox(deque[Any], Admission):
    __slots__ = ("bound", "capacity", "cell", "dropped", "overflow", "spec", "waiters")

    def __init__(self, cell: Cell[Any], capacity: int, overflow: Overflow) -> None:
        super().__init__()
        self.cell = cell
        self.bound = capacity
        self.capacity = capacity
        self.overflow = overflow
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.dropped = 0

    def append(self, item: Any) -> None:
        if len(self) < self.bound:
            deque.append(self, item)
            return
        overflow = self.overflow
        if overflow is Overflow.DROP_NEWEST:
            self._dead(item, "newest message dropped")
        elif overflow is Overflow.DROP_OLDEST:
            # The oldest user message: what the runtime forced in is never dropped.
            for index, queued in enumerate(self):
                if not is_runtime_item(queued):
                    del self[index]
                    self._dead(queued, "oldest message dropped")
                    break
            deque.append(self, item)
        else:
            self._reject(item)

    def popleft(self) -> Any:
        item = deque.popleft(self)
        if self.waiters:
            self._wake_sender()
        return item

    def force(self, item: Any) -> None:
        """Queue a message the runtime itself sends (timer tick, Terminated...):
        never refused, never dropped, whatever the capacity."""
        deque.append(self, item)


class PriorityMailbox(Admission):
    """A heap of (priority, arrival, item); items put back at the front
    (retries, unstash) go before everything else."""

    __slots__ = (
        "_front",
        "_heap",
        "_key",
        "_runtime",
        "_seq",
        "capacity",
        "cell",
        "dropped",
        "overflow",
        "spec",
        "waiters",
    )

    def __init__(
        self,
        cell: Cell[Any],
        capacity: int | None,
        overflow: Overflow,
        key: Callable[[Any], Any],
    ) -> None:
        self.cell = cell
        self.capacity = capacity
        self.overflow = overflow
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.dropped = 0
        self._key = key
        self._heap: list[tuple[Any, int, Any]] = []
        self._front: deque[Any] = deque()
        self._runtime: deque[Any] = deque()
        self._seq = count()

    def __len__(self) -> int:
        return len(self._heap) + len(self._front) + len(self._runtime)

    def __bool__(self) -> bool:
        return bool(self._heap) or bool(self._front) or bool(self._runtime)

    def __iter__(self) -> Iterator[Any]:
        return iter([*self._front, *self._runtime, *(entry[2] for entry in sorted(self._heap))])

    def _push(self, item: Any) -> None:
        message = message_of(item)
        entry = (self._key(message), next(self._seq), item)
        heap = self._heap
        try:
            heapq.heappush(heap, entry)
        except TypeError as exc:
            # Keys that do not compare: refuse this one and keep the heap whole.
            for index, queued in enumerate(heap):
                if queued is entry:
                    heap.pop(index)
                    break
            heapq.heapify(heap)
            raise TypeError(
                f"{self.cell.ref.path}: the priority key of {describe(message)} "
                f"({entry[0]!r}) does not compare with the queued ones: {exc}"
            ) from None

    def append(self, item: Any) -> None:
        capacity = self.capacity
        if capacity is None or len(self) < capacity:
            self._push(item)
            return
        overflow = self.overflow
        if overflow is Overflow.DROP_NEWEST:
            self._dead(item, "newest message dropped")
        elif overflow is Overflow.DROP_OLDEST:
            # The oldest message among those that would be handled last.
            heap = self._heap
            if heap:
                worst = max(entry[0] for entry in heap)
                index = min(
                    (i for i, entry in enumerate(heap) if entry[0] == worst),
                    key=lambda i: heap[i][1],
                )
                victim = heap.pop(index)
                heapq.heapify(heap)
                self._dead(victim[2], "oldest lowest-priority message dropped")
            self._push(item)
        else:
            self._reject(item)

    def popleft(self) -> Any:
        if self._front:
            item = self._front.popleft()
        elif self._runtime:
            item = self._runtime.popleft()
        else:
            item = heapq.heappop(self._heap)[2]
        if self.waiters:
            self._wake_sender()
        return item

    def force(self, item: Any) -> None:
        """Queue a runtime message whatever the capacity (see BoundedMailbox.force).

        The runtime's own messages (Terminated, Exit, ReceiveTimeout, timer
        ticks) are never ranked by the user's key: they go first, in arrival
        order, so that the runtime's delivery never fails on a key written for
        the user's messages."""
        self._runtime.append(item)

    def remove_where(self, unwanted: Callable[[Any], bool]) -> int:
        """Withdraw the items for which ``unwanted(item)`` holds, keeping the
        order of the rest; returns how many went."""
        removed = 0
        for lane in (self._front, self._runtime):
            kept = [item for item in lane if not unwanted(item)]
            removed += len(lane) - len(kept)
            lane.clear()
            lane.extend(kept)
        heap = [entry for entry in self._heap if not unwanted(entry[2])]
        removed += len(self._heap) - len(heap)
        if removed:
            heapq.heapify(heap)  # the (key, arrival) entries keep their order
            self._heap = heap
        return removed

    def appendleft(self, item: Any) -> None:
        self._front.appendleft(item)

    def extendleft(self, items: Iterable[Any]) -> None:
        self._front.extendleft(items)

    def extend(self, items: Iterable[Any]) -> None:
        """Queue items (no capacity check: they were admitted already)."""
        for item in items:
            if is_runtime_item(item):
                self._runtime.append(item)
            else:
                self._push(item)

    def clear(self) -> None:
        self._heap.clear()
        self._front.clear()
        self._runtime.clear()
