"""Stress: 1,000 supervised actors failing at random on 10% of 200k messages.

Every message is either processed exactly once or accounted for in dead letters
(a poison message that failed 3 times in a row); every actor is alive at the
end; restarts equal failures (each failure restarts its actor once).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

import pytest

from hewitt import Actor, ActorRef, ActorSystem, DeadLetter, SupervisorStrategy

WORKERS = 1_000
SUPERVISORS = 10
MESSAGES = 200_000
FAILURE_RATE = 0.1


class Flaky(Actor[Any]):
    def __init__(self, processed: Counter[int], rng: random.Random) -> None:
        self.processed = processed
        self.rng = rng  # a factory argument: the same generator across restarts

    def receive(self, message: Any) -> None:
        if message == "sync":
            self.context.reply(True)
            return
        if self.rng.random() < FAILURE_RATE:
            raise RuntimeError(f"random failure on {message}")
        self.processed[message] += 1


class Team(Actor[Any]):
    supervisor_strategy = SupervisorStrategy.one_for_one(max_restarts=10**9, within=1.0)

    def __init__(self, processed: Counter[int], seed: int) -> None:
        self.workers = [
            self.context.spawn(Flaky, processed, random.Random(seed * 10_000 + i))
            for i in range(WORKERS // SUPERVISORS)
        ]

    def receive(self, message: Any) -> None:
        self.context.reply(self.workers)


class Letters(Actor[Any]):
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def receive(self, message: Any) -> None:
        if isinstance(message, DeadLetter):
            self.messages.append(message)
        else:
            self.context.reply(self.messages)


@pytest.mark.timeout(120)
async def test_random_failures_every_message_accounted_for(
    actor_system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="hewitt")  # 20k failure tracebacks otherwise
    processed: Counter[int] = Counter()
    letters = actor_system.spawn(Letters)
    actor_system.event_stream.subscribe(letters, DeadLetter)
    teams = [actor_system.spawn(Team, processed, seed) for seed in range(SUPERVISORS)]
    workers: list[ActorRef[Any]] = []
    for team in teams:
        workers.extend(await team.ask("workers"))
    assert len(workers) == WORKERS

    for i in range(MESSAGES):
        workers[i % WORKERS].tell(i)
    # A sync ask queued behind each worker's messages (retries go to the front).
    assert all(await asyncio.gather(*(w.ask("sync", timeout=60) for w in workers)))

    dead = [letter.message for letter in await letters.ask("dump")]
    stats = actor_system.statistics()
    assert all(count == 1 for count in processed.values()), "a message was processed twice"
    assert set(processed).isdisjoint(dead)
    assert set(processed) | set(dead) == set(range(MESSAGES))
    assert len(dead) == len(set(dead))
    assert all(worker.is_alive for worker in workers)
    assert stats.failures == stats.restarts
    expected_failures = MESSAGES * FAILURE_RATE
    assert 0.9 * expected_failures < stats.failures < 1.1 * expected_failures * 1.2
    # P(three failures in a row) = 0.1**3: about 200 poison messages.
    assert 50 < len(dead) < 500
