"""The watches and links that cross one link, both ways.

A link's :class:`Signals` records what crosses it, so that each watch and
link across it is answered exactly once, on both sides, and the remote
watchers of local actors are forgotten (nothing keeps a dead peer's refs):

- when the node goes down: ``Terminated``/``Exit`` with NodeDown;
- when a lost connection is made again before that: with NodeUnreachable,
  because a death notice or an exit may have been lost with the connection
  and nothing can tell (watch again).

Erlang answers monitors and links at the disconnection itself
(``noconnection``); waiting for the down timeout or the reconnection reports
a node that dies as down. Entries leave the book when a watch or link ends
normally (a death, an exit, unwatch, unlink), so it holds only live ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hewitt._runtime._control import (
    ControlMessage,
    DeathNotice,
    ExitNotice,
    Link,
    Unlink,
    Unwatch,
    Watch,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from hewitt import ActorRef

Refs = dict["ActorRef[Any]", set["ActorRef[Any]"]]


def _add(book: Refs, key: ActorRef[Any], value: ActorRef[Any]) -> None:
    book.setdefault(key, set()).add(value)


def _discard(book: Refs, key: ActorRef[Any], value: ActorRef[Any]) -> None:
    values = book.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del book[key]


class Signals:
    """One link's book of watches and links."""

    __slots__ = ("links", "watched", "watches")

    def __init__(self) -> None:
        #: remote watchee -> the local actors watching it
        self.watches: Refs = {}
        #: remote actor -> the local actors linked with it
        self.links: Refs = {}
        #: local watchee -> the remote actors watching it
        self.watched: Refs = {}

    def __len__(self) -> int:
        return len(self.watches) + len(self.links) + len(self.watched)

    def outbound(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        """``message`` goes to the remote ``ref``."""
        if isinstance(message, Watch):
            _add(self.watches, ref, message.watcher)
        elif isinstance(message, Unwatch):
            _discard(self.watches, ref, message.watcher)
        elif isinstance(message, Link):
            _add(self.links, ref, message.other)
        elif isinstance(message, Unlink):
            _discard(self.links, ref, message.other)
        elif isinstance(message, DeathNotice):
            _discard(self.watched, message.ref, ref)  # our actor died: its remote watch ends
        elif isinstance(message, ExitNotice):
            _discard(self.links, ref, message.ref)  # our actor exited: its remote link ends

    def inbound(self, kind: str, to: ActorRef[Any], ref: ActorRef[Any] | None) -> None:
        """A control frame ``kind`` arrived for the local ``to``, about the remote ``ref``."""
        if ref is None:
            return
        if kind == "watch":
            _add(self.watched, to, ref)
        elif kind == "unwatch":
            _discard(self.watched, to, ref)
        elif kind == "link":
            _add(self.links, ref, to)
        elif kind == "unlink":
            _discard(self.links, ref, to)
        elif kind == "death":
            _discard(self.watches, ref, to)
        elif kind == "exit":
            _discard(self.links, ref, to)

    def sever(
        self, error: BaseException, forget: Callable[[ActorRef[Any], ActorRef[Any]], None]
    ) -> None:
        """The connection is lost (or the node down): every local watcher gets
        its watchee's death with ``error``, every local linked actor its exit,
        and ``forget(local watchee, remote watcher)`` drops each remote watch."""
        watches, self.watches = self.watches, {}
        links, self.links = self.links, {}
        watched, self.watched = self.watched, {}
        for watchee, watchers in watches.items():
            for watcher in watchers:
                watcher._recipient.deliver_system(watcher, DeathNotice(watchee, error))
        for remote, others in links.items():
            for other in others:
                other._recipient.deliver_system(other, ExitNotice(remote, error))
        for watchee, remote_watchers in watched.items():
            for watcher in remote_watchers:
                forget(watchee, watcher)
