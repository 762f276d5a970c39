"""What happens when an actor fails: its supervisor's directive, restarts,
restart intensity, backoff, poison messages, links and the guardians' policy.

Everything here runs on the event-loop thread and changes lifecycle states
only through ``_lifecycle.transition``. The rules are written down in
docs/supervision.md; the tests in tests/unit/test_supervision.py check them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import _deathwatch, _stopping
from ._asks import fail_ask
from ._envelope import describe, retry, split_attempts
from ._errors import ActorInitializationError, HewittError
from ._lifecycle import RESTARTING, RUNNING, STARTING, STOPPING, SUSPENDED, transition
from ._messages import ActorRestarted
from ._supervision import (
    DEFAULT_STRATEGY,
    Directive,
    RestartIntensityExceeded,
    RestartLog,
    RestartType,
    StrategyKind,
    SupervisorStrategy,
)

if TYPE_CHECKING:
    from ._cell import Cell
    from ._envelope import Item

logger = logging.getLogger("hewitt")


class LinkedActorFailed(HewittError):
    """An actor linked to this one exited abnormally (and this one does not trap exits)."""

    def __init__(self, linked: str, reason: BaseException) -> None:
        super().__init__(f"linked actor {linked} exited abnormally: {reason!r}")
        self.linked = linked
        self.reason = reason


def strategy_of(supervisor: Cell[Any]) -> SupervisorStrategy:
    if supervisor.parent_cell is None:  # a guardian
        return supervisor.system.config.guardian_strategy
    # The instance may carry its own strategy (hewitt.supervision.Supervisor does).
    strategy = getattr(supervisor.actor, "supervisor_strategy", None)
    return strategy if strategy is not None else DEFAULT_STRATEGY


def _restart_log(supervisor: Cell[Any], child: Cell[Any]) -> RestartLog:
    """The restart history that counts ``child``'s restarts: its supervisor's
    (OTP: intensity over all children), but a top-level actor's own, so that
    one blip per top-level actor does not add up in the guardian's window."""
    if supervisor.parent_cell is None:
        extras = child.get_extras()
        if extras.guardian_log is None:
            extras.guardian_log = RestartLog()
        return extras.guardian_log
    extras = supervisor.get_extras()
    if extras.restart_log is None:
        extras.restart_log = RestartLog()
    return extras.restart_log


def handle_failure(cell: Cell[Any], exc: BaseException, item: Item | None) -> None:
    """``cell`` raised ``exc`` handling ``item`` (None: in a hook, or escalated)."""
    system = cell.system
    message, sender, attempts = split_attempts(item) if item is not None else (None, None, 0)
    what = describe(message) if item is not None else "no message"
    if cell.state >= STOPPING or cell.stop_requested:
        logger.error("actor %s failed while stopping (%s)", cell.ref.path, what, exc_info=exc)
        if item is not None:
            _drop(cell, message, sender, exc, "its handler failed while the actor was stopping")
        return
    if cell.state in (SUSPENDED, RESTARTING):
        # Its supervisor has already decided (or is deciding): one decision per
        # failure episode. This one is logged, counted and its message dropped.
        logger.error(
            "actor %s failed again while %s (%s)",
            cell.ref.path,
            "suspended" if cell.state == SUSPENDED else "restarting",
            what,
            exc_info=exc,
        )
        system._failures += 1
        if item is not None:
            _drop(cell, message, sender, exc, "its handler failed while the actor was restarting")
        return
    logger.error("actor %s failed handling %s", cell.ref.path, what, exc_info=exc)
    system._failures += 1
    system._publish_failure(cell.ref, what, exc)
    supervisor = cell.parent_cell
    if supervisor is None:
        return  # guardians do not fail: their handler only dead-letters
    strategy = strategy_of(supervisor)
    try:
        directive = strategy.decide(exc)
    except Exception as decider_error:
        logger.error(
            "supervisor %s: decider raised for %s; escalating",
            supervisor.ref.path,
            type(exc).__name__,
            exc_info=decider_error,
        )
        directive = Directive.ESCALATE
    if directive is Directive.RESTART and cell.restart_type is RestartType.TEMPORARY:
        directive = Directive.STOP

    if directive is Directive.RESUME:
        if item is not None:
            _drop(cell, message, sender, exc, "skipped after a failure (resume)")
        else:
            _resume_suspended_children(cell)
        return
    if directive is Directive.STOP:
        if item is not None:
            _drop(cell, message, sender, exc, "its handler failed and the actor was stopped")
        _stopping.stop_abnormally(cell, exc)
        return
    if directive is Directive.ESCALATE:
        if item is not None:
            _drop(cell, message, sender, exc, "its handler failed and the failure was escalated")
        transition(cell, SUSPENDED)  # until the supervisor's own supervisor decides
        cell.scheduled = True
        escalate(supervisor, exc, cell)
        return

    # RESTART: retry the message on the new instance, unless it is a poison
    # message or a timer tick (timers die with the old instance).
    if item is not None:
        attempts += 1
        extras = cell.extras
        stash = extras.stash if extras is not None else None
        if stash and stash[-1] is item:
            pass  # stashed before the failure: it comes back with the stash, once
        elif cell.is_timer_tick(item):
            _drop(cell, message, sender, exc, "a timer tick of an instance that restarted")
        elif attempts < strategy.poison_threshold:
            cell.front_deque().appendleft(retry(message, sender, attempts))
        else:
            _drop(
                cell,
                message,
                sender,
                exc,
                f"poison message: it failed {attempts} times in a row",
            )
    _deathwatch.exit_links(cell, exc)
    restart_children(supervisor, cell, exc, strategy, message if item is not None else None)


