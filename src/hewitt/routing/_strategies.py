"""Routing strategies: configuration as data, and the per-router logic they create."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hewitt import ActorRef, ActorSystem

from ._messages import InvalidRouterConfig
from ._ring import HashKey, HashRing

#: The routees a router hands to :meth:`RoutingLogic.select`: never empty, and
#: a new tuple after every change, so ``routees is not last`` detects changes.
Routees = tuple[ActorRef[Any], ...]


class RoutingLogic(ABC):
    """The state of one strategy in one router (an index, a generator, a ring).

    Created by :meth:`RoutingStrategy.create_logic` when the router starts, and
    again when it is restarted; used only on the router's own handler.
    """

    __slots__ = ()

    @abstractmethod
    def select(self, message: Any, routees: Routees) -> ActorRef[Any] | None:
        """The routee that gets ``message``, or None for every routee.

        Called on the router's handler for each routed message, with at least
        one routee. Raising here sends the message to dead letters (the reason
        names the exception) instead of failing the router.
        """


class RoutingStrategy(ABC):
    """How a router picks the routee of each message: a frozen value.

    Subclass it (and :class:`RoutingLogic`) for a custom strategy.
    """

    __slots__ = ()

    @abstractmethod
    def create_logic(self, system: ActorSystem) -> RoutingLogic:
        """A fresh logic for one router of ``system`` (at its start and each restart)."""


# ----------------------------------------------------------------------------
# Round robin


class _RoundRobinLogic(RoutingLogic):
    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def select(self, message: Any, routees: Routees) -> ActorRef[Any]:
        i = self._next
        if i >= len(routees):
            i = 0
        self._next = i + 1
        return routees[i]


@dataclass(frozen=True, slots=True)
class RoundRobin(RoutingStrategy):
    """Each message to the next routee in order, wrapping around.

    Routees added later join the cycle at the end; after a removal the cycle
    goes on from the same position.
    """

    def create_logic(self, system: ActorSystem) -> RoutingLogic:
        """A logic with its own position in the cycle."""
        return _RoundRobinLogic()


# ----------------------------------------------------------------------------
# Random


class _RandomLogic(RoutingLogic):
    __slots__ = ("_choice",)

    def __init__(self, seed: int | None) -> None:
        self._choice = random.Random(seed).choice

    def select(self, message: Any, routees: Routees) -> ActorRef[Any]:
        return self._choice(routees)


@dataclass(frozen=True, slots=True)
class RandomRouting(RoutingStrategy):
    """Each message to a routee drawn uniformly at random.

    Attributes:
        seed: seeds the router's own generator (None: from the OS), so tests
            can fix the sequence. A restarted router starts the sequence again.
    """

    seed: int | None = None

    def __post_init__(self) -> None:
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise InvalidRouterConfig(
                f"RandomRouting.seed must be an int or None, got {self.seed!r}"
            )

    def create_logic(self, system: ActorSystem) -> RoutingLogic:
        """A logic with its own generator, seeded with ``seed``."""
        return _RandomLogic(self.seed)


# ----------------------------------------------------------------------------
# Smallest mailbox


class _SmallestMailboxLogic(RoutingLogic):
    __slots__ = ("_depth",)

    def __init__(self, system: ActorSystem) -> None:
        self._depth = system.mailbox_depth

    def select(self, message: Any, routees: Routees) -> ActorRef[Any]:
        depth_of = self._depth
        best: ActorRef[Any] | None = None
        best_depth = 0
        for ref in routees:
            if not ref.is_alive:  # stopped: its Terminated is on the way
                continue
            depth = depth_of(ref)
            if depth == 0:
                return ref
            if best is None or depth < best_depth:
                best = ref
                best_depth = depth
        # Every routee stopped: the runtime dead-letters what is sent to it.
        return best if best is not None else routees[0]


@dataclass(frozen=True, slots=True)
class SmallestMailbox(RoutingStrategy):
    """Each message to the routee with the fewest queued messages.

    Reads ``system.mailbox_depth(ref)`` of each routee (once per routee per
    message: the costliest strategy with many routees); ties go to the first
    in routing order, and an empty mailbox ends the scan. The message a
    routee is handling does not count, so a routee busy in a long handler
    with nothing queued looks idle.
    """

    def create_logic(self, system: ActorSystem) -> RoutingLogic:
        """A logic reading ``system``'s actor statistics."""
        return _SmallestMailboxLogic(system)


# ----------------------------------------------------------------------------
# Consistent hashing


def _path(ref: ActorRef[Any]) -> str:
    return ref.path


class _ConsistentHashingLogic(RoutingLogic):
    __slots__ = ("_key", "_members", "_ring")

    def __init__(self, key: Callable[[Any], HashKey], virtual_nodes: int) -> None:
        self._key = key
        self._ring: HashRing[ActorRef[Any]] = HashRing(virtual_nodes=virtual_nodes, node_id=_path)
        self._members: Routees = ()

    def _sync(self, routees: Routees) -> None:
        ring = self._ring
        current = set(routees)
        for ref in self._members:
            if ref not in current:
                ring.remove(ref)
        known = set(self._members)
        for ref in routees:
            if ref not in known:
                ring.add(ref)
        self._members = routees

    def select(self, message: Any, routees: Routees) -> ActorRef[Any]:
        if routees is not self._members:
            self._sync(routees)
        return self._ring.node_for(self._key(message))


@dataclass(frozen=True, slots=True)
class ConsistentHashing(RoutingStrategy):
    """Each message to the routee that owns its key on a hash ring.

    The same key always reaches the same routee while the routees do not
    change; adding a routee moves only the keys of the ring segments it takes
    (about 1/n of them, all to the new routee), removing one moves only its
    own keys. Routees are placed by their path, so routers in different
    processes (or a restarted pool, whose routee names are stable) agree.

    Attributes:
        key: message -> key (str, bytes or int), hashed with blake2b. A key
            function that raises sends the message to dead letters.
        virtual_nodes: points per routee on the ring (default 100; more
            points spread keys more evenly and cost more memory).
    """

    key: Callable[[Any], HashKey]
    virtual_nodes: int = 100

    def __post_init__(self) -> None:
        if not callable(self.key):
            raise InvalidRouterConfig(f"ConsistentHashing.key must be callable, got {self.key!r}")
        if (
            isinstance(self.virtual_nodes, bool)
            or not isinstance(self.virtual_nodes, int)
            or self.virtual_nodes < 1
        ):
            raise InvalidRouterConfig(
                f"ConsistentHashing.virtual_nodes must be an int >= 1, got {self.virtual_nodes!r}"
            )

    def create_logic(self, system: ActorSystem) -> RoutingLogic:
        """A logic with its own ring, kept in step with the routees."""
        return _ConsistentHashingLogic(self.key, self.virtual_nodes)


# ----------------------------------------------------------------------------
# Broadcast


class _BroadcastLogic(RoutingLogic):
    __slots__ = ()

    def select(self, message: Any, routees: Routees) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BroadcastRouting(RoutingStrategy):
    """Every message to every routee (each with the original sender)."""

    def create_logic(self, system: ActorSystem) -> RoutingLogic:
        """A logic that selects every routee."""
        return _BroadcastLogic()
