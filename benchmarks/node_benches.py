"""The cross-node benches of the ``hewitt`` impls: hewitt nodes in two processes.

Written against the node API of issue 12 (``hewitt.node.Node``); the impls have the
``nodes`` feature only once ``hewitt.node:Node`` exists (``NODES_PROBE`` in
_registry.py), so until then these benches are not run. Each process runs an
ActorSystem and a ``Node`` on 127.0.0.1 (port 0: any); the peers are children of
the cell process (see _nodes.py), and print their node id as JSON when ready.
The same work as the floors' (floor_nodes.py), through hewitt:

* ``node_ask``: the cell's node spawns an ``Echo`` on the peer (remote spawn by
  import path) and asks it ``i``, N times in sequence.
* ``node_tell``: the cell's node spawns a ``Counter`` on the peer and tells it N
  ints back to back, then asks it for its count (which it answers once it has
  handled all N): ``msgs_per_s`` is N / the time from the first tell until that
  answer.
* ``node_scale``: pairs of child processes, each a node telling a ``Counter`` on
  the other node of its pair, as in ``node_tell`` (see ``_nodes.scale``).

Run as ``python -m benchmarks.node_benches serve | source N NODE_ID_JSON`` (a child).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

import hewitt
from benchmarks import _nodes
from benchmarks._common import Metrics, asyncio_runner, latency_metrics, loop_choice
from benchmarks.node_actors import COUNT
from hewitt import ActorRef, ActorSystem, NodeId

_ns = time.perf_counter_ns
_MODULE: Final = "benchmarks.node_benches"
_ECHO: Final = "benchmarks.node_actors:Echo"
_COUNTER: Final = "benchmarks.node_actors:Counter"
CLUSTER: Final = "bench"
SECRET: Final = b"bench-secret"


@asynccontextmanager
async def _node(name: str) -> AsyncIterator[Any]:
    """An ActorSystem called ``name`` with a started ``Node`` (yielded)."""
    # Looked up at run time: hewitt.node does not exist before issue 12 lands.
    node_class: Any = importlib.import_module("hewitt.node").Node
    async with ActorSystem(name) as system:
        node = await node_class.start(
            system, host=_nodes.HOST, port=0, cluster=CLUSTER, secret=SECRET
        )
        try:
            yield node
        finally:
            await node.stop()


def _dump(node_id: NodeId) -> str:
    return json.dumps(
        {
            "system": node_id.system,
            "host": node_id.host,
            "port": node_id.port,
            "incarnation": node_id.incarnation,
        }
    )


def _load(text: str) -> NodeId:
    return NodeId(**json.loads(text))


async def _tell_all(counter: ActorRef[Any], n: int) -> None:
    """Send ``counter`` ``n`` ints (``await send``: it waits only while the
    link's send queue is full, as the floor awaits ``drain()`` only above the
    high-water mark); return once it has handled them all."""
    send = counter.send
    for i in range(n):
        await send(i)
    count = await counter.ask(COUNT, timeout=None)
    if count != n:
        raise AssertionError(f"the counter got {count} of {n} messages")


async def node_ask(n: int) -> Metrics:
    async with _nodes.peer(_MODULE, "serve") as peer, _node("bench-a") as node:
        ref: ActorRef[Any] = await node.spawn(_load(peer.ready), _ECHO, name="echo")
        ask = ref.ask
        await ask(-1)  # not timed: the first round trip
        latencies = [0] * n
        t0 = time.perf_counter()
        for i in range(n):
            start = _ns()
            if await ask(i) != i:
                raise AssertionError(f"round trip {i}: wrong reply")
            latencies[i] = _ns() - start
        elapsed = time.perf_counter() - t0
        return {"rt_per_s": n / elapsed, **latency_metrics(latencies)}


async def node_tell(n: int) -> Metrics:
    async with _nodes.peer(_MODULE, "serve") as peer, _node("bench-a") as node:
        counter: ActorRef[Any] = await node.spawn(_load(peer.ready), _COUNTER, name="counter")
        t0 = time.perf_counter()
        await _tell_all(counter, n)
        return {"msgs_per_s": n / (time.perf_counter() - t0)}


async def node_scale(n: int) -> Metrics:
    return await _nodes.scale(n, [_MODULE, "serve"], [_MODULE, "source", str(n)])


# The children.


async def _serve() -> None:
    async with _node("bench-b") as node:
        await _nodes.serve(_dump(node.node_id))


async def _source(n: int, receiver: NodeId) -> None:
    async with _node("bench-a") as node:
        counter: ActorRef[Any] = await node.spawn(receiver, _COUNTER, name="counter")
        await _nodes.source(lambda: _tell_all(counter, n))


def _run(main: Coroutine[Any, Any, None]) -> None:
    if loop_choice() == "asyncio":
        with asyncio_runner() as runner:
            runner.run(main)
    else:
        hewitt.run(main)


def main(argv: list[str]) -> None:
    match argv:
        case ["serve"]:
            _run(_serve())
        case ["source", n, receiver]:
            _run(_source(int(n), _load(receiver)))
        case _:
            raise SystemExit(f"usage: python -m {_MODULE} serve | source N NODE_ID_JSON")


if __name__ == "__main__":
    main(sys.argv[1:])
