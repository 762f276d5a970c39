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
    """The member with the fewest live actors (each is asked, in parallel;
    one that does not answer within ``timeout`` seconds is passed over)."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId:
        import asyncio

        loads = await asyncio.gather(
            *(node.load(member, timeout=self.timeout) for member in members),
            return_exceptions=True,
        )
        answered = [
            (member, load.live_actors)
            for member, load in zip(members, loads, strict=True)
            if not isinstance(load, BaseException)
        ]
        if not answered:
            raise LookupError(f"none of the {len(members)} members answered for its load")
        return min(answered, key=lambda pair: pair[1])[0]


class Pinned:
    """Always ``target`` (which must be a member)."""

    def __init__(self, target: NodeId) -> None:
        self.target = target

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId:
        if self.target not in members:
            raise LookupError(f"{self.target} is not a member of the cluster")
        return self.target