def _drop(cell: Cell[Any], message: Any, sender: Any, exc: BaseException, reason: str) -> None:
    if fail_ask(sender, exc):
        sender = None  # the ask has its answer; no second DeliveryError
    cell.system._dead_letter(message, sender, cell.ref, f"{reason}: {exc!r}")


def escalate(supervisor: Cell[Any], exc: BaseException, child: Cell[Any] | None = None) -> None:
    """A child's failure becomes the supervisor's own failure."""
    if supervisor.parent_cell is None:
        guardian_gives_up(supervisor, exc, child)
        return
    handle_failure(supervisor, exc, None)


def guardian_gives_up(
    guardian: Cell[Any], exc: BaseException, child: Cell[Any] | None = None
) -> None:
    system = guardian.system
    if system.config.guardian_policy == "stop_system":
        logger.critical(
            "guardian %s gives up after %r: stopping actor system %s",
            guardian.ref.path,
            exc,
            system.name,
        )
        system._terminate_from_inside(exc)
        return
    targets = (
        [child]
        if child is not None
        else [
            c for c in (guardian.child_cells or {}).values() if c.state in (SUSPENDED, RESTARTING)
        ]
    )
    for target in targets:
        logger.error(
            "guardian %s gives up on %s after %r: stopping its subtree",
            guardian.ref.path,
            target.ref.path,
            exc,
        )
        _stopping.stop_abnormally(target, exc)


def restart_children(
    supervisor: Cell[Any],
    failed: Cell[Any],
    exc: BaseException,
    strategy: SupervisorStrategy,
    message: Any,
) -> None:
    system = supervisor.system
    now = system.clock.now()
    log = _restart_log(supervisor, failed)
    if not log.record(now, strategy):
        give_up = RestartIntensityExceeded(
            supervisor.ref.path, strategy.max_restarts, strategy.within
        )
        give_up.__cause__ = exc  # the failure that was one too many
        logger.error("%s", give_up)
        if supervisor.parent_cell is None:
            guardian_gives_up(supervisor, give_up, failed)
            return
        # OTP: the supervisor stops all its children, then fails itself.
        failed.get_extras().restart_cause = exc
        _stopping.stop_children(supervisor)
        handle_failure(supervisor, give_up, None)
        return
    if strategy.kind is StrategyKind.ONE_FOR_ONE:
        targets = [failed]  # O(1): one-for-one never walks the siblings
    else:
        children = [c for c in (supervisor.child_cells or {}).values() if c.state < STOPPING]
        if strategy.kind is StrategyKind.ONE_FOR_ALL:
            targets = children
        else:
            targets = children[children.index(failed) :] if failed in children else [failed]
    delay = 0.0
    if strategy.backoff is not None:
        delay = log.next_delay(now, strategy.backoff, system._rng)
    # OTP order: the others are stopped in reverse start order, then, once all
    # of them are ready (their children gone, their handlers done, the delay
    # over), every target is rebuilt in start order.
    group = [
        cell for cell in targets if cell is failed or cell.restart_type is not RestartType.TEMPORARY
    ]
    for cell in reversed(targets):
        if cell is not failed and cell.restart_type is RestartType.TEMPORARY:
            cell.stop_final = True
            _stopping.request_stop(cell)
        else:
            begin_restart(cell, exc, message if cell is failed else None, delay)
            if len(group) > 1:
                cell.get_extras().restart_group = group
    for cell in targets:
        maybe_complete_restart(cell)


