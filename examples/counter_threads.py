"""A counter actor hammered by ten plain OS threads.

Reproduces the first example of seed document 001 ("Lesson 20: The Actor Model
with Rust", section "Building a Simple Actor"): a ``CounterActor`` owns an
integer, ten threads send it 1000 ``Increment`` messages each through cloned
handles, and the final value is always 10000.

hewitt feature shown: the *threaded API*. ``ActorSystem.start_in_thread`` runs
the actor system on a background thread so that ordinary synchronous code can
use it: ``ref.tell`` is thread-safe and never blocks, ``ref.ask_blocking``
blocks the calling thread until the reply arrives, and leaving the ``with``
block shuts the system down (``post_stop`` prints the farewell that the Rust
version prints on ``Shutdown``). The ``ActorRef`` plays the role of the Rust
``CounterHandle``: it can be shared by any number of threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import hewitt

THREADS = 10
INCREMENTS_PER_THREAD = 1000


@dataclass(frozen=True, slots=True)
class Increment:
    """Add one to the counter."""


@dataclass(frozen=True, slots=True)
class Decrement:
    """Subtract one from the counter."""


@dataclass(frozen=True, slots=True)
class GetValue:
    """Ask for the current value; the counter replies with an ``int``."""


CounterMsg = Increment | Decrement | GetValue


class Counter(hewitt.Actor[CounterMsg]):
    """Private state, one message at a time: no lock anywhere."""

    def __init__(self) -> None:
        self.value = 0

    def receive(self, message: CounterMsg) -> None:
        match message:
            case Increment():
                self.value += 1
            case Decrement():
                self.value -= 1
            case GetValue():
                self.context.reply(self.value)

    def post_stop(self) -> None:
        print(f"Counter shutting down with value: {self.value}")


def main() -> int:
    """Run the example; returns the final value of the counter (always 10000)."""
    with hewitt.ActorSystem.start_in_thread("counter-threads") as system:
        counter: hewitt.ActorRef[CounterMsg] = system.spawn(Counter, name="counter")

        def spam_increments() -> None:
            for _ in range(INCREMENTS_PER_THREAD):
                counter.tell(Increment())  # thread-safe, never blocks

        threads = [threading.Thread(target=spam_increments) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Every Increment is already in the mailbox, ahead of this request, so
        # the reply counts all of them: no sleeping to "let the actor drain".
        value: int = counter.ask_blocking(GetValue(), timeout=10.0)
        print(f"Final value: {value}")  # always 10000
    # Leaving the block stopped the system (and printed the farewell).
    return value


if __name__ == "__main__":
    main()
