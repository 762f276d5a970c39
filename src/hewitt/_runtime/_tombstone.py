"""Tombstone: the cell behind a ref to an actor that does not exist."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._actor import Actor
from ._cell import Cell
from ._handlers import EMPTY_ARGS, EMPTY_KWARGS
from ._marks import NOTHING
from ._ref import ActorRef
from ._states import DEAD

if TYPE_CHECKING:
    from ._system import ActorSystem


class Tombstone(Cell[Any]):
    """Stands in for an actor that does not exist (an unknown or stale address).

    Its ref accepts messages like any other and sends them to dead letters
    with the reason "no such actor"; an ask to it fails at once.
    """

    __slots__ = ()

    def __init__(self, system: ActorSystem, path: str, uid: int) -> None:
        # No super().__init__: a tombstone gets no uid of its own and no actor.
        self.system = system
        self._parent = None
        self.name = path.rpartition("/")[2]
        self.ref = ActorRef(self, path, uid)
        self.factory = Actor
        self.args = EMPTY_ARGS
        self.kwargs = EMPTY_KWARGS
        self.actor = None
        self.receive = None
        self.mailbox = None
        self.pending = NOTHING
        self.scheduled = False
        self.state = DEAD
        self.stop_requested = True
        self.envelope = None
        self.suspended = None
        self._children = None
        self.behaviors = None
        self._stash = None
        self.watchers = None
        self.watching = None

    def wake(self) -> None:
        self._drain_to_dead_letters("no such actor")

    def request_stop(self) -> None:
        pass