def begin_restart(cell: Cell[Any], cause: BaseException, message: Any, delay: float) -> None:
    """Move ``cell`` to RESTARTING, run ``pre_restart`` and stop its children;
    the rebuild happens in maybe_complete_restart once they are gone and the
    delay is over."""
    if cell.state >= STOPPING or cell.stop_requested or cell.state == RESTARTING:
        return
    actor = cell.actor
    if actor is not None:
        try:
            cell.run_hook(actor.pre_restart, cause, message)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as hook_error:
            logger.error("actor %s failed in pre_restart", cell.ref.path, exc_info=hook_error)
    transition(cell, RESTARTING)
    extras = cell.get_extras()
    extras.restart_cause = cause
    _deathwatch.exit_links(cell, cause)  # the old instance has exited: its links hear it
    cell.scheduled = True  # tells only queue while it restarts
    cell.cancel_timers()
    cell.withdraw_timer_ticks()
    if cell.child_cells:
        _stopping.stop_children(cell)
    if delay > 0:
        extras.restart_timer = cell.system.clock.call_later(delay, _delay_over, cell)


def _delay_over(cell: Cell[Any]) -> None:
    extras = cell.get_extras()
    extras.restart_timer = None
    maybe_complete_restart(cell)


def _ready_to_rebuild(cell: Cell[Any]) -> bool:
    extras = cell.extras
    return not (
        cell.state != RESTARTING
        or extras is None
        or extras.restart_cause is None
        or cell.child_cells
        or cell.suspended is not None
        or extras.restart_timer is not None
    )


def maybe_complete_restart(cell: Cell[Any]) -> None:
    if not _ready_to_rebuild(cell):
        return
    if cell.stop_requested:
        _stopping.terminate(cell)  # stopped while it restarted: it is not rebuilt
        return
    extras = cell.extras
    assert extras is not None
    group = extras.restart_group
    if group is not None:
        # Restarted together (one-for-all, rest-for-one): rebuilt together, in
        # start order, once every one of them is ready.
        members = [c for c in group if c.state == RESTARTING]
        if not all(_ready_to_rebuild(c) and not c.stop_requested for c in members):
            return
        for member in members:
            member.get_extras().restart_group = None
            _rebuild(member)
        return
    _rebuild(cell)


def left_restart_group(cell: Cell[Any]) -> None:
    """``cell`` stopped while it was restarted with its siblings: the others
    no longer wait for it."""
    extras = cell.extras
    group = extras.restart_group if extras is not None else None
    if group is None:
        return
    extras.restart_group = None  # type: ignore[union-attr]
    for member in group:
        if member is not cell and member.state == RESTARTING:
            maybe_complete_restart(member)


def _rebuild(cell: Cell[Any]) -> None:
    extras = cell.get_extras()
    stash = extras.stash
    if stash:
        cell.front_deque().extendleft(reversed(stash))
        stash.clear()
    extras.links = None
    extras.restart_log = None  # OTP: a restarted supervisor starts a fresh restart history
    try:
        cell.build()
    except ActorInitializationError as init_error:
        logger.error(
            "actor %s could not be rebuilt; stopping it", cell.ref.path, exc_info=init_error
        )
        extras.restart_cause = None
        _stopping.stop_abnormally(cell, init_error)
        return
    system = cell.system
    system._restarts += 1
    if system.config.lifecycle_events and extras.restart_cause is not None:
        system.event_stream.publish(ActorRestarted(cell.ref, extras.restart_cause))
    transition(cell, STARTING)  # post_restart (by default: pre_start) runs before the next message
    cell.scheduled = True
    system._dispatcher.schedule(cell)


