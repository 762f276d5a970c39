"""Watching and linking, by address.

A watcher keeps the refs it watches, the watched actor keeps the refs of its
watchers, and links are kept by both ends; they are told about each other
only through control messages (``Recipient.deliver_system``). So a watch or a
link works the same whether the other actor is in this system, on another
node, or already gone (whose recipient answers at once). See docs/semantics.md
§13 for what "watch a ref on an unreachable node" answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._control import DeathNotice, ExitNotice, Link, Unlink, Unwatch, Watch
from ._messages import Terminated

if TYPE_CHECKING:
    from ._cell import Cell
    from ._ref import ActorRef


def watch(cell: Cell[Any], ref: ActorRef[Any]) -> None:
    extras = cell.get_extras()
    if extras.watching is None:
        extras.watching = set()
    extras.watching.add(ref)
    ref._recipient.deliver_system(ref, Watch(cell.ref))


def unwatch(cell: Cell[Any], ref: ActorRef[Any]) -> None:
    extras = cell.extras
    if extras is not None and extras.watching is not None:
        extras.watching.discard(ref)
    ref._recipient.deliver_system(ref, Unwatch(cell.ref))
    # A Terminated already queued for ref must not be delivered after unwatch.
    cell.withdraw(lambda message: isinstance(message, Terminated) and message.ref == ref)


def link(cell: Cell[Any], ref: ActorRef[Any]) -> None:
    if ref == cell.ref:
        return
    extras = cell.get_extras()
    if extras.links is None:
        extras.links = set()
    extras.links.add(ref)
    ref._recipient.deliver_system(ref, Link(cell.ref))


def unlink(cell: Cell[Any], ref: ActorRef[Any]) -> None:
    extras = cell.extras
    if extras is not None and extras.links is not None:
        extras.links.discard(ref)
    ref._recipient.deliver_system(ref, Unlink(cell.ref))


def add_watcher(cell: Cell[Any], watcher: ActorRef[Any]) -> None:
    extras = cell.get_extras()
    if extras.watchers is None:
        extras.watchers = set()
    extras.watchers.add(watcher)


def remove_watcher(cell: Cell[Any], watcher: ActorRef[Any]) -> None:
    extras = cell.extras
    if extras is not None and extras.watchers is not None:
        extras.watchers.discard(watcher)


def add_link(cell: Cell[Any], other: ActorRef[Any]) -> None:
    extras = cell.get_extras()
    if extras.links is None:
        extras.links = set()
    extras.links.add(other)


def remove_link(cell: Cell[Any], other: ActorRef[Any]) -> None:
    extras = cell.extras
    if extras is not None and extras.links is not None:
        extras.links.discard(other)


def death_notice(cell: Cell[Any], notice: DeathNotice) -> None:
    """A watched actor stopped: queue one Terminated, if it is still watched."""
    extras = cell.extras
    watching = extras.watching if extras is not None else None
    if watching is None or notice.ref not in watching:
        return  # unwatched meanwhile (or never watched): nothing to deliver
    watching.discard(notice.ref)
    cell.enqueue_system(Terminated(notice.ref, notice.reason))


def take_link(cell: Cell[Any], ref: ActorRef[Any]) -> bool:
    """Remove the link with ``ref``; False if there was none."""
    extras = cell.extras
    links = extras.links if extras is not None else None
    if links is None or ref not in links:
        return False
    links.discard(ref)
    return True


def exit_links(cell: Cell[Any], reason: BaseException | None) -> None:
    """Tell every linked actor that this one exited (abnormally when ``reason``)."""
    extras = cell.extras
    links = extras.links if extras is not None else None
    if not links:
        return
    extras.links = None  # type: ignore[union-attr]
    notice = ExitNotice(cell.ref, reason)
    for other in links:
        other._recipient.deliver_system(other, notice)


def notify_termination(cell: Cell[Any], reason: BaseException | None) -> None:
    """The actor has stopped: its watchers get a DeathNotice, the actors it
    watched forget it, its links get an ExitNotice."""
    extras = cell.extras
    if extras is None:
        return
    ref = cell.ref
    watching = extras.watching
    if watching:
        extras.watching = None
        unwatch_message = Unwatch(ref)
        for target in watching:
            target._recipient.deliver_system(target, unwatch_message)
    watchers = extras.watchers
    if watchers:
        extras.watchers = None
        notice = DeathNotice(ref, reason)
        for watcher in watchers:
            watcher._recipient.deliver_system(watcher, notice)
    exit_links(cell, reason)
