"""A parent on node A supervises its child on node B across the link."""

from __future__ import annotations

from typing import Any

import pytest

from hewitt import Actor, ActorRef, Directive, SupervisorStrategy, Terminated
from hewitt.node import Node
from hewitt.testing import TestProbe
from tests.integration.nodes.actors import Counter


class Parent(Actor[Any]):
    """Starts its child on ``target`` and reports the child's final stop."""

    def __init__(
        self, node: Node, target: Any, strategy: SupervisorStrategy, probe: ActorRef[Any]
    ) -> None:
        self.node = node
        self.target = target
        self.strategy = strategy
        self.probe = probe

    async def receive(self, message: Any) -> None:
        if message == "start":
            child = await self.node.spawn(
                self.target, Counter, parent=self.context.self, strategy=self.strategy
            )
            self.context.watch(child)
            self.context.reply(child)
        elif isinstance(message, Terminated):
            self.probe.tell(("child stopped", message.ref))


async def _parent_and_child(
    a: Node, b: Node, strategy: SupervisorStrategy
) -> tuple[ActorRef[Any], ActorRef[Any], TestProbe]:
    probe = TestProbe(a.system)
    parent = a.system.spawn(Parent, a, b.node_id, strategy, probe.ref)
    child: ActorRef[Any] = await parent.ask("start")
    assert child.node == b.node_id
    return parent, child, probe


async def test_a_remote_child_is_restarted_one_for_one_then_given_up(
    two_nodes: tuple[Node, Node],
) -> None:
    a, b = two_nodes
    strategy = SupervisorStrategy.one_for_one(max_restarts=2, within=600, poison_threshold=1)
    _, child, probe = await _parent_and_child(a, b, strategy)
    for _ in range(3):
        child.tell("inc")
    assert await child.ask("get") == 3
    child.tell("crash")
    assert await child.ask("get") == 0  # restarted over there: a fresh instance, same ref
    child.tell("inc")
    child.tell("crash")
    assert await child.ask("get") == 0
    assert b.system.statistics().restarts == 2
    child.tell("crash")  # a third restart within the window: the host gives up
    assert await probe.expect_message(tuple, within=30) == ("child stopped", child)


async def test_the_remote_child_uses_the_parents_decider(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    strategy = SupervisorStrategy.one_for_one(
        decider={ValueError: Directive.RESUME}, poison_threshold=1
    )
    _, child, _ = await _parent_and_child(a, b, strategy)
    child.tell("inc")
    child.tell("bad")  # ValueError: resumed, the count kept
    assert await child.ask("get") == 1
    child.tell("crash")  # RuntimeError: not in the mapping, restarted
    assert await child.ask("get") == 0


async def test_a_remote_child_stops_with_its_parent(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    parent, child, _ = await _parent_and_child(a, b, SupervisorStrategy())
    local = b.system.lookup(child.path)
    assert local is not None and local == child
    watcher = TestProbe(b.system)
    watcher.watch(local)
    parent.stop()
    await watcher.expect_terminated(local, within=30)


async def test_a_remote_child_stops_when_its_parents_node_goes_down(
    two_nodes: tuple[Node, Node],
) -> None:
    a, b = two_nodes
    _, child, _ = await _parent_and_child(a, b, SupervisorStrategy())
    local = b.system.lookup(child.path)
    assert local is not None
    watcher = TestProbe(b.system)
    watcher.watch(local)
    await a.stop()
    await watcher.expect_terminated(local, within=30)


async def test_a_decider_function_cannot_cross(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    strategy = SupervisorStrategy(decider=lambda exc: Directive.STOP)
    with pytest.raises(ValueError, match="cannot cross nodes"):
        await a.spawn(b.node_id, Counter, parent=a.system.spawn(Counter), strategy=strategy)
