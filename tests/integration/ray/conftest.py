"""A real Ray cluster on this machine for the Ray tests: a head on 127.0.0.2
and a second raylet on 127.0.0.3 (Ray replaces 127.0.0.1 with the host's
address, so every address here is another loopback one), with Ray's temp
dir and HOME inside the test's temp dir and usage stats off. Started once
for the session, and always stopped.

The Ray tests are marked ``ray``: ``make test`` runs them, and
``pytest -m "not ray"`` is the quick loop without them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"


@dataclass(frozen=True)
class RayCluster:
    address: str
    env: dict[str, str]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ray(env: dict[str, str], *arguments: str) -> None:
    ray = Path(sys.executable).with_name("ray")
    subprocess.run(
        [str(ray), *arguments], env=env, check=True, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    pytest.importorskip("ray")
    home = tmp_path_factory.mktemp("ray-home")
    temp = Path("/tmp") / f"hewitt-ray-{os.getpid()}"  # Ray's socket paths must stay short
    env = dict(
        os.environ,
        HOME=str(home),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "examples")]),
    )
    port = _free_port(HEAD_IP)
    common = ["--temp-dir", str(temp), "--disable-usage-stats", "--num-cpus", "1"]
    try:
        _ray(env, "start", "--head", "--node-ip-address", HEAD_IP, "--port", str(port),
             "--include-dashboard=false", *common)  # fmt: skip
        _ray(env, "start", "--address", f"{HEAD_IP}:{port}", "--node-ip-address", WORKER_IP,
             *common)  # fmt: skip
        yield RayCluster(f"{HEAD_IP}:{port}", env)
    finally:
        subprocess.run(
            [str(Path(sys.executable).with_name("ray")), "stop", "--force"],
            env=env,
            capture_output=True,
            timeout=180,
            check=False,
        )
        shutil.rmtree(temp, ignore_errors=True)
