"""Placement policies: on which member a cluster spawn puts an actor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hewitt import NodeId
from hewitt.node import Node


class Placement(Protocol):
    """Chooses a node among ``members`` (never empty) for the next spawn."""

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId: ...


class RoundRobinPlacement:
    """Each spawn on the next member, in turn."""

    def __init__(self) -> None:
        self._next = 0

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId:
        ordered = sorted(members, key=str)
        chosen = ordered[self._next % len(ordered)]
        self._next += 1
        return chosen


class LeastLoaded:
    """The member with the fewest live actors (each is asked, in parallel)."""

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId:
        import asyncio

        loads = await asyncio.gather(*(node.load(member) for member in members))
        return min(zip(members, loads, strict=True), key=lambda pair: pair[1].live_actors)[0]


class Pinned:
    """Always ``target`` (which must be a member)."""

    def __init__(self, target: NodeId) -> None:
        self.target = target

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId:
        if self.target not in members:
            raise LookupError(f"{self.target} is not a member of the cluster")
        return self.target
