"""The recipient of refs to actors that are gone or never existed.

When an actor stops, its ref's recipient becomes its system's dead-letter
recipient: the cell is then referenced by nothing and freed by reference
counting, not left to the cyclic garbage collector. Messages to the ref are
dead letters; watching or linking it answers at once, as Erlang does for a
process that is gone (``noproc``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._address import NodeId
from ._control import ControlMessage, DeathNotice, ExitNotice, Link, Watch
from ._envelope import Item, describe, split
from ._errors import ActorSystemStopped, NodeUnreachable
from ._sysstate import TERMINATED

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._system import ActorSystem


class DeadRecipient:
    """Delivers to dead letters with ``reason``; ``stop_reason`` is why the
    actor stopped (None: normally, or unknown)."""

    __slots__ = ("reason", "stop_reason", "system")

    def __init__(
        self, system: ActorSystem, reason: str, stop_reason: BaseException | None = None
    ) -> None:
        self.system = system
        self.reason = reason
        self.stop_reason = stop_reason

    @property
    def node(self) -> NodeId:
        return self.system.node

    @property
    def alive(self) -> bool:
        return False

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        message, sender = split(item)
        system = self.system
        if system._state == TERMINATED:
            raise ActorSystemStopped(
                f"actor system {system.name!r} has shut down: {describe(message)} "
                f"to {ref.path} refused"
            )
        # The dead-letter office (its counters, the event stream) lives on the loop.
        system._call_on_loop(system._dead_letter, message, sender, ref, self.reason)

    deliver_ask = deliver

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        if isinstance(message, Watch):
            watcher = message.watcher
            watcher._recipient.deliver_system(watcher, DeathNotice(ref, self.stop_reason))
        elif isinstance(message, Link):
            other = message.other
            reason = self.stop_reason
            if reason is None:
                reason = LookupError(f"{ref.path} is not alive")  # Erlang's noproc
            other._recipient.deliver_system(other, ExitNotice(ref, reason))


class UnreachableRecipient:
    """The recipient of refs to a node this system has no link to (or whose
    link is down): messages are dead letters, asks fail at once, and a watch
    is answered at once with ``Terminated(ref, NodeUnreachable)``."""

    __slots__ = ("_node", "detail", "system")

    def __init__(self, system: ActorSystem, node: NodeId, detail: str = "") -> None:
        self.system = system
        self._node = node
        self.detail = detail

    @property
    def node(self) -> NodeId:
        return self._node

    @property
    def alive(self) -> bool:
        return False

    def error(self) -> NodeUnreachable:
        return NodeUnreachable(str(self._node), self.detail or "no link to it")

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        message, sender = split(item)
        system = self.system
        system._call_on_loop(system._dead_letter, message, sender, ref, str(self.error()))

    deliver_ask = deliver

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        if isinstance(message, Watch):
            watcher = message.watcher
            watcher._recipient.deliver_system(watcher, DeathNotice(ref, self.error()))
        elif isinstance(message, Link):
            other = message.other
            other._recipient.deliver_system(other, ExitNotice(ref, self.error()))
