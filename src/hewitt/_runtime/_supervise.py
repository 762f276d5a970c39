"""What happens when an actor fails: its supervisor's directive, restarts,
restart intensity, backoff, poison messages, links and the guardians' policy.

Everything here runs on the event-loop thread. The rules are written down in
docs/supervision.md; the tests in tests/unit/test_supervision.py check them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._errors import ActorInitializationError, HewittError
from ._marks import ENVELOPE
from ._messages import ActorRestarted, Exit
from ._ref import _Promise
from ._states import NEW, RUNNING, STOPPING, SUSPENDED
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
    from ._handlers import Item

logger = logging.getLogger("hewitt")


class LinkedActorFailed(HewittError):
    """An actor linked to this one exited abnormally (and this one does not trap exits)."""

    def __init__(self, linked: str, reason: BaseException) -> None:
        super().__init__(f"linked actor {linked} exited abnormally: {reason!r}")
        self.linked = linked
        self.reason = reason


def strategy_of(supervisor: Cell[Any]) -> SupervisorStrategy:
    if supervisor._parent is None:  # a guardian
        return supervisor.system.config.guardian_strategy
    # The instance may carry its own strategy (hewitt.supervision.Supervisor does).
    strategy = getattr(supervisor.actor, "supervisor_strategy", None)
    return strategy if strategy is not None else DEFAULT_STRATEGY


def _describe(message: Any) -> str:
    return type(message).__qualname__


def _split(item: Item) -> tuple[Any, Any, int]:
    """(message, sender, attempts) of a mailbox item; attempts counts earlier failures."""
    if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
        return item[0], item[1], item[3] if len(item) == 4 else 0
    return item, None, 0


def handle_failure(cell: Cell[Any], exc: BaseException, item: Item | None) -> None:
    """``cell`` raised ``exc`` handling ``item`` (None: in a hook, or escalated)."""
    if cell.state >= STOPPING or cell.stop_requested:
        logger.error("actor %s failed while stopping", cell.ref.path, exc_info=exc)
        return
    system = cell.system
    message, sender, attempts = _split(item) if item is not None else (None, None, 0)
    what = _describe(message) if item is not None else "no message"
    logger.error("actor %s failed handling %s", cell.ref.path, what, exc_info=exc)
    system._failures += 1
    system._publish_failure(cell.ref, what, exc)
    supervisor = cell._parent
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
        stop_abnormally(cell, exc)
        return
    if directive is Directive.ESCALATE:
        if item is not None:
            _drop(cell, message, sender, exc, "its handler failed and the failure was escalated")
        cell.state = SUSPENDED  # until the supervisor's own supervisor decides
        cell.restart_cause = None
        cell.scheduled = True
        escalate(supervisor, exc)
        return

    # RESTART: retry the message on the new instance, unless it is a poison message.
    if item is not None:
        attempts += 1
        if attempts < strategy.poison_threshold:
            cell._front_deque().appendleft((message, sender, ENVELOPE, attempts))
        else:
            _drop(
                cell,
                message,
                sender,
                exc,
                f"poison message: it failed {attempts} times in a row",
            )
    propagate_exit(cell, exc)
    restart_children(supervisor, cell, exc, strategy, message if item is not None else None)


def _drop(cell: Cell[Any], message: Any, sender: Any, exc: BaseException, reason: str) -> None:
    if isinstance(sender, _Promise):
        sender.fail(exc)
        sender = None  # the ask has its answer; no second DeliveryError
    cell.system._dead_letter(message, sender, cell.ref, f"{reason}: {exc!r}")


def escalate(supervisor: Cell[Any], exc: BaseException) -> None:
    """A child's failure becomes the supervisor's own failure."""
    if supervisor._parent is None:
        guardian_gives_up(supervisor, exc)
        return
    handle_failure(supervisor, exc, None)


def guardian_gives_up(guardian: Cell[Any], exc: BaseException) -> None:
    system = guardian.system
    policy = system.config.guardian_policy
    if policy == "stop_system":
        logger.critical(
            "guardian %s gives up after %r: stopping actor system %s",
            guardian.ref.path,
            exc,
            system.name,
        )
        system._terminate_from_inside(exc)
        return
    for child in list((guardian._children or {}).values()):
        if child.state == SUSPENDED or child.restart_cause is not None:
            logger.error(
                "guardian %s gives up on %s after %r: stopping its subtree",
                guardian.ref.path,
                child.ref.path,
                exc,
            )
            stop_abnormally(child, exc)


def restart_children(
    supervisor: Cell[Any],
    failed: Cell[Any],
    exc: BaseException,
    strategy: SupervisorStrategy,
    message: Any,
) -> None:
    system = supervisor.system
    now = system.clock.now()
    log = supervisor.restart_log
    if log is None:
        log = supervisor.restart_log = RestartLog()
    if not log.record(now, strategy):
        give_up = RestartIntensityExceeded(
            supervisor.ref.path, strategy.max_restarts, strategy.within
        )
        give_up.__cause__ = exc  # the failure that was one too many
        logger.error("%s", give_up)
        # OTP: the supervisor stops all its children, then fails itself.
        failed.restart_cause = exc
        if supervisor._parent is None:
            guardian_gives_up(supervisor, give_up)
            return
        supervisor._stop_children()
        handle_failure(supervisor, give_up, None)
        return
    if strategy.kind is StrategyKind.ONE_FOR_ONE:
        targets = [failed]  # O(1): one-for-one never walks the siblings
    else:
        children = [c for c in (supervisor._children or {}).values() if c.state < STOPPING]
        if strategy.kind is StrategyKind.ONE_FOR_ALL:
            targets = children
        else:
            targets = children[children.index(failed) :] if failed in children else [failed]
    delay = 0.0
    if strategy.backoff is not None:
        delay = log.next_delay(now, strategy.backoff, system._rng)
    # OTP order: the others are stopped in reverse start order, then every
    # target is rebuilt in start order (as soon as its own children are gone).
    for cell in reversed(targets):
        if cell is not failed and cell.restart_type is RestartType.TEMPORARY:
            cell.stop_final = True
            cell.request_stop()
        else:
            begin_restart(cell, exc, message if cell is failed else None, delay)
    for cell in targets:
        maybe_complete_restart(cell)


def begin_restart(cell: Cell[Any], cause: BaseException, message: Any, delay: float) -> None:
    """Suspend ``cell``, run ``pre_restart`` and stop its children; the rebuild
    happens in maybe_complete_restart once they are gone and the delay is over."""
    if cell.state >= STOPPING or cell.stop_requested:
        return
    actor = cell.actor
    if actor is not None:
        try:
            actor.pre_restart(cause, message)
        except Exception as hook_error:
            logger.error("actor %s failed in pre_restart", cell.ref.path, exc_info=hook_error)
    cell.state = SUSPENDED
    cell.restart_cause = cause
    cell.scheduled = True  # tells only queue while it is suspended
    cell.cancel_timers()
    cell._stop_children()
    if delay > 0:
        cell.restart_timer = cell.system.clock.call_later(delay, _delay_over, cell)


def _delay_over(cell: Cell[Any]) -> None:
    cell.restart_timer = None
    maybe_complete_restart(cell)


def maybe_complete_restart(cell: Cell[Any]) -> None:
    if (
        cell.state != SUSPENDED
        or cell.restart_cause is None
        or cell._children
        or cell.suspended is not None
        or cell.restart_timer is not None
    ):
        return
    stash = cell._stash
    if stash:
        cell._front_deque().extendleft(reversed(stash))
        stash.clear()
    cell.links = None
    cell.restart_log = None  # OTP: a restarted supervisor starts a fresh restart history
    try:
        cell.build()
    except ActorInitializationError as init_error:
        logger.error(
            "actor %s could not be rebuilt; stopping it", cell.ref.path, exc_info=init_error
        )
        cell.restart_cause = None
        cell.state = RUNNING
        stop_abnormally(cell, init_error)
        return
    cell.system._restarts += 1
    if cell.system.config.lifecycle_events and cell.restart_cause is not None:
        cell.system.event_stream.publish(ActorRestarted(cell.ref, cell.restart_cause))
    cell.state = NEW  # post_restart (by default: pre_start) runs before the next message
    cell.scheduled = True
    cell.system._dispatcher.schedule(cell)


def stop_abnormally(cell: Cell[Any], reason: BaseException) -> None:
    """Stop ``cell`` for good with an abnormal reason (links and watchers see it)."""
    if cell.state >= STOPPING:
        return
    cell.restart_cause = None  # a pending restart timer then finds nothing to do
    cell.stop_reason = reason
    cell.stop_final = True
    if cell.state == SUSPENDED:
        cell.state = RUNNING
    cell.request_stop()


def propagate_exit(cell: Cell[Any], reason: BaseException | None) -> None:
    """Tell the actors linked to ``cell`` that it exited (abnormally when ``reason``)."""
    links = cell.links
    if not links:
        return
    cell.links = None
    for other in links:
        if other.links is not None:
            other.links.discard(cell)
        if other.state >= STOPPING or other.stop_requested:
            continue
        if other.actor is not None and type(other.actor).trap_exits:
            other.enqueue_system(Exit(cell.ref, reason))
        elif reason is not None:
            handle_failure(other, LinkedActorFailed(cell.ref.path, reason), None)


def _resume_suspended_children(cell: Cell[Any]) -> None:
    for child in list((cell._children or {}).values()):
        if child.state == SUSPENDED and child.restart_cause is None:
            child.state = RUNNING
            child.system._dispatcher.schedule(child)


def restart_after_stop(cell: Cell[Any]) -> bool:
    """A permanent child stopped normally: start a new incarnation in its place
    (OTP). True when it did; it counts toward the supervisor's intensity."""
    supervisor = cell._parent
    if (
        supervisor is None
        or cell.restart_type is not RestartType.PERMANENT
        or cell.stop_final
        or cell.stop_reason is not None
        or supervisor.state not in (NEW, RUNNING)
        or supervisor.stop_requested
    ):
        return False
    strategy = strategy_of(supervisor)
    log = supervisor.restart_log
    if log is None:
        log = supervisor.restart_log = RestartLog()
    if not log.record(supervisor.system.clock.now(), strategy):
        handle_failure(
            supervisor,
            RestartIntensityExceeded(supervisor.ref.path, strategy.max_restarts, strategy.within),
            None,
        )
        return False
    children = supervisor._children
    assert children is not None
    order = list(children)
    position = order.index(cell.name)
    del children[cell.name]
    supervisor.system._restarts += 1
    supervisor.spawn_child(
        cell.factory, cell.args, cell.kwargs, cell.name, restart=cell.restart_type
    )
    # The new incarnation keeps the old one's place in start order (rest-for-one).
    reordered = {name: children[name] for name in order[:position]}
    reordered[cell.name] = children[cell.name]
    reordered.update((name, children[name]) for name in order[position + 1 :])
    children.clear()
    children.update(reordered)
    return True
