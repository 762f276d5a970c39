"""Threaded mode: a system on a thread of its own, for synchronous programs
(scripts, notebooks, WSGI apps). A mixin of ActorSystem."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from threading import get_ident
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ._errors import ActorSystemStopped, WrongThread
from ._loops import new_event_loop
from ._sysstate import TERMINATED

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from ._config import SystemConfig


class ThreadedMode:
    if not TYPE_CHECKING:  # mypy would refuse the attributes the concrete class declares
        __slots__ = ()

    if TYPE_CHECKING:
        name: str
        config: SystemConfig
        _state: int
        _loop: asyncio.AbstractEventLoop
        _loop_thread_id: int
        _thread: threading.Thread | None

        def __init__(self, name: str = ..., *, config: SystemConfig | None = ...) -> None: ...
        async def start(self) -> None: ...
        async def shutdown(self, timeout: float | None = None) -> None: ...
        async def wait_terminated(self) -> None: ...
        def _close(self) -> None: ...
        def _fail_bridged(self) -> None: ...
        def _run_blocking(
            self, coroutine: Coroutine[Any, Any, Any], timeout: float | None
        ) -> Any: ...

    @classmethod
    def start_in_thread(cls, name: str = "hewitt", *, config: SystemConfig | None = None) -> Self:
        """Start a system on its own daemon thread with its own event loop.

        For synchronous programs (scripts, notebooks, WSGI apps): ``tell`` and
        ``spawn`` are thread-safe, ``ref.ask_blocking`` waits for a reply, and
        ``shutdown_blocking`` (or leaving the ``with`` block) stops everything.
        """
        system = cls(name, config=config)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def main() -> None:
            loop = new_event_loop(system.config.use_uvloop)
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(system.start())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                # However the loop ended (shutdown, or a handler's SystemExit),
                # nothing may wait for it any more.
                system._close()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=main, name=f"hewitt-{name}", daemon=True)
        system._thread = thread
        thread.start()
        started.result()
        return system

    def shutdown_blocking(self, timeout: float | None = None) -> None:
        """Stop a system started with :meth:`start_in_thread` and join its thread.

        Returns within about ``timeout`` seconds (default
        ``SystemConfig.shutdown_timeout``) even while other threads keep
        sending. A second call waits for the first."""
        thread = self._thread
        if thread is None:
            raise WrongThread(
                f"actor system {self.name!r} runs in your event loop; use `await system.shutdown()`"
            )
        if get_ident() == self._loop_thread_id:
            raise WrongThread("shutdown_blocking() called on the system's own thread")
        limit = self.config.shutdown_timeout if timeout is None else timeout
        # Returns within ``limit`` whatever happens: the shutdown cancels stuck
        # handlers at ``limit``; if the loop is too busy (a flood) or stuck to
        # finish by then, the system is closed all the same and the loop
        # finishes its shutdown on its own.
        deadline = time.monotonic() + limit
        if not self._loop.is_closed():
            with contextlib.suppress(ActorSystemStopped, TimeoutError):
                self._run_blocking(self.shutdown(limit), limit)
            with contextlib.suppress(RuntimeError):  # already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
        thread.join(max(0.05, deadline - time.monotonic()))
        self._close()

    def __enter__(self) -> Self:
        if self._thread is None:
            raise WrongThread(
                "`with ActorSystem(...)` needs ActorSystem.start_in_thread(...); "
                "in async code use `async with ActorSystem(...)`"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown_blocking()

    def wait_terminated_blocking(self, timeout: float | None = None) -> None:
        """:meth:`wait_terminated` for synchronous code on other threads:
        returns once the system has shut down; TimeoutError after ``timeout``."""
        if self._state == TERMINATED:
            return
        try:
            self._run_blocking(self.wait_terminated(), timeout)
        except ActorSystemStopped:
            return
