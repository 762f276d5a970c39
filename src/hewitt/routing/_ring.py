"""A consistent-hash ring with virtual nodes, stable across processes."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Generic, TypeVar

from ._messages import InvalidRouterConfig

T = TypeVar("T")

#: What a consistent-hashing key function may return.
HashKey = str | bytes | int


def key_bytes(key: HashKey) -> bytes:
    """The bytes a key hashes as: a str as UTF-8, an int as its decimal digits."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, int):
        return b"%d" % key
    raise TypeError(f"a hash key must be str, bytes or int, got {type(key).__qualname__}")


def stable_hash(data: bytes) -> int:
    """A 64-bit hash of ``data`` that is the same in every process (blake2b).

    Python's ``hash()`` of str and bytes is salted per process, so it cannot
    place keys on a ring that several processes (or a restart) must agree on.
    """
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


class HashRing(Generic[T]):
    """Nodes placed on a 64-bit ring at ``virtual_nodes`` points each.

    A key belongs to the node owning the first point at or after the key's
    hash (wrapping around). Points depend only on each node's id
    (``node_id(node)``, default ``str``), so every process builds the same
    ring from the same ids, and adding a node takes over only the ring
    segments that end at its points: only keys that move *to* it change
    owner. Removing a node gives its segments to the next points: only its own
    keys move.

    Membership changes rebuild the sorted point list (O(n·v log(n·v)));
    lookups are one hash and one binary search.
    """

    __slots__ = ("_entries", "_node_id", "_nodes", "_owners", "_points", "virtual_nodes")

    def __init__(
        self,
        nodes: Iterable[T] = (),
        *,
        virtual_nodes: int = 100,
        node_id: Callable[[T], str | bytes] = str,
    ) -> None:
        if (
            isinstance(virtual_nodes, bool)
            or not isinstance(virtual_nodes, int)
            or virtual_nodes < 1
        ):
            raise InvalidRouterConfig(
                f"HashRing.virtual_nodes must be an int >= 1, got {virtual_nodes!r}"
            )
        self.virtual_nodes = virtual_nodes
        self._node_id = node_id
        self._nodes: dict[bytes, T] = {}
        self._entries: list[tuple[int, bytes]] = []
        self._points: list[int] = []
        self._owners: list[T] = []
        for node in nodes:
            self._place(node)
        self._rebuild()

    @property
    def nodes(self) -> list[T]:
        """The nodes on the ring, in the order they were added."""
        return list(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        return any(node == member for member in self._nodes.values())

    def _id(self, node: T) -> bytes:
        ident = self._node_id(node)
        return ident.encode() if isinstance(ident, str) else ident

    def _place(self, node: T) -> None:
        ident = self._id(node)
        known = ident in self._nodes
        self._nodes[ident] = node  # same id: the new node takes the same points
        if not known:
            prefix = ident + b"#"
            self._entries.extend(
                (stable_hash(prefix + b"%d" % i), ident) for i in range(self.virtual_nodes)
            )

    def _rebuild(self) -> None:
        entries = self._entries
        entries.sort()
        nodes = self._nodes
        self._points = [point for point, _ in entries]
        self._owners = [nodes[ident] for _, ident in entries]

    def add(self, node: T) -> None:
        """Place ``node`` on the ring. A node with the id of one already there
        replaces it at the same points (no key moves)."""
        self._place(node)
        self._rebuild()

    def remove(self, node: T) -> None:
        """Take ``node`` off the ring (nothing happens if it is not there)."""
        ident = self._id(node)
        if ident not in self._nodes or self._nodes[ident] != node:
            return
        del self._nodes[ident]
        self._entries = [entry for entry in self._entries if entry[1] != ident]
        self._rebuild()

    def node_for(self, key: HashKey) -> T:
        """The node that owns ``key``; raises LookupError on an empty ring."""
        points = self._points
        if not points:
            raise LookupError("the hash ring has no nodes")
        i = bisect_left(points, stable_hash(key_bytes(key)))
        return self._owners[i if i < len(points) else 0]
