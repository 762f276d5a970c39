"""The router / worker pool of seed 000, chapter 3 ("4. The Router Pattern").

A router distributes ``DoWork`` jobs to a pool of worker actors. The seed's
workers block (a thread sleep standing for a database call or an external
API): in hewitt such workers set ``blocking = True`` and run their handler on
the system's thread pool, so the event loop and the other actors keep going
and four workers really do four jobs at once. Shown twice: round-robin (each
worker gets every fourth job) and consistent hashing on the job's text, as the
seed's ``some_consistent_hash(&msg.0) % workers.len()`` (the same text always
lands on the same worker).

hewitt features: ``hewitt.routing.Pool`` with ``RoundRobin`` and
``ConsistentHashing`` strategies, ``ask`` through a router answered by a
routee, ``blocking`` actors on the thread pool.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import hewitt
from hewitt import Actor
from hewitt.routing import ConsistentHashing, GetRoutees, Pool, RoundRobin, RoutingStrategy

WORKERS = 4
WORK_SECONDS = 0.02  # each job's blocking call


@dataclass(frozen=True, slots=True)
class DoWork:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    text: str
    worker: str
    thread: str


class Worker(Actor[DoWork]):
    """Does blocking work on the system's thread pool, one job at a time."""

    blocking = True

    def receive(self, message: DoWork) -> None:
        time.sleep(WORK_SECONDS)  # the seed's simulated blocking work
        self.context.reply(
            Done(message.text, self.context.self.name, threading.current_thread().name)
        )


@dataclass(frozen=True, slots=True)
class PoolReport:
    strategy: str
    jobs: int
    per_worker: dict[str, list[str]]
    elapsed: float

    @property
    def sequential(self) -> float:
        return self.jobs * WORK_SECONDS


async def run_pool(
    system: hewitt.ActorSystem, strategy: RoutingStrategy, jobs: list[str]
) -> PoolReport:
    router = system.spawn(
        Pool[DoWork], strategy, Worker, size=WORKERS, name=f"workers-{type(strategy).__name__}"
    )
    await router.ask(GetRoutees())  # the pool has started its workers
    started = time.perf_counter()
    results: list[Done] = await asyncio.gather(
        *(router.ask(DoWork(text), timeout=10) for text in jobs)
    )
    elapsed = time.perf_counter() - started
    per_worker: dict[str, list[str]] = {}
    for done in results:
        per_worker.setdefault(done.worker, []).append(done.text)
    router.stop()
    await router.wait_terminated(timeout=5)
    return PoolReport(type(strategy).__name__, len(jobs), per_worker, elapsed)


async def main() -> list[PoolReport]:
    jobs = [f"request-{i}" for i in range(20)]
    async with hewitt.ActorSystem("worker-pool") as system:
        by_turn = await run_pool(system, RoundRobin(), jobs)
        by_key = await run_pool(
            system, ConsistentHashing(key=lambda job: job.text), jobs + jobs[:8]
        )
    for report in (by_turn, by_key):
        print(
            f"{report.strategy}: {report.jobs} jobs on {len(report.per_worker)} workers in "
            f"{report.elapsed * 1000:.0f} ms (one after another: {report.sequential * 1000:.0f} ms)"
        )
        for worker, texts in sorted(report.per_worker.items()):
            print(f"  {worker}: {len(texts)} jobs")
    return [by_turn, by_key]


if __name__ == "__main__":
    hewitt.run(main())
