"""How long the first durable append takes in a fresh process: from the moment
the actor system runs and the journal is constructed to the reply of the first
persisted command (a new account's first deposit: its recovery, then one
append, durable, then the reply). Each measurement is a new Python process, as
an application starting up is, so whatever the journal starts (the SQLite
writer process) and imports is in the figure.

    python -m tests.integration.persistence.first_ack            # SQLite, 15 runs
    python -m tests.integration.persistence.first_ack --runs 30 --writer thread

docs/persistence-backends.md quotes what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hewitt import ActorRef, ActorSystem, run
from hewitt.persistence import Persistence, SqliteJournal, SqliteSnapshotStore

from .bank import Account, Command, Deposit, bank_codec


async def first_ack(path: Path, writer: str) -> tuple[float, float]:
    """(ms from ready to the first acknowledged append, ms for the second)."""
    async with ActorSystem("first-ack") as system:
        journal = SqliteJournal(path, writer="thread" if writer == "thread" else "process")
        persistence = Persistence.install(system, journal, SqliteSnapshotStore(path), bank_codec())
        ready = time.perf_counter()
        account: ActorRef[Command] = system.spawn(Account, "first")
        assert await account.ask(Deposit(1), timeout=60) == 1
        first = time.perf_counter()
        assert await account.ask(Deposit(1), timeout=60) == 2
        second = time.perf_counter()
        await system.shutdown()
        await persistence.close()
    return (first - ready) * 1000, (second - first) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--writer", choices=["process", "thread"], default="process")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a run, in this process
    options = parser.parse_args()
    if options.one is not None:
        first, second = run(first_ack(options.one, options.writer))
        print(f"{first:.3f} {second:.3f}")
        return
    firsts: list[float] = []
    seconds: list[float] = []
    module = __spec__.name if __spec__ else __name__
    with tempfile.TemporaryDirectory() as folder:
        for n in range(options.runs):
            path = str(Path(folder) / f"run{n}.db")
            output = subprocess.run(
                [sys.executable, "-m", module, "--writer", options.writer, "--one", path],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            firsts.append(float(output[0]))
            seconds.append(float(output[1]))
    print(
        f"sqlite writer={options.writer}, {options.runs} fresh processes: first durable ack "
        f"after ready: median {statistics.median(firsts):.0f} ms, min {min(firsts):.0f}, "
        f"max {max(firsts):.0f}; the next append: median {statistics.median(seconds):.1f} ms"
    )


if __name__ == "__main__":
    main()
