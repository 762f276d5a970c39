"""A model server on a Ray cluster (seed 002: "the same pattern scales from a
laptop to a thousand-node cluster"), with a host killed mid-run.

One ``ModelServer`` per hewitt host (a small logistic regression, trained with
numpy at start on seeded data), a round-robin ``Group`` router in the driver,
and clients asking from several Ray tasks. After the driver's own
``kill_after``-th answer, one NodeHost is killed: the asks in flight to it
fail (``NodeUnreachable``), the router drops the routee (its watch), Ray
restarts the host, the new incarnation joins (``MemberUp``), a new server is
spawned there and added to the router, and requests keep being served. Every
request is answered or fails explicitly: none is lost.

Run it on a Ray cluster (``ray start --head`` first) with
``python examples/model_server.py``; the test suite runs it on its own
two-raylet cluster (``tests/integration/ray/test_model_server.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

import hewitt
import hewitt.ray as hewitt_ray
from hewitt.cluster import MemberUp
from hewitt.routing import AddRoutee, Group, RoundRobin

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Predict:
    features: list[float]


@dataclass(frozen=True)
class Prediction:
    label: int
    probability: float
    host: str


def setup(system: hewitt.ActorSystem) -> None:
    """Every node's setup (the hosts and the tasks import this module as
    ``model_server``)."""
    system.codec.register(Predict, name="model.Predict")
    system.codec.register(Prediction, name="model.Prediction")


def train(seed: int = 7, samples: int = 2000, features: int = 4) -> np.ndarray:
    """Logistic regression by gradient descent on data whose label is the sign
    of a fixed linear function of the features (plus noise)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features))
    truth = np.arange(1, features + 1, dtype=float)
    y = (x @ truth + rng.normal(scale=0.5, size=samples) > 0).astype(float)
    weights = np.zeros(features)
    for _ in range(300):
        p = 1 / (1 + np.exp(-(x @ weights)))
        weights -= 0.5 * x.T @ (p - y) / samples
    return weights


class ModelServer(hewitt.Actor[Predict]):
    def __init__(self) -> None:
        self.weights = np.zeros(4)
        self.host = ""

    async def pre_start(self) -> None:
        setup(self.context.system)  # wherever it runs, its messages can cross
        self.host = self.context.system.name
        # Trained on a thread: the node's loop (its heartbeats, the other
        # actors) goes on meanwhile; messages wait until pre_start is done.
        self.weights = await asyncio.to_thread(train)

    def receive(self, message: Predict) -> None:
        z = float(np.dot(self.weights, message.features))
        probability = 1 / (1 + np.exp(-z))
        self.context.reply(Prediction(int(probability > 0.5), float(probability), self.host))


@dataclass(frozen=True)
class Report:
    answered: int
    failed: int
    lost: int
    by_host: dict[str, int]
    killed: str
    rejoined: str
    #: of 50 requests made once the new incarnation has rejoined, those answered
    served_after: int
    #: why the others failed (exception type names)
    failed_after: tuple[str, ...] = ()


@ray.remote(num_cpus=0)  # the raylets' CPUs are the hosts'
def ask_many(router: Any, count: int, seed: int) -> tuple[int, int, dict[str, int]]:
    """A client in a Ray task: ``count`` asks through the router."""
    setup(hewitt_ray.process_client(router.namespace).system)
    rng = np.random.default_rng(seed)
    answered = failed = 0
    by_host: dict[str, int] = {}
    for _ in range(count):
        try:
            prediction = router.ask(Predict(rng.normal(size=4).tolist()), timeout=30)
        except hewitt.HewittError:  # NodeUnreachable, AskTimeout, DeliveryError: explicit
            failed += 1
        else:
            answered += 1
            by_host[prediction.host] = by_host.get(prediction.host, 0) + 1
    return answered, failed, by_host


def main(
    client: hewitt_ray.RayClient, *, tasks: int = 3, per_task: int = 300, kill_after: int = 100
) -> Report:
    setup(client.system)
    hosts = client.wait_for_hosts(2)
    servers = [
        client.spawn("model_server:ModelServer", placement=hewitt_ray.Pinned(node))
        for node in hosts
    ]
    router = client.system.spawn(Group, RoundRobin(), servers)
    portable = hewitt_ray.PortableRef(router, namespace=client.member.namespace)
    joined = threading.Event()
    rejoined: list[str] = []

    class Rejoin(hewitt.Actor[MemberUp]):
        """A host that (re)joins gets a model server, added to the router."""

        async def receive(self, message: MemberUp) -> None:
            if not isinstance(message, MemberUp):
                return  # the router's answer to AddRoutee
            if message.node not in hosts and message.node.system.startswith("hewitt-host-"):
                server = await client.node.spawn(
                    message.node, "model_server:ModelServer", timeout=60
                )
                router.tell(AddRoutee(server))
                rejoined.append(str(message.node))
                joined.set()

    watcher = client.system.spawn(Rejoin)
    client.system.event_stream.subscribe(watcher, MemberUp)
    running = [ask_many.remote(portable, per_task, seed) for seed in range(tasks)]
    answered = failed = 0
    by_host: dict[str, int] = {}
    killed = ""
    rng = np.random.default_rng(99)
    for i in range(per_task):
        try:
            prediction = router.ask_blocking(Predict(rng.normal(size=4).tolist()), timeout=30)
        except hewitt.HewittError:
            failed += 1
        else:
            answered += 1
            by_host[prediction.host] = by_host.get(prediction.host, 0) + 1
        if i + 1 == kill_after:
            victim = hewitt_ray.host_handles(client.member.namespace)[0]
            killed = ray.get(victim.describe.remote(), timeout=30)[0]
            ray.kill(victim, no_restart=False)  # Ray restarts it: a new incarnation
    for task_answered, task_failed, task_hosts in ray.get(running, timeout=600):
        answered += task_answered
        failed += task_failed
        for host, count in task_hosts.items():
            by_host[host] = by_host.get(host, 0) + count
    joined.wait(120)
    total = per_task * (tasks + 1)
    served_after = 0
    failed_after: list[str] = []
    for _ in range(50):
        try:
            router.ask_blocking(Predict(rng.normal(size=4).tolist()), timeout=30)
        except hewitt.HewittError as exc:
            failed_after.append(f"{type(exc).__name__}: {exc}")
            continue
        served_after += 1
    lost = total - answered - failed
    return Report(
        answered,
        failed,
        lost,
        by_host,
        killed,
        ",".join(rejoined),
        served_after,
        tuple(failed_after),
    )


if __name__ == "__main__":
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    ray.init(
        address="auto", log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": python_path}}
    )
    sys.path.insert(0, str(HERE))
    ray_client = hewitt_ray.start()
    try:
        report = main(ray_client)
        print(report)
    finally:
        hewitt_ray.shutdown()
