"""A node in a process of its own, for the node tests.

    python -m tests.integration.nodes.worker NAME SECRET [PORT] [DOWN_AFTER]

Starts an ActorSystem named NAME as a node on 127.0.0.1 (PORT, or any free
one), spawns an ``Echo`` at ``/user/echo`` and a ``Sequence`` at
``/user/sequence``, prints ``ready <system> <host> <port> <incarnation>``
and serves until its standard input closes (so it never outlives the test).
"""

from __future__ import annotations

import asyncio
import sys

from hewitt import ActorSystem
from hewitt.node import Node, NodeConfig
from tests.integration.nodes.actors import Echo, Sequence, register


async def main(name: str, secret: str, port: int, down_after: float) -> None:
    async with ActorSystem(name) as system:
        register(system)
        config = NodeConfig(down_after=down_after, heartbeat_interval=0.1)
        node = await Node.start(system, port=port, secret=secret, cluster="test", config=config)
        system.spawn(Echo, name="echo")
        system.spawn(Sequence, name="sequence")
        me = node.node_id
        print(f"ready {me.system} {me.host} {me.port} {me.incarnation}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the test closes our stdin


if __name__ == "__main__":
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    down = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    asyncio.run(main(sys.argv[1], sys.argv[2], port, down))
