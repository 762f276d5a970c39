"""The messages a router handles itself, and the router's configuration error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, final

from hewitt import ActorRef, HewittError


class InvalidRouterConfig(HewittError, ValueError):
    """A router, strategy or command was given an invalid value; the message
    names the class and the field."""


class RouterCommand:
    """Base class of the messages a router handles itself instead of routing.

    The commands are final classes: a router recognises them (and
    ``Terminated``) by their exact type, one set lookup per message, so a data
    message pays for a single check. A user subclass of ``RouterCommand`` is
    routed like any other message.
    """

    __slots__ = ()


@final
@dataclass(frozen=True, slots=True)
class Broadcast(RouterCommand):
    """Send ``message`` to every routee, whatever the router's strategy.

    The original sender is kept, so each routee may reply to it (an ``ask``
    returns the first reply).
    """

    message: Any


@final
@dataclass(frozen=True, slots=True)
class GetRoutees(RouterCommand):
    """Ask a router for its routees: replies ``list[ActorRef]``, in routing order."""


@final
@dataclass(frozen=True, slots=True)
class Resize(RouterCommand):
    """Set the number of routees of a :class:`~hewitt.routing.Pool` to ``size``.

    Grows by spawning routees, shrinks by stopping the newest ones. Replies the
    new size when it has a sender (an ``ask``). ``size`` must be an int >= 0.
    """

    size: int

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidRouterConfig(f"Resize.size must be an int >= 0, got {self.size!r}")


@final
@dataclass(frozen=True, slots=True)
class AddRoutee(RouterCommand):
    """Add ``ref`` to a :class:`~hewitt.routing.Group` (watched, routed to last).

    Adding a routee already there changes nothing. Replies the number of
    routees when it has a sender (an ``ask``).
    """

    ref: ActorRef[Any]


@final
@dataclass(frozen=True, slots=True)
class RemoveRoutee(RouterCommand):
    """Remove ``ref`` from a :class:`~hewitt.routing.Group` (unwatched; not stopped).

    Removing a ref that is not a routee changes nothing. Replies the number of
    routees when it has a sender (an ``ask``).
    """

    ref: ActorRef[Any]


#: The commands a :class:`~hewitt.routing.Pool` handles.
PoolCommand = Broadcast | GetRoutees | Resize

#: The commands a :class:`~hewitt.routing.Group` handles.
GroupCommand = Broadcast | GetRoutees | AddRoutee | RemoveRoutee
