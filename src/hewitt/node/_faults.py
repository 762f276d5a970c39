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
    link: RemoteLink | None = None


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
        """Remove the faults towards ``peer`` (every peer: None); frames still
        held by a delay are written at once, in order, before any new one."""
        peers = list(self._rules) if peer is None else [peer]
        for name in peers:
            rule = self._rules.pop(name, None)
            if rule is not None and rule.delayed:
                self._release(rule, everything=True)

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
        return lambda frame: self._write(rule, link, write, frame)

    def _write(self, rule: _Rule, link: RemoteLink, write: Write, frame: bytes) -> None:
        rng = self._rng
        if rule.blackhole or (rule.drop and rng.random() < rule.drop):
            self.dropped += 1
            return
        copies = 1
        if rule.duplicate and rng.random() < rule.duplicate:
            copies = 2
            self.duplicated += 1
        if not rule.delay and not rule.delayed:
            for _ in range(copies):
                write(frame)
            return
        # Behind the frames still held (even once the delay is 0): order is kept.
        loop = self._node.system._loop
        for _ in range(copies):
            rule.delayed.append((loop.time() + rule.delay, frame))
        rule.link = link
        if not rule.draining:
            rule.draining = True
            loop.call_at(rule.delayed[0][0], self._release, rule)

    def _release(self, rule: _Rule, everything: bool = False) -> None:
        """Write the held frames that are due (all of them: ``everything``) to
        the link's current connection; with none, they are lost, as they would
        be on the wire."""
        loop = self._node.system._loop
        now = loop.time()
        link = rule.link
        connection = link.connection if link is not None else None
        while rule.delayed and (everything or rule.delayed[0][0] <= now):
            frame = rule.delayed.popleft()[1]
            if connection is not None and not connection.writer.transport.is_closing():
                connection.writer.write(frame)
            else:
                self.dropped += 1
        if rule.delayed:
            loop.call_at(rule.delayed[0][0], self._release, rule)
        else:
            rule.draining = False


def partition(a: Node, b: Node) -> None:
    """Cut ``a`` and ``b`` apart, both ways."""
    a.faults.partition(b.system.name)
    b.faults.partition(a.system.name)
