"""Fixtures of the node tests: nodes in this process, and nodes in processes
of their own (``node_process``) that the tests can kill, stop and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hewitt import ActorSystem, NodeId
from hewitt.node import Node, NodeConfig
from tests.integration.nodes.actors import register

ROOT = Path(__file__).resolve().parents[3]
SECRET = "test-secret"
#: settings that make detection quick enough for a test, with margins that
#: hold on a slow machine (the waits are tied to events, not to these times)
FAST = NodeConfig(heartbeat_interval=0.1, acceptable_pause=0.5, down_after=2.0)


@dataclass
class NodeProcess:
    """A node in a child process (see worker.py)."""

    name: str
    process: subprocess.Popen[str]
    node: NodeId
    stopped: bool = field(default=False)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)
        self.stopped = False

    def close(self) -> None:
        if self.stopped:
            self.resume()
        assert self.process.stdin is not None and self.process.stdout is not None
        if self.process.poll() is None:
            self.process.stdin.close()  # the worker exits when its stdin closes
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        self.process.stdin.close()
        self.process.stdout.close()


def start_node_process(name: str, port: int = 0, down_after: float = 5.0) -> NodeProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.nodes.worker",
            name,
            SECRET,
            str(port),
            str(down_after),
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the node listens (or the process dies)
    if not line.startswith("ready "):
        process.kill()
        process.wait(15)
        process.stdin.close()  # type: ignore[union-attr]
        process.stdout.close()
        raise RuntimeError(f"node process {name} did not start: {line!r}")
    _, system, host, port_text, incarnation = line.split()
    return NodeProcess(name, process, NodeId(system, host, int(port_text), int(incarnation)))


@pytest.fixture
def node_process() -> Iterator[Callable[..., NodeProcess]]:
    started: list[NodeProcess] = []

    def start(name: str, port: int = 0, down_after: float = 5.0) -> NodeProcess:
        child = start_node_process(name, port, down_after)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()


async def start_node(
    name: str, config: NodeConfig = FAST, **options: object
) -> tuple[ActorSystem, Node]:
    system = ActorSystem(name)
    await system.start()
    register(system)
    node = await Node.start(system, secret=SECRET, cluster="test", config=config, **options)  # type: ignore[arg-type]
    return system, node


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[Node, Node]]:
    a_system, a = await start_node("a")
    b_system, b = await start_node("b")
    try:
        yield a, b
    finally:
        await a_system.shutdown()
        await b_system.shutdown()
