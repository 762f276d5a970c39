"""Fault injection between named nodes, for tests: drop, delay, duplicate or
blackhole the frames this node sends to (and reads from) another node, or
partition them (no traffic and no new connections either way from this side).

Faults are keyed by the other node's system name and apply to this node's
side of the link; a two-sided partition is ``partition(a, b)`` (module
function) or each side's ``faults.partition(name)``. Handshake bytes are
never altered (a partition refuses the connection instead), so a fault never
turns into an authentication failure.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._link import Connection, RemoteLink
    from ._node import Node

Write = Callable[[bytes], None]


@dataclass
class _Rule:
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    blackhole: bool = False
    partitioned: bool = False
    #: frames waiting out their delay, in order: (due, frame)
    delayed: deque[tuple[float, bytes]] = field(default_factory=deque)
    draining: bool = False


class FaultInjector:
    """One node's faults (``node.faults``). Nothing is injected until asked."""

    def __init__(self, node: Node, seed: int | None = None) -> None:
        self._node = node
        self._rules: dict[str, _Rule] = {}
        self._rng = random.Random(seed)
        #: frames dropped, blackholed or duplicated so far
        self.dropped = 0
        self.duplicated = 0

    def _rule(self, peer: str) -> _Rule:
        return self._rules.setdefault(peer, _Rule())

    def drop(self, peer: str, probability: float) -> None:
        """Drop each frame to ``peer`` with ``probability`` (a frame is a batch)."""
        self._rule(peer).drop = probability

    def duplicate(self, peer: str, probability: float) -> None:
        """Send each frame to ``peer`` twice with ``probability``."""
        self._rule(peer).duplicate = probability

    def delay(self, peer: str, seconds: float) -> None:
        """Hold each frame to ``peer`` for ``seconds`` (order is kept)."""
        self._rule(peer).delay = seconds

    def blackhole(self, peer: str) -> None:
        """Discard every frame to and from ``peer`` (heartbeats too), leaving
        the connection open: the other side sees silence, not a close."""
        self._rule(peer).blackhole = True

    def partition(self, peer: str) -> None:
        """Blackhole ``peer`` and refuse any new connection with it."""
        rule = self._rule(peer)
        rule.blackhole = True
        rule.partitioned = True

    def heal(self, peer: str | None = None) -> None:
        """Remove the faults towards ``peer`` (every peer: None)."""
        if peer is None:
            self._rules.clear()
        else:
            self._rules.pop(peer, None)

    def blocks(self, peer: str) -> bool:
        rule = self._rules.get(peer)
        return rule is not None and rule.partitioned

    def accept_inbound(self, link: RemoteLink) -> bool:
        if not self._rules:
            return True
        rule = self._rules.get(link.node.system)
        return rule is None or not rule.blackhole

    def writer_for(self, link: RemoteLink, connection: Connection) -> Write:
        write: Write = connection.writer.write
        if not self._rules:
            return write
        rule = self._rules.get(link.node.system)
        if rule is None:
            return write
        return lambda frame: self._write(rule, write, frame)

    def _write(self, rule: _Rule, write: Write, frame: bytes) -> None:
        rng = self._rng
        if rule.blackhole or (rule.drop and rng.random() < rule.drop):
            self.dropped += 1
            return
        copies = 1
        if rule.duplicate and rng.random() < rule.duplicate:
            copies = 2
            self.duplicated += 1
        if not rule.delay:
            for _ in range(copies):
                write(frame)
            return
        loop = self._node.system._loop
        for _ in range(copies):
            rule.delayed.append((loop.time() + rule.delay, frame))
        if not rule.draining:
            rule.draining = True
            loop.call_at(rule.delayed[0][0], self._release, rule, write)

    def _release(self, rule: _Rule, write: Write) -> None:
        loop = self._node.system._loop
        now = loop.time()
        while rule.delayed and rule.delayed[0][0] <= now:
            write(rule.delayed.popleft()[1])
        if rule.delayed:
            loop.call_at(rule.delayed[0][0], self._release, rule, write)
        else:
            rule.draining = False


def partition(a: Node, b: Node) -> None:
    """Cut ``a`` and ``b`` apart, both ways."""
    a.faults.partition(b.system.name)
    b.faults.partition(a.system.name)
