"""hewitt on Ray against plain Ray actors, in the same run (issue 13).

    python -m benchmarks.ray_bench [--quick] [--json FILE]

Starts its own Ray cluster on this machine (a head on 127.0.0.2 and a second
raylet on 127.0.0.3, as the tests do), deploys hewitt on it (one NodeHost per
raylet), and measures:

- ``ask``: sequential request/reply from the driver to an actor on the other
  raylet. Plain Ray: ``ray.get(actor.echo.remote(i))``. hewitt:
  ``ref.ask_blocking(i)`` to an ``Echo`` on the host of the other raylet.
  calls/s and p50.
- ``ask-async``: the same hewitt asks from a coroutine on the client's own
  loop (async driver code: no thread hop), against the same Ray figures.
- ``tell``: N one-way messages between two actors on two raylets, then one
  round trip to know they have all been handled. Plain Ray: an actor calls
  ``other.count.remote(i)`` N times (fire and forget), then ``ray.get`` of a
  final call. hewitt: an actor on one host tells a ``Counter`` on the other
  N ints (``await ref.send``), then asks it for its count.

The floor is plain Ray doing the same work, the leanest way Ray offers
(actor method calls, no serialization beyond Ray's own). Prints a table and
writes JSON; quote the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEAD, WORKER = "127.0.0.2", "127.0.0.3"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HEAD, 0))
        return int(sock.getsockname()[1])


def _ray_cli(env: dict[str, str], *arguments: str, check: bool = True) -> None:
    ray = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray), *arguments], env=env, check=check, capture_output=True, timeout=180)


def run(quick: bool) -> list[dict[str, Any]]:
    import ray

    import hewitt.ray as hewitt_ray

    temp = Path("/tmp") / f"hewitt-ray-bench-{os.getpid()}"
    home = temp / "home"
    home.mkdir(parents=True)
    env = dict(
        os.environ,
        HOME=str(home),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    )
    port = _free_port()
    common = ["--temp-dir", str(temp / "ray"), "--disable-usage-stats", "--num-cpus", "1"]
    records: list[dict[str, Any]] = []
    try:
        _ray_cli(env, "start", "--head", "--node-ip-address", HEAD, "--port", str(port),
                 "--include-dashboard=false", *common)  # fmt: skip
        _ray_cli(env, "start", "--address", f"{HEAD}:{port}", "--node-ip-address", WORKER,
                 *common)  # fmt: skip
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        ray.init(
            address=f"{HEAD}:{port}",
            _node_ip_address=HEAD,
            namespace="bench",
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": env["PYTHONPATH"]}},
        )
        client = hewitt_ray.start(2, namespace="bench", setup="benchmarks.ray_actors:setup")
        try:
            records = _measure(client, quick)
        finally:
            hewitt_ray.shutdown("bench")
            ray.shutdown()
    finally:
        _ray_cli(env, "stop", "--force", check=False)
        shutil.rmtree(temp, ignore_errors=True)
    return records


def _measure(client: Any, quick: bool) -> list[dict[str, Any]]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    import hewitt.ray as hewitt_ray
    from benchmarks.ray_actors import Run, setup

    setup(client.system)
    n_ask = 2000 if quick else 10000
    n_tell = 20000 if quick else 200000
    other = next(n for n in client.hosts if n.host == WORKER)
    worker_ray_node = next(
        ray_node for _, (node, ray_node, _) in client.member.hosts.items() if node == other
    )
    here = NodeAffinitySchedulingStrategy(worker_ray_node, soft=False)

    @ray.remote(num_cpus=0)
    class RayEcho:
        def echo(self, i: int) -> int:
            return i

    @ray.remote(num_cpus=0)
    class RayCounter:
        def __init__(self) -> None:
            self.n = 0

        def count(self, i: int) -> None:
            self.n += 1

        def total(self) -> int:
            return self.n

    @ray.remote(num_cpus=0)
    class RaySender:
        def send(self, counter: Any, n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                counter.count.remote(i)
            assert ray.get(counter.total.remote()) == n
            return time.perf_counter() - start

    records: list[dict[str, Any]] = []

    def ask_metrics(call: Any, n: int) -> dict[str, float]:
        call(-1)
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter_ns()
            if call(i) != i:
                raise AssertionError("wrong reply")
            latencies.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - start
        return {"calls_per_s": n / elapsed, "p50_us": statistics.median(latencies) / 1000}

    echo = RayEcho.options(scheduling_strategy=here).remote()  # type: ignore[attr-defined]
    ray_ask = ask_metrics(lambda i: ray.get(echo.echo.remote(i)), n_ask)
    records.append({"bench": "ask", "impl": "ray", **ray_ask})
    hewitt_echo = client.spawn("benchmarks.node_actors:Echo", placement=hewitt_ray.Pinned(other))
    hewitt_ask = ask_metrics(lambda i: hewitt_echo.ask_blocking(i, timeout=30), n_ask)
    records.append({"bench": "ask", "impl": "hewitt", **hewitt_ask})

    async def async_asks() -> dict[str, float]:
        """The same asks from a coroutine on the client's loop (async driver code)."""
        ask = hewitt_echo.ask
        await ask(-1)
        latencies = []
        start = time.perf_counter()
        for i in range(n_ask):
            t0 = time.perf_counter_ns()
            if await ask(i) != i:
                raise AssertionError("wrong reply")
            latencies.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - start
        return {"calls_per_s": n_ask / elapsed, "p50_us": statistics.median(latencies) / 1000}

    records.append({"bench": "ask-async", "impl": "hewitt", **client.member.run(async_asks())})
    records.append({"bench": "ask-async", "impl": "ray", **ray_ask})

    first = next(n for n in client.hosts if n != other)
    first_ray_node = next(
        ray_node for _, (node, ray_node, _) in client.member.hosts.items() if node == first
    )
    counter = RayCounter.options(scheduling_strategy=here).remote()  # type: ignore[attr-defined]
    sender = RaySender.options(  # type: ignore[attr-defined]
        scheduling_strategy=NodeAffinitySchedulingStrategy(first_ray_node, soft=False)
    ).remote()
    seconds = ray.get(sender.send.remote(counter, n_tell), timeout=600)
    records.append({"bench": "tell", "impl": "ray", "msgs_per_s": n_tell / seconds})
    hewitt_counter = client.spawn(
        "benchmarks.node_actors:Counter", placement=hewitt_ray.Pinned(other)
    )
    hewitt_sender = client.spawn("benchmarks.ray_actors:Sender", placement=hewitt_ray.Pinned(first))
    seconds = hewitt_sender.ask_blocking(Run(hewitt_counter, n_tell), timeout=600)
    records.append({"bench": "tell", "impl": "hewitt", "msgs_per_s": n_tell / seconds})
    return records


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    records = run(args.quick)
    by = {(r["bench"], r["impl"]): r for r in records}
    print(f"{'bench':6} {'metric':12} {'hewitt':>10} {'ray':>10} {'hewitt/ray':>11}")
    for bench, metric, lower in (
        ("ask", "calls_per_s", False),
        ("ask", "p50_us", True),
        ("ask-async", "calls_per_s", False),
        ("ask-async", "p50_us", True),
        ("tell", "msgs_per_s", False),
    ):
        h, r = by[(bench, "hewitt")][metric], by[(bench, "ray")][metric]
        ratio = r / h if lower else h / r
        print(f"{bench:6} {metric:12} {h:10.1f} {r:10.1f} {ratio:10.2f}x")
    print("targets (issue 13): ask calls/s >= 10x Ray's; ask p50 <= 0.2x Ray's")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
