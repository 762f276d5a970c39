"""The synchronous API: a system on a background thread (docs/semantics.md §10)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hewitt import Actor, ActorSystem, AskTimeout, WrongThread

from .messages import Get, Inc


class Counter(Actor[Inc | Get]):
    def __init__(self) -> None:
        self.value = 0

    def receive(self, message: Inc | Get) -> None:
        if isinstance(message, Inc):
            self.value += message.n
        else:
            self.context.reply(self.value)


def test_threads_tell_and_ask_blocking() -> None:
    with ActorSystem.start_in_thread("threaded") as system:
        counter = system.spawn(Counter, name="counter")

        def work() -> None:
            for _ in range(1000):
                counter.tell(Inc())

        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counter.ask_blocking(Get(), timeout=5) == 10_000
    assert not system.is_running
    assert system.statistics().live_actors == 0


def test_ask_blocking_timeout() -> None:
    class Silent(Actor[Any]):
        def receive(self, message: Any) -> None:
            pass

    with ActorSystem.start_in_thread("threaded") as system:
        silent = system.spawn(Silent, name="silent")
        with pytest.raises(AskTimeout, match="/user/silent"):
            silent.ask_blocking(Get(), timeout=0.05)


async def test_ask_blocking_on_loop_thread_is_refused(actor_system: ActorSystem) -> None:
    counter = actor_system.spawn(Counter)
    with pytest.raises(WrongThread, match="deadlock"):
        counter.ask_blocking(Get())


async def test_with_statement_needs_threaded_system() -> None:
    system = ActorSystem("plain")
    with pytest.raises(WrongThread), system:
        pass


def test_spawn_from_worker_threads() -> None:
    with ActorSystem.start_in_thread("threaded") as system:
        refs = []
        lock = threading.Lock()

        def spawn_some() -> None:
            for _ in range(100):
                ref = system.spawn(Counter)
                with lock:
                    refs.append(ref)

        threads = [threading.Thread(target=spawn_some) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({r.path for r in refs}) == 400
        for ref in refs:
            ref.tell(Inc(2))
        assert all(ref.ask_blocking(Get()) == 2 for ref in refs)
