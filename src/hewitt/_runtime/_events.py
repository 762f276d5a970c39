"""The system's event stream: typed publish/subscribe by message class."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from ._ref import ActorRef, tell_anonymously

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("hewitt")

E = TypeVar("E")


class EventStream:
    """Delivers each published event once to every actor subscribed to its class
    or to one of its base classes. Subscribers that stop are removed."""

    __slots__ = ("_subscribers", "_system", "undelivered")

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self._subscribers: dict[type[Any], list[ActorRef[Any]]] = {}
        #: events a subscriber's full bounded mailbox refused
        self.undelivered = 0

    def subscribe(self, ref: ActorRef[E], event_type: type[E]) -> None:
        """Deliver events of ``event_type`` (and its subclasses) to ``ref``. Thread-safe."""
        self._system._call_on_loop(self._subscribe, ref, event_type)

    def _subscribe(self, ref: ActorRef[Any], event_type: type[Any]) -> None:
        refs = self._subscribers.setdefault(event_type, [])
        if ref not in refs:
            refs.append(ref)

    def unsubscribe(self, ref: ActorRef[Any], event_type: type[Any] | None = None) -> None:
        """Stop delivering ``event_type`` (default: every type) to ``ref``. Thread-safe."""
        self._system._call_on_loop(self._unsubscribe, ref, event_type)

    def _unsubscribe(self, ref: ActorRef[Any], event_type: type[Any] | None) -> None:
        types = [event_type] if event_type is not None else list(self._subscribers)
        for cls in types:
            refs = self._subscribers.get(cls)
            if refs is not None and ref in refs:
                refs.remove(ref)
                if not refs:
                    del self._subscribers[cls]

    def has_subscribers(self, event_type: type[Any]) -> bool:
        return any(issubclass(event_type, cls) for cls in self._subscribers)

    def publish(self, event: object) -> None:
        """Send ``event`` to its subscribers (event-loop thread, or marshalled to it)."""
        subscribers = self._subscribers
        if not subscribers:
            return
        targets: dict[ActorRef[Any], None] = {}
        for cls in type(event).__mro__:
            refs = subscribers.get(cls)
            if refs:
                for ref in refs:
                    targets[ref] = None
        for ref in targets:
            if ref.is_alive:
                try:
                    tell_anonymously(ref, event)
                except Exception as exc:
                    # A subscriber whose bounded mailbox refuses the event misses
                    # it; publishing never fails the code that published.
                    self.undelivered += 1
                    logger.debug("event %s not delivered to %s: %s", type(event).__name__, ref, exc)
