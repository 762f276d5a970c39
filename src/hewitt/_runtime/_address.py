"""Addresses: which node an actor lives on, and which actor it is there.

An address is plain data that can cross process boundaries (the kernel codec
encodes it with msgspec). A ref is an address plus the recipient that delivers
to it (a local cell, a link to another node, or dead letters).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: The path prefix of temporary refs (the reply addresses of asks).
TEMP_PREFIX = "/temp/"


@dataclass(frozen=True, slots=True)
class NodeId:
    """The identity of one actor system incarnation (a node).

    ``system`` is the system's name; ``host`` and ``port`` are where its
    transport listens (empty and 0 for a system that only lives in this
    process); ``incarnation`` is minted at random when the system is created,
    so that an address of a previous run of the same node never reaches the
    new one.
    """

    system: str
    host: str = ""
    port: int = 0
    incarnation: int = 0

    @staticmethod
    def mint(system: str, host: str = "", port: int = 0) -> NodeId:
        """A new node identity with a fresh random incarnation."""
        return NodeId(system, host, port, int.from_bytes(os.urandom(8), "big") >> 1)

    def __str__(self) -> str:
        where = f"@{self.host}:{self.port}" if self.host else ""
        return f"{self.system}{where}#{self.incarnation:x}"


@dataclass(frozen=True, slots=True)
class ActorAddress:
    """The serializable identity of an actor: its node, path and incarnation.

    ``uid`` is the actor's own incarnation: an actor started again at the
    same path gets a new one, so an old address never reaches the new actor.
    ``ActorSystem.resolve`` turns an address back into a ref.
    """

    node: NodeId
    path: str
    uid: int

    @property
    def system(self) -> str:
        """The name of the actor's system."""
        return self.node.system

    def __str__(self) -> str:
        return f"{self.node}{self.path}#{self.uid}"
