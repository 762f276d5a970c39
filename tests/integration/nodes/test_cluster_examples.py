"""examples/chat_cluster.py: the chat room's presence across nodes, driven by watch."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.examples_loader import EXAMPLES, load


async def test_chat_room_members_on_other_nodes_go_offline_by_watch() -> None:
    report = await load("chat_cluster").main(down_after=2.0)
    assert report.online_after_join == "alice,bob,carol,dave"
    assert report.bob.why == "disconnected"
    assert (report.carol.why, report.dave.why) == ("NodeDown", "NodeDown")
    assert report.online_at_end == "alice"
    hellos = sorted(f.user_id for f in report.frames if f.text == "alice: hello")
    assert hellos == ["alice", "bob", "carol", "dave"]
    assert [(f.user_id, f.text) for f in report.frames[4:]] == [
        ("bob", None),
        ("alice", "alice: anyone here?"),
    ]


def test_chat_cluster_runs_as_a_script() -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "chat_cluster.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "carol is offline: NodeDown; dave is offline: NodeDown" in completed.stdout
    assert "Traceback" not in completed.stderr


async def test_the_guides_example_spawns_asks_watches_across_nodes() -> None:
    lines = await load("nodes_hello").main()
    assert lines == [
        "spawned /user/greeter on b",
        "SHOUT",
        "hello, world, from b",
        "watch: NodeDown",
        "ask: NodeDown",
    ]


def test_the_guides_example_runs_as_a_script() -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "nodes_hello.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1] == "ask: NodeDown"
