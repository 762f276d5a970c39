"""``hewitt demo --nodes N``: the same bank on a cluster of N worker processes.

The accounts are spread over the workers (account ``i`` on worker ``i mod
N``, so that a later run on the same files finds each account where its
events are); the desk, its tellers and the audit stay on the seed, in this
process, so every withdrawal and deposit crosses to another node and its
answer comes back. Each worker keeps its accounts' events in its own SQLite
file (``hewitt-demo-<worker>.db`` beside ``--db``), or all of them in the
PostgreSQL database of ``--dsn``; the seed keeps the register of accounts in
``--db``. The books are checked as without nodes: no money created or lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from hewitt import ActorRef, ActorSystem
from hewitt.persistence import Persistence

from ._bank import (
    Account,
    AccountMessage,
    AccountStatus,
    Deposit,
    Deposited,
    GetBalance,
    InsufficientFunds,
    Open,
    Withdraw,
    Withdrawn,
    bank_codec,
)
from ._run import IN_MEMORY, DemoOptions, DemoResult, open_store, run_demo

#: where a worker keeps its accounts (set by the seed for its workers only)
DB_VARIABLE = "HEWITT_DEMO_DB"
DSN_VARIABLE = "HEWITT_DEMO_DSN"

#: the messages that cross between the tellers and the accounts
BANK_MESSAGES: tuple[type[Any], ...] = (
    Open,
    Deposit,
    Withdraw,
    GetBalance,
    AccountStatus,
    Withdrawn,
    InsufficientFunds,
    Deposited,
)


def worker_db(db: str, worker: str) -> str:
    """The SQLite file of ``worker``'s accounts, beside the seed's ``db``."""
    if db == IN_MEMORY:
        return IN_MEMORY
    path = Path(db)
    return str(path.with_name(f"{path.stem}-{worker}{path.suffix or '.db'}"))


def setup_node(system: ActorSystem) -> Callable[[], Awaitable[None]] | None:
    """Every node's setup: the bank's messages in the kernel codec; on a
    worker, also its accounts' store (closed by the returned teardown)."""
    for cls in BANK_MESSAGES:
        system.codec.register(cls, name=f"demo.{cls.__name__}")
    db = os.environ.get(DB_VARIABLE)
    if db is None:
        return None  # the seed: run_demo opens the bank's store itself
    journal, snapshots, _ = open_store(worker_db(db, system.name), os.environ.get(DSN_VARIABLE))
    persistence = Persistence.install(system, journal, snapshots, bank_codec())
    return persistence.close


async def run_cluster_demo(
    options: DemoOptions, nodes: int, out: TextIO, *, stop: asyncio.Event | None = None
) -> DemoResult:
    """Run the demo with its accounts on ``nodes`` worker processes."""
    from hewitt.cluster import local

    env = {DB_VARIABLE: options.db}
    if options.dsn is not None:
        env[DSN_VARIABLE] = options.dsn
    async with local(
        nodes, name="hewitt-demo", setup="hewitt.demo._cluster:setup_node", env=env
    ) as cluster:
        workers = sorted(cluster.worker_nodes, key=lambda node: node.system)
        print(
            f"cluster: {len(workers)} worker nodes ("
            + ", ".join(str(node) for node in workers)
            + f"), seed {cluster.node.node_id}",
            file=out,
            flush=True,
        )

        async def place(number: int) -> ActorRef[AccountMessage]:
            worker = workers[number % len(workers)]
            return await cluster.node.spawn(worker, Account, number, name=f"account-{number}")

        return await run_demo(options, out, system=cluster.system, stop=stop, place=place)
