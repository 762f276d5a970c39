"""The rarely used part of an actor's runtime state, allocated on first use.

Most actors never stash, watch, link, set timers or restart, so these fields
live outside the cell: an idle actor stays small.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cell import Cell
    from ._clock import Cancellable
    from ._envelope import Item
    from ._handlers import Handler
    from ._ref import ActorRef
    from ._supervision import RestartLog
    from ._timers import ReceiveTimeoutState, Timers


class Extras:
    __slots__ = (
        "behaviors",
        "guardian_log",
        "links",
        "receive_timeout",
        "restart_cause",
        "restart_group",
        "restart_log",
        "restart_timer",
        "stash",
        "stop_order",
        "stop_reason",
        "stopping_children",
        "timers",
        "watchers",
        "watching",
    )

    def __init__(self) -> None:
        self.stash: deque[Item] | None = None
        self.behaviors: list[Handler] | None = None
        #: refs watching this actor (they get a DeathNotice when it stops)
        self.watchers: set[ActorRef[Any]] | None = None
        #: refs this actor watches
        self.watching: set[ActorRef[Any]] | None = None
        #: refs linked with this actor
        self.links: set[ActorRef[Any]] | None = None
        self.timers: Timers | None = None
        self.receive_timeout: ReceiveTimeoutState | None = None
        #: why it is restarting (RESTARTING), or was restarted (STARTING, until
        #: post_restart ran)
        self.restart_cause: BaseException | None = None
        #: restart history of the children this actor supervises
        self.restart_log: RestartLog | None = None
        #: restart history of this actor itself, when its supervisor is a guardian
        #: (each top-level actor gets its own restart intensity)
        self.guardian_log: RestartLog | None = None
        self.restart_timer: Cancellable | None = None
        #: the siblings it is restarted with (one-for-all, rest-for-one): all
        #: are rebuilt together, in start order, once all are ready
        self.restart_group: list[Cell[Any]] | None = None
        #: why it stopped: None for a normal stop
        self.stop_reason: BaseException | None = None
        #: its children are being stopped one at a time (see _stopping), in
        #: the reverse of this order (popped from its end)
        self.stopping_children = 0
        self.stop_order: list[Cell[Any]] | None = None