def _resume_suspended_children(cell: Cell[Any]) -> None:
    """RESUME of an escalated failure: the subtree suspended under ``cell`` goes on."""
    for child in list((cell.child_cells or {}).values()):
        if child.state == SUSPENDED:
            transition(child, RUNNING)
            child.system._dispatcher.schedule(child)
            _resume_suspended_children(child)


def restart_after_stop(supervisor: Cell[Any], cell: Cell[Any]) -> bool:
    """A PERMANENT child has stopped (``_stopping.finalize`` asks): True when a
    new incarnation took its place (see _restart_after_stop)."""
    return _restart_after_stop(supervisor, cell)


def _restart_after_stop(supervisor: Cell[Any], cell: Cell[Any]) -> bool:
    """A permanent child stopped normally: start a new incarnation in its place
    (OTP). True when it did; it counts toward the supervisor's intensity. A
    replacement whose factory fails is a failure its supervisor handles."""
    extras = cell.extras
    if (
        cell.restart_type is not RestartType.PERMANENT
        or cell.stop_final
        or (extras is not None and extras.stop_reason is not None)
        or supervisor.state not in (STARTING, RUNNING)
        or supervisor.stop_requested
    ):
        return False
    system = supervisor.system
    strategy = strategy_of(supervisor)
    while True:
        log = _restart_log(supervisor, cell)
        if not log.record(system.clock.now(), strategy):
            exceeded = RestartIntensityExceeded(
                supervisor.ref.path, strategy.max_restarts, strategy.within
            )
            if supervisor.parent_cell is None:
                logger.error("%s: %s is not restarted", exceeded, cell.ref.path)
                return False
            _forget(supervisor, cell)
            handle_failure(supervisor, exceeded, None)
            return True
        try:
            _replace(supervisor, cell)
        except Exception as error:
            init_error = (
                error
                if isinstance(error, ActorInitializationError)
                else ActorInitializationError(f"{cell.ref.path}: {error!r}")
            )
            # The new incarnation could not even be built: a failure of that
            # child, decided by the supervisor's strategy (default: stop it).
            logger.error("actor %s could not be started again", cell.ref.path, exc_info=init_error)
            system._failures += 1
            system._publish_failure(cell.ref, "restart after a normal stop", init_error)
            directive = _decide(supervisor, strategy, init_error)
            if directive is Directive.RESTART:
                continue  # another attempt, counted toward the intensity
            _forget(supervisor, cell)
            if directive is Directive.ESCALATE:
                escalate(supervisor, init_error)
            return True
        system._restarts += 1
        return True


def _decide(supervisor: Cell[Any], strategy: SupervisorStrategy, exc: BaseException) -> Directive:
    try:
        return strategy.decide(exc)
    except Exception as decider_error:
        logger.error("supervisor %s: decider raised", supervisor.ref.path, exc_info=decider_error)
        return Directive.ESCALATE


def _forget(supervisor: Cell[Any], cell: Cell[Any]) -> None:
    siblings = supervisor.child_cells
    if siblings is not None and siblings.get(cell.name) is cell:
        del siblings[cell.name]


def _replace(supervisor: Cell[Any], cell: Cell[Any]) -> None:
    """Spawn a new incarnation of ``cell`` that keeps its place in start order."""
    children = supervisor.child_cells
    assert children is not None
    order = list(children)
    position = order.index(cell.name)
    del children[cell.name]
    mailbox = getattr(cell.mailbox, "spec", None)  # a bounded or priority mailbox
    try:
        ref = supervisor.spawn_child(
            cell.factory,
            cell.args,
            cell.kwargs,
            cell.name,
            restart=cell.restart_type,
            mailbox=mailbox,
            replacing=True,
        )
    except BaseException:
        children[cell.name] = cell  # still in place for the caller to decide
        _reorder(children, order, position, cell.name)
        raise
    _reorder(children, order, position, cell.name)
    old = cell.extras
    if old is not None and old.guardian_log is not None:
        # A top-level actor's restart history goes on with its new incarnation.
        children[cell.name].get_extras().guardian_log = old.guardian_log
    del ref


def _reorder(children: dict[str, Cell[Any]], order: list[str], position: int, name: str) -> None:
    reordered = {n: children[n] for n in order[:position] if n in children}
    reordered[name] = children[name]
    reordered.update((n, children[n]) for n in order[position + 1 :] if n in children)
    children.clear()
    children.update(reordered)
