"""A cluster node in a process of its own (what ``hewitt node`` runs).

It starts an ActorSystem, calls the setup hook (``module:function``, given
the system: register message types, install persistence, spawn actors),
starts the node, joins the seed (or, with no seed, is one), prints one line
``ready <system> <host> <port> <incarnation>`` on standard output, and
serves until its standard input closes (``--until-stdin-closes``, how a
parent that supervises it makes sure it never outlives the parent), until
SIGTERM/SIGINT, or until its system stops. The cluster secret comes from the
environment (``HEWITT_CLUSTER_SECRET``), never from the command line, where
other users could read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from hewitt import ActorSystem, HewittError, NodeId
from hewitt._runtime._loops import run

from ._setup import SECRET_VARIABLE, finish, run_setup

if TYPE_CHECKING:
    from hewitt.node import NodeConfig


def parse_seed(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--seed {text!r}: expected HOST:PORT")
    return host, int(port)


def parser(prog: str = "hewitt node") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a hewitt cluster node: a seed (no --seed) or a member of one.",
    )
    parser.add_argument("--name", default="node", help="the actor system's name")
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="the port (default: any free one)")
    parser.add_argument("--cluster", default="hewitt", help="the cluster's name")
    parser.add_argument("--seed", type=parse_seed, default=None, help="HOST:PORT of the seed")
    parser.add_argument("--role", default="", help="free text the seed records")
    parser.add_argument("--setup", default=None, help="module:function called with the system")
    parser.add_argument("--down-after", type=float, default=None, help="the down timeout (s)")
    parser.add_argument("--until-stdin-closes", action="store_true", help=argparse.SUPPRESS)
    return parser


async def serve(args: argparse.Namespace) -> None:
    from hewitt.node import NodeConfig

    from ._membership import register_types

    secret = os.environ.pop(SECRET_VARIABLE, None)  # not for the processes this one starts
    config = NodeConfig() if args.down_after is None else NodeConfig(down_after=args.down_after)
    teardown = None
    try:
        async with ActorSystem(args.name) as system:
            register_types(system)
            if args.setup:
                teardown = await run_setup(args.setup, system)
            await _serve(system, args, secret, config)
    finally:
        if teardown is not None:
            await finish(teardown)


async def _serve(
    system: ActorSystem, args: argparse.Namespace, secret: str | None, config: NodeConfig
) -> None:
    from hewitt.node import Node

    from ._membership import MembershipAgent, MembershipService, View

    node = await Node.start(
        system,
        host=args.host,
        port=args.port,
        cluster=args.cluster,
        secret=secret,
        config=config,
    )
    seed_ref = None
    if args.seed is not None:
        seed_node = await node.connect(*args.seed)
        seed_ref = await node.lookup(seed_node, "/system/membership")
        if seed_ref is None:
            raise SystemExit(f"{seed_node} is not a seed (no /system/membership)")
    joined: asyncio.Future[View] = asyncio.get_running_loop().create_future()
    system.spawn_system_actor(
        MembershipAgent, node, seed_ref, args.role, joined, name="membership-agent"
    )
    if seed_ref is None:
        system.spawn_system_actor(MembershipService, node, name="membership")
    await asyncio.wait_for(joined, max(60.0, node.config.down_after * 3))  # ready: joined
    me: NodeId = node.node_id
    print(f"ready {me.system} {me.host} {me.port} {me.incarnation}", flush=True)
    await _until_told_to_stop(system, args.until_stdin_closes)


async def _until_told_to_stop(system: ActorSystem, watch_stdin: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, request_stop)
    if watch_stdin:
        global _STOP
        _STOP = lambda: loop.call_soon_threadsafe(request_stop)  # noqa: E731
    terminated = asyncio.ensure_future(system.wait_terminated())
    await asyncio.wait([stop, terminated], return_when=asyncio.FIRST_COMPLETED)
    terminated.cancel()


def _exit_when_stdin_closes() -> None:
    """Until the node is ready (its setup, its join), a closed stdin, that is
    a parent gone, ends the process at once; after that, serve() stops it
    gracefully."""

    def watch() -> None:
        with contextlib.suppress(OSError, ValueError):
            while os.read(sys.stdin.fileno(), 65536):
                pass
        stop = _STOP
        if stop is None:
            os._exit(1)
        with contextlib.suppress(RuntimeError):  # its loop is closed already
            stop()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


#: set once the node serves: stops it (from any thread)
_STOP: Any = None


def main(argv: list[str] | None = None, prog: str = "hewitt node") -> int:
    args = parser(prog).parse_args(argv)
    if args.until_stdin_closes:
        _exit_when_stdin_closes()
    try:
        run(serve(args))  # on uvloop when installed
    except KeyboardInterrupt:
        return 130
    except (OSError, TimeoutError, HewittError) as exc:
        where = f" (seed {args.seed[0]}:{args.seed[1]})" if args.seed else ""
        print(f"{prog}: node {args.name}{where}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hewitt.cluster._worker"))
