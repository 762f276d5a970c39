"""What a node publishes on its system's event stream about its peers."""

from __future__ import annotations

from dataclasses import dataclass

from hewitt import NodeId


@dataclass(frozen=True, slots=True)
class PeerUp:
    """Published on the event stream: a link to ``node`` is up."""

    node: NodeId


@dataclass(frozen=True, slots=True)
class PeerSuspect:
    """Published: ``node`` is suspected (connection lost or heartbeats late)."""

    node: NodeId


@dataclass(frozen=True, slots=True)
class PeerDown:
    """Published: ``node`` (that incarnation) is down for good, and why."""

    node: NodeId
    reason: str
