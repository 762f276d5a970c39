"""A logger actor fed by a pool of four worker actors.

Reproduces the "Actor-to-Actor" example of seed document 001 ("Lesson 20: The
Actor Model with Rust", section "Actor Communication Patterns"): four workers
square the numbers 0..19 handed out round-robin and send a log line per result
to a logger actor; the workers shut down first (each logging it), then the
logger.

hewitt features shown: actors talking to actors through typed refs (each
worker holds an ``ActorRef[LogMsg]``, it can send nothing else to the logger),
a ``Shutdown`` message that a worker handles with ``context.stop()`` after
the numbers queued before it, the ``post_stop`` hook (where a worker logs its
shutdown, however it was stopped), ``ref.wait_terminated`` (the Rust ``handle.join()``), and an ask
that both stops an actor and returns its final state (the logger's transcript,
which makes the example observable by its test).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import hewitt

WORKERS = 4
ITEMS = 20


@dataclass(frozen=True, slots=True)
class Info:
    text: str


@dataclass(frozen=True, slots=True)
class Error:
    text: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop a worker, or the logger (which then replies with its transcript,
    a ``tuple[str, ...]``)."""


LogMsg = Info | Error | Shutdown


class Logger(hewitt.Actor[LogMsg]):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def receive(self, message: LogMsg) -> None:
        match message:
            case Info(text):
                self._log(f"[INFO] {text}")
            case Error(text):
                self._log(f"[ERROR] {text}", error=True)
            case Shutdown():
                self._log("[INFO] Logger shutting down")
                self.context.reply(tuple(self.lines))
                self.context.stop()

    def _log(self, line: str, *, error: bool = False) -> None:
        self.lines.append(line)
        print(line, file=sys.stderr if error else sys.stdout)


@dataclass(frozen=True, slots=True)
class Process:
    n: int


WorkerMsg = Process | Shutdown


class Worker(hewitt.Actor[WorkerMsg]):
    def __init__(self, worker_id: int, logger: hewitt.ActorRef[LogMsg]) -> None:
        self.worker_id = worker_id
        self.logger = logger

    def receive(self, message: WorkerMsg) -> None:
        match message:
            case Process(n):
                self.logger.tell(Info(f"Worker {self.worker_id} processed {n} -> {n * n}"))
            case Shutdown():
                self.context.stop()

    def post_stop(self) -> None:
        self.logger.tell(Info(f"Worker {self.worker_id} shutting down"))


async def main() -> tuple[str, ...]:
    """Run the example; returns every line the logger logged, in order."""
    async with hewitt.ActorSystem("logger-workers") as system:
        logger: hewitt.ActorRef[LogMsg] = system.spawn(Logger, name="logger")
        workers: list[hewitt.ActorRef[WorkerMsg]] = [
            system.spawn(Worker, worker_id, logger, name=f"worker-{worker_id}")
            for worker_id in range(WORKERS)
        ]

        # Distribute work round-robin.
        for i in range(ITEMS):
            workers[i % len(workers)].tell(Process(i))

        # Shut the workers down: each finishes its queue, then logs its shutdown.
        for worker in workers:
            worker.tell(Shutdown())
        await asyncio.gather(*(worker.wait_terminated(timeout=5.0) for worker in workers))

        # Only then the logger: every worker line is already in its mailbox.
        transcript: tuple[str, ...] = await logger.ask(Shutdown(), timeout=5.0)
        await logger.wait_terminated(timeout=5.0)
        return transcript


if __name__ == "__main__":
    hewitt.run(main())
