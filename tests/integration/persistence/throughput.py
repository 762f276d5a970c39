"""Persisted events per second: N accounts, each ``await ref.ask(Deposit(1))``
in a loop, all at once, for a few seconds.

    python -m tests.integration.persistence.throughput sqlite --actors 1000
    python -m tests.integration.persistence.throughput postgres --dsn postgresql://...
    python -m tests.integration.persistence.throughput postgres   # starts its own server
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from hewitt import ActorRef, ActorSystem, run
from hewitt.persistence import Journal, Persistence, SnapshotStore

from .bank import Account, Command, Deposit, GetBalance, bank_codec


async def measure(
    journal: Journal, snapshots: SnapshotStore, actors: int, seconds: float
) -> tuple[int, float]:
    """(events persisted, seconds) with ``actors`` accounts writing at once."""
    async with ActorSystem("throughput") as system:
        Persistence.install(system, journal, snapshots, bank_codec())
        refs: list[ActorRef[Command]] = [
            system.spawn(Account, f"t{i}", name=f"t{i}") for i in range(actors)
        ]
        for ref in refs:  # recovery done before the clock starts
            await ref.ask(GetBalance(), timeout=60)
        stop = False
        counts = [0] * actors

        async def client(i: int, ref: ActorRef[Command]) -> None:
            while not stop:
                await ref.ask(Deposit(1), timeout=60)
                counts[i] += 1

        start = time.perf_counter()
        tasks = [asyncio.create_task(client(i, ref)) for i, ref in enumerate(refs)]
        await asyncio.sleep(seconds)
        stop = True
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        for i, ref in enumerate(refs):
            assert await ref.ask(GetBalance(), timeout=60) == counts[i]
    await journal.close()
    await snapshots.close()
    return sum(counts), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("backend", choices=["sqlite", "postgres"])
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--synchronous", default="FULL", help="sqlite: FULL or NORMAL")
    parser.add_argument(
        "--writer", choices=["process", "thread"], default="process", help="sqlite's writer"
    )
    parser.add_argument("--dsn", help="postgres: a server to use (default: start one)")
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval (seconds; Python's default is 0.005): see "
        "docs/persistence-backends.md on the GIL and the SQLite writers",
    )
    options = parser.parse_args()
    if options.switch_interval is not None:
        sys.setswitchinterval(options.switch_interval)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        dsn = options.dsn
        if options.backend == "postgres" and dsn is None:
            from .pgserver import PostgresServer

            dsn = stack.enter_context(PostgresServer.started()).dsn
        for n, actors in enumerate(options.actors):
            journal: Journal
            snapshots: SnapshotStore
            if options.backend == "sqlite":
                from hewitt.persistence import SqliteJournal, SqliteSnapshotStore

                path = folder / f"run{n}.db"
                journal = SqliteJournal(
                    path, synchronous=options.synchronous, writer=options.writer
                )
                snapshots = SqliteSnapshotStore(path, synchronous=options.synchronous)
                label = f"sqlite synchronous={options.synchronous} writer={options.writer}"
            else:
                from hewitt.persistence import PostgresJournal, PostgresSnapshotStore

                assert dsn is not None
                schema = f"throughput_{os.getpid()}_{n}"  # a fresh schema per run
                journal = PostgresJournal(dsn, schema=schema)
                snapshots = PostgresSnapshotStore(dsn, schema=schema)
                label = "postgres synchronous_commit=on"
            events, elapsed = run(measure(journal, snapshots, actors, options.seconds))
            print(
                f"{label}: {actors:5d} actors: {events / elapsed:10,.0f} events/s "
                f"({events} in {elapsed:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
