"""A cluster on one machine: a seed node in this process and N worker nodes,
one process each, supervised by this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hewitt import Actor, ActorRef, ActorSystem, NodeId, SystemConfig
from hewitt.node import Node, NodeConfig

from ._membership import (
    Down,
    MemberDown,
    MembershipAgent,
    MembershipService,
    MemberUp,
    register_types,
)
from ._placement import Placement, RoundRobinPlacement
from ._setup import SECRET_VARIABLE, finish, run_setup

logger = logging.getLogger("hewitt.cluster")


@dataclass
class WorkerProcess:
    """One worker slot: its current process and node incarnation."""

    index: int
    name: str
    process: asyncio.subprocess.Process | None = None
    node: NodeId | None = None
    restarts: deque[float] = field(default_factory=deque)
    incarnations: list[NodeId] = field(default_factory=list)
    monitor: asyncio.Task[None] | None = None
    gave_up: bool = False


class _Tracker(Actor[Any]):
    def __init__(self, cluster: LocalCluster) -> None:
        self._cluster = cluster

    def receive(self, message: Any) -> None:
        self._cluster._membership_changed(message)


class LocalCluster:
    """``async with hewitt.cluster.local(n=2) as cluster:`` (see :func:`local`)."""

    def __init__(
        self,
        n: int | None = None,
        *,
        name: str = "hewitt",
        cluster: str = "local",
        secret: str | None = None,
        setup: str | None = None,
        host: str = "127.0.0.1",
        node_config: NodeConfig | None = None,
        system_config: SystemConfig | None = None,
        max_restarts: int = 10,
        within: float = 60.0,
        start_timeout: float = 120.0,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        setup_on_seed: bool = True,
    ) -> None:
        self.n = n if n is not None else (os.cpu_count() or 1)
        if self.n < 1:
            raise ValueError(f"a local cluster needs at least one worker, not {self.n}")
        self.name = name
        self.cluster = cluster
        self._secret = secret or secrets.token_hex(32)
        self.setup = setup
        self.host = host
        self.node_config = node_config or NodeConfig()
        self._system_config = system_config
        self.max_restarts = max_restarts
        self.within = within
        self.start_timeout = start_timeout
        self._python = python
        self._env = dict(env or {})
        self.setup_on_seed = setup_on_seed
        self._teardown: Callable[[], Any] | None = None
        self.workers = [WorkerProcess(i, f"{name}-{i + 1}") for i in range(self.n)]
        self.system: ActorSystem = None  # type: ignore[assignment]
        self.node: Node = None  # type: ignore[assignment]
        self._up: set[NodeId] = set()
        self._changed: asyncio.Event = asyncio.Event()
        self._closing = False
        self._placement: Placement = RoundRobinPlacement()
        self._readers: set[asyncio.Task[None]] = set()
        self._membership: ActorRef[Any] | None = None

    async def __aenter__(self) -> LocalCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    # ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the seed here and the workers, and wait until all have joined."""
        self.system = ActorSystem(f"{self.name}-seed", config=self._system_config)
        await self.system.start()
        try:
            register_types(self.system)
            if self.setup and self.setup_on_seed:
                self._teardown = await run_setup(self.setup, self.system)
            self.node = await Node.start(
                self.system,
                host=self.host,
                cluster=self.cluster,
                secret=self._secret,
                config=self.node_config,
            )
            tracker = self.system.spawn_system_actor(_Tracker, self, name="cluster-tracker")
            self.system.event_stream.subscribe(tracker, MemberUp)
            self.system.event_stream.subscribe(tracker, MemberDown)
            self.system.spawn_system_actor(
                MembershipAgent, self.node, None, "seed", name="membership-agent"
            )
            self._membership = self.system.spawn_system_actor(
                MembershipService, self.node, name="membership"
            )
            await asyncio.gather(*(self._start_worker(worker) for worker in self.workers))
            await self.wait_for_members(self.n + 1, timeout=self.start_timeout)
        except BaseException:
            await self.shutdown()
            raise

    async def _start_worker(self, worker: WorkerProcess) -> None:
        seed = self.node.node_id
        command = [
            self._python,
            "-m",
            "hewitt.cluster._worker",
            "--name",
            worker.name,
            "--seed",
            f"{seed.host}:{seed.port}",
            "--cluster",
            self.cluster,
            "--host",
            self.host,
            "--down-after",
            str(self.node_config.down_after),
            "--until-stdin-closes",
        ]
        if self.setup:
            command += ["--setup", self.setup]
        env = dict(os.environ)
        env.update(self._env)
        env[SECRET_VARIABLE] = self._secret
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
        )
        worker.process = process  # from now on shutdown() stops it, even mid-start
        assert process.stdout is not None
        try:
            text = await asyncio.wait_for(
                self._ready_line(worker, process.stdout), self.start_timeout
            )
        except BaseException:  # timed out, exited, or cancelled by shutdown()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
            raise
        _, system, host, port, incarnation = text.split()
        worker.node = NodeId(system, host, int(port), int(incarnation))
        worker.incarnations.append(worker.node)
        reader = asyncio.get_running_loop().create_task(self._drain_output(worker, process))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        worker.monitor = asyncio.get_running_loop().create_task(self._monitor(worker, process))

    async def _ready_line(self, worker: WorkerProcess, stdout: asyncio.StreamReader) -> str:
        """The worker's ``ready`` line; what its setup printed before it is logged."""
        while line := await stdout.readline():
            text = line.decode(errors="replace")
            if text.startswith("ready "):
                return text
            logger.info("%s: %s", worker.name, text.rstrip())
        raise RuntimeError(f"worker {worker.name} exited before it was ready")

    async def _drain_output(
        self, worker: WorkerProcess, process: asyncio.subprocess.Process
    ) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():  # a full pipe would block the worker
            logger.info("%s: %s", worker.name, line.decode(errors="replace").rstrip())

    async def _monitor(self, worker: WorkerProcess, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self._closing:
            return
        logger.warning("worker %s (%s) exited with %s", worker.name, worker.node, code)
        if worker.node is not None and self._membership is not None:
            self._membership.tell(Down(worker.node, f"its process exited with {code}"))
        while not self._closing:
            if not self._may_restart(worker):
                return
            try:
                await self._start_worker(worker)  # a new process: a new incarnation
                return
            except Exception:  # a failed start counts against the intensity too
                logger.exception("restarting worker %s failed", worker.name)
                await asyncio.sleep(min(5.0, self.within / max(1, self.max_restarts)))

    def _may_restart(self, worker: WorkerProcess) -> bool:
        """Count a restart; False (and the worker left down) past the intensity."""
        now = time.monotonic()
        worker.restarts.append(now)
        while worker.restarts and now - worker.restarts[0] > self.within:
            worker.restarts.popleft()
        if len(worker.restarts) <= self.max_restarts:
            return True
        worker.gave_up = True
        logger.error(
            "worker %s was restarted %d times within %g s: not restarted again",
            worker.name,
            len(worker.restarts),
            self.within,
        )
        return False

    # ------------------------------------------------------------------
    # Membership

    def _membership_changed(self, event: Any) -> None:
        if isinstance(event, MemberUp):
            self._up.add(event.node)
        elif isinstance(event, MemberDown):
            self._up.discard(event.node)
            # A worker declared down (it stopped answering) may still be running,
            # unaware: it is down for good, so its process goes too, and the
            # supervision starts a new incarnation.
            for worker in self.workers:
                process = worker.process
                if worker.node == event.node and process is not None and process.returncode is None:
                    logger.warning("worker %s was declared down: killing it", worker.name)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
        self._changed.set()

    @property
    def members(self) -> list[NodeId]:
        """The nodes up, as the seed decided (the seed included)."""
        return sorted(self._up, key=str)

    @property
    def worker_nodes(self) -> list[NodeId]:
        """The worker nodes up (the seed excluded)."""
        return [node for node in self.members if node != self.node.node_id]

    async def wait_for_members(
        self, count: int, timeout: float = 60.0, where: Callable[[NodeId], bool] | None = None
    ) -> list[NodeId]:
        """Wait until at least ``count`` members (matching ``where``) are up."""

        def matching() -> list[NodeId]:
            return [node for node in self.members if where is None or where(node)]

        async def wait() -> list[NodeId]:
            while len(found := matching()) < count:
                self._changed.clear()
                await self._changed.wait()
            return found

        return await asyncio.wait_for(wait(), timeout)

    # ------------------------------------------------------------------
    # Work

    async def spawn(
        self,
        actor: type[Any] | str,
        *args: Any,
        placement: Placement | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef[Any]:
        """Spawn on a worker chosen by ``placement`` (default: round robin)."""
        members = self.worker_nodes
        if not members:
            raise LookupError("no worker node is up")
        target = await (placement or self._placement).choose(members, self.node)
        return await self.node.spawn(target, actor, *args, name=name, **kwargs)

    def kill(self, index: int) -> NodeId:
        """SIGKILL worker ``index`` (it is restarted as a new incarnation)."""
        worker = self.workers[index]
        if worker.process is None or worker.node is None:
            raise LookupError(f"worker {index} is not running")
        worker.process.kill()
        return worker.node

    async def shutdown(self) -> None:
        """Stop the workers (closing their standard input), then the seed."""
        self._closing = True
        monitors = [worker.monitor for worker in self.workers if worker.monitor is not None]
        for monitor in monitors:
            monitor.cancel()  # a restart under way kills the process it started
        for monitor in monitors:
            with contextlib.suppress(BaseException):
                await monitor
        for worker in self.workers:
            process = worker.process
            if process is not None and process.returncode is None and process.stdin is not None:
                with contextlib.suppress(Exception):
                    process.stdin.close()
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in list(self._readers):
            reader.cancel()
        if self.system is not None:
            await self.system.shutdown()
        teardown, self._teardown = self._teardown, None
        if teardown is not None:
            await finish(teardown)


def local(n: int | None = None, **options: Any) -> LocalCluster:
    """A cluster of ``n`` worker node processes (default: one per core) and a
    seed node in this process, to use as ``async with local(n) as cluster``.

    The seed holds the membership; this process supervises the workers: a
    worker that dies is started again (a new incarnation, which joins again),
    up to ``max_restarts`` within ``within`` seconds. ``setup``
    (``"module:function"``) runs in every node, the seed included, with its
    ActorSystem before the node starts: register message types there.
    Options: see :class:`LocalCluster`.
    """
    return LocalCluster(n, **options)
