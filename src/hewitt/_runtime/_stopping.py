"""How an actor stops: the current handler finishes, queued and stashed
messages become dead letters, its children stop one at a time (the last
started first, each finished before the next one is asked: OTP's order),
then ``post_stop`` runs, then watchers, links and the parent learn of it.

Every step is a lifecycle transition (``_lifecycle``) or happens inside one.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from . import _deathwatch
from ._actor import Actor
from ._envelope import split
from ._lifecycle import RESTARTING, RUNNING, STARTING, STOPPED, STOPPING, SUSPENDED, transition
from ._mailbox import Admission
from ._marks import NOTHING
from ._supervision import RestartType

if TYPE_CHECKING:
    from ._cell import Cell

logger = logging.getLogger("hewitt")

#: Extras.stopping_children: no children being stopped, waiting for one to go,
#: or inside stop_children's loop.
NO_CHAIN, CHAIN_WAITING, CHAIN_LOOPING = 0, 1, 2


def request_stop(cell: Cell[Any]) -> None:
    """Stop ``cell`` (ref.stop, its parent, shutdown, or the actor itself):
    a running handler finishes first, then the actor terminates."""
    if cell.stop_requested or cell.state >= STOPPING:
        return
    cell.stop_requested = True
    cell.receive = None
    if cell.suspended is not None or cell.system._dispatcher.current is cell:
        return  # the running handler finishes first; the turn's end terminates
    # Idle or queued for a turn: terminate now (the dispatcher skips stopped cells).
    terminate(cell)


def stop_abnormally(cell: Cell[Any], reason: BaseException) -> None:
    """Stop ``cell`` for good with an abnormal reason (links and watchers see it)."""
    if cell.state >= STOPPING:
        return
    extras = cell.get_extras()
    extras.restart_cause = None  # a pending restart timer then finds nothing to do
    extras.stop_reason = reason
    cell.stop_final = True
    if cell.state == SUSPENDED:
        transition(cell, RUNNING)
    request_stop(cell)


def terminate(cell: Cell[Any]) -> None:
    if cell.state >= STOPPING:
        return
    extras = cell.extras
    if extras is not None and extras.restart_timer is not None:
        extras.restart_timer.cancel()
        extras.restart_timer = None
    if cell.state == STARTING:
        # Never started (pre_start or post_restart did not run): no post_stop.
        cell.actor = None
    restarting = cell.state == RESTARTING
    transition(cell, STOPPING)
    if restarting and extras is not None and extras.restart_group is not None:
        cell.left_restart_group()
    cell.stop_requested = True
    cell.receive = None
    cell.scheduled = False
    mailbox = cell.mailbox
    if mailbox is not None and type(mailbox) is not deque and isinstance(mailbox, Admission):
        # Blocked senders go on: their messages then become dead letters.
        for waiter in mailbox.waiters:
            if not waiter.done():
                waiter.set_result(None)
        mailbox.waiters.clear()
    if mailbox or cell.pending is not NOTHING:
        cell.drain_to_dead_letters("recipient stopped")
    if extras is not None:
        cell.cancel_timers()
        stash = extras.stash
        if stash:
            system = cell.system
            for item in stash:
                message, sender = split(item)
                system._dead_letter(message, sender, cell.ref, "stashed when the actor stopped")
            stash.clear()
    if cell.child_cells:
        stop_children(cell)  # the last child to go calls after_children
    elif cell.actor is None or type(cell.actor).post_stop is Actor.post_stop:
        finalize(cell)  # after_children, with no post_stop to run
    else:
        after_children(cell)


def stop_children(cell: Cell[Any]) -> None:
    """Stop ``cell``'s children one at a time, the last started first, each
    finished before the next is asked; then ``cell.children_gone()``.

    Called again (by ``_child_terminated``) each time a child has gone;
    iterative, so that a thousand children that stop at once cost no
    recursion. The order is taken once, when the stopping begins: a dict
    cannot be read from its end cheaply once its last entries are deleted.
    """
    extras = cell.get_extras()
    if extras.stopping_children == CHAIN_LOOPING:
        return  # the loop below is running further up this stack
    extras.stopping_children = CHAIN_LOOPING
    children = cell.child_cells
    order: list[Cell[Any]] | None = extras.stop_order
    try:
        while children:
            if not order:
                order = extras.stop_order = list(children.values())  # start order
            last: Cell[Any] = order[-1]
            if children.get(last.name) is not last:
                order.pop()  # gone already
                continue
            if last.state < STOPPING and not last.stop_requested:
                last.stop_final = True  # a supervisor's stop is never undone by a restart
                request_stop(last)
            if children.get(last.name) is last:
                break  # it stops asynchronously: go on when it has gone
            order.pop()
    finally:
        extras.stopping_children = CHAIN_WAITING
    if not cell.child_cells:
        extras.stopping_children = NO_CHAIN
        extras.stop_order = None
        cell.children_gone()


def after_children(cell: Cell[Any]) -> None:
    """The children are gone: run ``post_stop``, then finalize."""
    actor = cell.actor
    if actor is not None and type(actor).post_stop is not Actor.post_stop:
        try:
            result = cell.run_hook(actor.post_stop)
        except (KeyboardInterrupt, SystemExit):
            finalize(cell)
            raise
        except BaseException as exc:
            logger.error("actor %s failed in post_stop", cell.ref.path, exc_info=exc)
            result = None
        if result is not None:
            cell.suspend(result)
            return
    finalize(cell)


def finalize(cell: Cell[Any]) -> None:
    if cell.state == STOPPED:
        return
    transition(cell, STOPPED)
    cell.receive = None
    cell.actor = None
    if cell.mailbox or cell.pending is not NOTHING:
        cell.drain_to_dead_letters("recipient stopped")
    extras = cell.extras
    system = cell.system
    cell.vars = None
    if extras is None:
        # From now on the ref delivers to dead letters; nothing refers to the cell.
        cell.ref._recipient = system._dead
    else:
        reason = extras.stop_reason
        cell.ref._recipient = system._dead if reason is None else system._dead_with_reason(reason)
        _deathwatch.notify_termination(cell, reason)
    parent = cell.parent_cell
    if parent is not None:
        _child_terminated(parent, cell)
    cell.mailbox = None  # a bounded mailbox refers to its cell: no cycle is left
    system._on_terminated(cell)


def _child_terminated(parent: Cell[Any], child: Cell[Any]) -> None:
    """``child`` has stopped: free its name (or let its supervisor start its
    replacement), and go on with whatever waited for it (a stop or restart
    of ``parent``)."""
    siblings = parent.child_cells
    if siblings is None or siblings.get(child.name) is not child:
        return
    if child.restart_type is RestartType.PERMANENT and parent.restart_after_stop(child):
        return
    del siblings[child.name]
    extras = parent.extras
    if extras is not None and extras.stopping_children:
        stop_children(parent)
    elif not siblings and parent.state == RESTARTING:
        parent.children_gone()
