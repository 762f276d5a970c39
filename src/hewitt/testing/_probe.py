"""TestProbe: an actor whose received messages a test can await."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from itertools import count
from typing import Any, TypeVar, overload

from hewitt import Actor, ActorRef, ActorSystem, Context, HewittError, Terminated

T = TypeVar("T")

_probe_ids = count(1)


class ProbeTimeout(HewittError, AssertionError):
    """An expectation on a :class:`TestProbe` was not met in time."""


@dataclass(frozen=True, slots=True)
class _Received:
    message: Any
    sender: ActorRef[Any] | None


class _ProbeActor(Actor[Any]):
    def __init__(self, probe: TestProbe) -> None:
        self._probe = probe
        probe._context = self.context

    def receive(self, message: Any) -> None:
        self._probe._deliver(_Received(message, self.context.sender))


class TestProbe:
    """An actor ref (``probe.ref``) that records what it receives.

    Tests await what the probe should receive, never sleep::

        probe = TestProbe(system)
        counter.tell(Get(), probe.ref)
        assert await probe.expect_message(int) == 1

    Create it on the system's event loop (inside the test coroutine).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, system: ActorSystem, name: str | None = None) -> None:
        self._queue: deque[_Received] = deque()
        self._arrived: asyncio.Event = asyncio.Event()
        self.last_sender: ActorRef[Any] | None = None
        self._context: Context[Any]
        self.ref: ActorRef[Any] = system.spawn_system_actor(
            _ProbeActor, self, name=name or f"testProbe-{next(_probe_ids)}"
        )

    def _deliver(self, received: _Received) -> None:
        self._queue.append(received)
        self._arrived.set()

    async def _next(self, within: float, what: str) -> _Received:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self._queue:
            self._arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProbeTimeout(
                    f"{self.ref.path}: expected {what} within {within:g} s, got nothing"
                )
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                raise ProbeTimeout(
                    f"{self.ref.path}: expected {what} within {within:g} s, got nothing"
                ) from None
        received = self._queue.popleft()
        self.last_sender = received.sender
        return received

    @overload
    async def expect_message(self, expected: type[T], *, within: float = 3.0) -> T: ...
    @overload
    async def expect_message(self, expected: object, *, within: float = 3.0) -> Any: ...

    async def expect_message(self, expected: object, *, within: float = 3.0) -> Any:
        """Wait for the next message and check it: an instance of ``expected`` when
        it is a class, else equal to ``expected``. Returns the message."""
        what = expected.__name__ if isinstance(expected, type) else repr(expected)
        received = await self._next(within, what)
        message = received.message
        ok = isinstance(message, expected) if isinstance(expected, type) else message == expected
        if not ok:
            raise AssertionError(f"{self.ref.path}: expected {what}, got {message!r}")
        return message

    async def receive_message(self, *, within: float = 3.0) -> Any:
        """The next message, whatever it is."""
        return (await self._next(within, "a message")).message

    async def receive_messages(self, n: int, *, within: float = 3.0) -> list[Any]:
        """The next ``n`` messages, all within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        messages = []
        for i in range(n):
            remaining = max(deadline - loop.time(), 0.0)
            try:
                messages.append((await self._next(remaining, f"message {i + 1} of {n}")).message)
            except ProbeTimeout:
                raise ProbeTimeout(
                    f"{self.ref.path}: expected {n} messages within {within:g} s, got {i}"
                ) from None
        return messages

    async def expect_no_message(self, *, within: float = 0.1) -> None:
        """Check that nothing arrives for ``within`` seconds (waiting is the point here)."""
        if not self._queue:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), within)
            except TimeoutError:
                return
        raise AssertionError(
            f"{self.ref.path}: expected no message, got {self._queue[0].message!r}"
        )

    async def expect_terminated(self, ref: ActorRef[Any], *, within: float = 3.0) -> Terminated:
        """Watch ``ref`` with this probe and wait for its Terminated."""
        self.watch(ref)
        message = await self.expect_message(Terminated, within=within)
        if message.ref != ref:
            raise AssertionError(f"{self.ref.path}: expected Terminated({ref}), got {message}")
        return message

    def watch(self, ref: ActorRef[Any]) -> None:
        """Make the probe receive Terminated(ref) when ``ref`` stops."""
        self._context.watch(ref)

    def reply(self, message: Any) -> None:
        """Reply to the sender of the last message received."""
        if self.last_sender is None:
            raise AssertionError(f"{self.ref.path}: no sender to reply to")
        self.last_sender.tell(message, self.ref)

    @property
    def pending(self) -> int:
        """Messages received and not yet taken by an expectation."""
        return len(self._queue)
