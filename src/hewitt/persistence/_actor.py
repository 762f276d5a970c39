"""PersistentActor: an event-sourced actor (commands -> events -> state)."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final, Generic, TypeVar

import msgspec

from .._runtime._actor import Actor
from ._extension import Persistence
from ._journal import now
from ._records import (
    AppendInDoubt,
    IdempotencyRecord,
    RecoveryError,
    StoredEvent,
    StoredSnapshot,
    UnknownEventType,
)

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")
E_co = TypeVar("E_co", covariant=True)
X = TypeVar("X")

logger = logging.getLogger("hewitt.persistence")

_NO_REPLY: Final = object()


class Effect(Generic[E_co]):
    """What a command handler decides: events to persist, a reply, a snapshot.

    ``Effect.persist(e1, e2).then_reply(lambda state: Ok(state.balance))``,
    ``Effect.reply(Refused("insufficient funds"))``, ``Effect.none()``.
    """

    __slots__ = ("_reply", "events", "snapshot")

    def __init__(self, events: tuple[E_co, ...] = ()) -> None:
        self.events = events
        self._reply: Any = _NO_REPLY
        self.snapshot = False

    @staticmethod
    def persist(*events: X) -> Effect[X]:
        """Persist ``events``; the state and the reply come after they are durable."""
        return Effect(events)

    @staticmethod
    def reply(message: Any) -> Effect[Any]:
        """Persist nothing; reply ``message``."""
        effect: Effect[Any] = Effect()
        effect._reply = message
        return effect

    @staticmethod
    def none() -> Effect[Any]:
        """Persist nothing, reply nothing."""
        return Effect()

    def then_reply(self, reply: Callable[[Any], Any] | Any) -> Effect[E_co]:
        """Reply once the events are durable: ``reply(new_state)`` if callable."""
        self._reply = reply
        return self

    def and_snapshot(self) -> Effect[E_co]:
        """Take a snapshot after this command (on demand)."""
        self.snapshot = True
        return self

    def reply_for(self, state: Any) -> Any:
        reply = self._reply
        return reply(state) if callable(reply) else reply


class PersistentActor(Actor[C], Generic[C, E, S]):
    """An event-sourced actor identified by a stable ``persistence_id``.

    Subclass it; set ``self.persistence_id`` in ``__init__``; implement
    ``empty_state``, ``on_command`` (validate against the current state,
    return an :class:`Effect`) and ``on_event`` (state, event -> new state;
    pure, it runs again at every recovery).

    For each command: the events are appended to the journal and durable,
    then applied to the state, then the reply is sent — never before.
    Commands that arrive meanwhile wait in the mailbox, in order. Recovery
    (the latest readable snapshot, then the events after it) runs before the
    first command, at start and at every restart; a failure there is a
    RecoveryError naming the persistence id and sequence number.

    Class attributes: ``snapshot_every`` (events) and ``snapshot_interval``
    (seconds) take a snapshot when either is reached (None: never);
    ``keep_snapshots`` old snapshots are kept; ``delete_events_on_snapshot``
    deletes the events a snapshot covers. Event and state types must be
    registered with the system's Persistence codec.
    """

    snapshot_every: ClassVar[int | None] = None
    snapshot_interval: ClassVar[float | None] = None
    keep_snapshots: ClassVar[int] = 2
    delete_events_on_snapshot: ClassVar[bool] = False

    persistence_id: str
    state: S
    sequence_nr: int = 0
    _last_snapshot_nr: int = 0
    _last_snapshot_at: float = 0.0
    _recovery_due: bool = False  # an append was in doubt: recover before the next message

    @abstractmethod
    def empty_state(self) -> S:
        """The state before the first event."""

    @abstractmethod
    def on_command(self, state: S, command: C) -> Effect[E]:
        """Decide what ``command`` does: events to persist and/or a reply."""

    @abstractmethod
    def on_event(self, state: S, event: E) -> S:
        """The state after ``event`` (no side effects: it runs at recovery too)."""

    def tags(self, event: E) -> tuple[str, ...]:
        """Tags of ``event``, for projections reading by tag (default: none)."""
        return ()

    def idempotency_key(self, command: C) -> str | None:
        """The command's idempotency key (default: its ``idempotency_key``
        attribute, if any). A key seen within the window returns the original
        outcome and writes nothing."""
        key = getattr(command, "idempotency_key", None)
        return key if isinstance(key, str) else None

    async def pre_start(self) -> None:
        """Recover: the latest readable snapshot, then the events after it."""
        await self._recover()

    async def _recover(self) -> None:
        persistence = Persistence.of(self.context.system)
        pid = self.persistence_id
        codec = persistence.codec
        state = self.empty_state()
        sequence_nr = 0
        if persistence.snapshots is not None:
            for snapshot in await persistence.snapshots.load_all(pid):
                try:
                    state = codec.decode(snapshot.type_name, snapshot.version, snapshot.payload)
                except Exception as exc:  # unknown type, bad bytes, a failing upcaster
                    logger.warning(
                        "recovery of %r: snapshot at sequence number %d is unreadable (%s); "
                        "falling back to an older one",
                        pid,
                        snapshot.sequence_nr,
                        exc,
                    )
                    continue
                sequence_nr = snapshot.sequence_nr
                break
        snapshot_nr = sequence_nr
        events = persistence.journal.read_events(pid, sequence_nr + 1)
        while True:
            try:
                stored = await anext(events)
            except StopAsyncIteration:
                break
            except RecoveryError:
                raise  # the journal names the damaged row itself
            except Exception as exc:  # a row the journal itself cannot read
                raise RecoveryError(
                    pid, sequence_nr + 1, f"unreadable journal row: {exc!r}"
                ) from exc
            expected = sequence_nr + 1
            if stored.sequence_nr != expected:
                raise RecoveryError(
                    pid,
                    expected,
                    f"event {expected} is missing (the journal has {stored.sequence_nr} next; "
                    "deleted events and no readable snapshot covering them?)",
                )
            try:
                event = codec.decode(stored.type_name, stored.version, stored.payload)
            except UnknownEventType as exc:
                raise RecoveryError(pid, stored.sequence_nr, str(exc)) from exc
            except msgspec.MsgspecError as exc:
                raise RecoveryError(
                    pid, stored.sequence_nr, f"undecodable {stored.type_name!r} payload: {exc}"
                ) from exc
            except Exception as exc:  # an upcaster that raised
                raise RecoveryError(
                    pid, stored.sequence_nr, f"upcasting {stored.type_name!r} failed: {exc!r}"
                ) from exc
            try:
                state = self.on_event(state, event)
            except Exception as exc:
                raise RecoveryError(
                    pid,
                    stored.sequence_nr,
                    f"on_event raised {type(exc).__name__} replaying {stored.type_name!r}: {exc}",
                ) from exc
            sequence_nr = stored.sequence_nr
        highest = await persistence.journal.highest_sequence_nr(pid)
        if highest > sequence_nr:
            raise RecoveryError(
                pid,
                sequence_nr + 1,
                f"the journal's highest sequence number is {highest} but events after "
                f"{sequence_nr} are gone and no readable snapshot covers them",
            )
        self.state = state
        self.sequence_nr = sequence_nr
        self._last_snapshot_nr = snapshot_nr
        self._last_snapshot_at = self.context.system.clock.now()
        self._persistence = persistence

    def receive(self, command: C) -> Awaitable[None] | None:
        """Handle one command (see the class docstring).

        A command that persists nothing and has no idempotency key (a query, a
        refusal) is answered at once; otherwise this returns the coroutine that
        awaits the journal, and commands that arrive meanwhile wait in order.
        """
        if self._recovery_due:
            return self._recover_then_receive(command)
        key = self.idempotency_key(command)
        if key is not None:
            return self._deduplicated(command, key)
        effect = self.on_command(self.state, command)
        if not effect.events and not effect.snapshot:
            reply = effect.reply_for(self.state)
            sender = self.context.sender
            if reply is not _NO_REPLY and sender is not None:
                sender.tell(reply, self.context.self)
            return None
        return self._persist(effect, None, command)

    async def _recover_then_receive(self, command: C) -> None:
        """The previous append was in doubt: recover the truth from the
        journal, then handle ``command`` on it. (If recovery fails here,
        this command fails, and its retry after the restart is safe: it
        has not run.)"""
        await self._recover()
        self._recovery_due = False
        handling = self.receive(command)
        if handling is not None:
            await handling

    async def _deduplicated(self, command: C, key: str) -> None:
        persistence = self._persistence
        await persistence.purge_idempotency_if_due()
        record = await persistence.journal.find_idempotency(
            self.persistence_id, key, now() - persistence.idempotency_window
        )
        if record is not None:
            sender = self.context.sender
            replied, original = persistence.codec.decode_outcome(record.outcome)
            if replied and sender is not None:
                sender.tell(original, self.context.self)
            return
        persisting = self._persist(self.on_command(self.state, command), key, command)
        if persisting is not None:
            await persisting

    def _persist(self, effect: Effect[E], key: str | None, command: C) -> Awaitable[None] | None:
        """Encode the events, compute the state and the reply, and start the
        append. The common case (no snapshot due) returns the journal's future
        with a callback that applies the state and replies: no task per command."""
        persistence = self._persistence
        codec = persistence.codec
        pid = self.persistence_id
        sender = self.context.sender
        state = self.state
        sequence_nr = self.sequence_nr
        stored: list[StoredEvent] = []
        timestamp = now()
        for event in effect.events:
            sequence_nr += 1
            name, version, payload = codec.encode(event)
            stored.append(
                StoredEvent(
                    pid, sequence_nr, name, version, payload, tuple(self.tags(event)), timestamp
                )
            )
            state = self.on_event(state, event)
        reply = effect.reply_for(state)
        idempotency = None
        if key is not None:
            outcome = codec.encode_outcome(
                None if reply is _NO_REPLY else reply, reply is not _NO_REPLY
            )
            idempotency = IdempotencyRecord(pid, key, outcome, timestamp)
        if not stored and idempotency is None:  # a snapshot on demand, nothing to persist
            self._persisted(state, sequence_nr, reply, sender)
            return self._maybe_snapshot(effect.snapshot)
        appended = persistence.journal.append_soon(pid, self.sequence_nr, stored, idempotency)
        if self._snapshot_due(effect.snapshot, sequence_nr):
            return self._persist_and_snapshot(
                appended, state, sequence_nr, reply, sender, effect.snapshot, command
            )
        # The cell waits for ``done``, not for the append: an append in doubt
        # must not fail the command (its retry could write it twice).
        done = appended.get_loop().create_future()

        def persisted(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                done.cancel()
                return
            failure = future.exception()
            if failure is None:
                self._persisted(state, sequence_nr, reply, sender)
                done.set_result(None)
            elif isinstance(failure, AppendInDoubt):
                self._in_doubt(failure, command, sender)
                done.set_result(None)
            else:  # nothing was written: the actor fails, the command is retried
                done.set_exception(failure)

        appended.add_done_callback(persisted)
        return done

    def _in_doubt(self, failure: AppendInDoubt, command: Any, sender: Any) -> None:
        """The command's append may or may not be committed: never
        acknowledged, never run again; its ask fails with ``failure``, and
        the actor recovers from the journal before its next message."""
        logger.warning("%s: %s; recovering from the journal", self.context.self.path, failure)
        self._recovery_due = True
        system = self.context.system
        if not system.fail_ask(sender, failure):
            system.dead_letter(command, sender, self.context.self, str(failure))

    def _persisted(self, state: S, sequence_nr: int, reply: Any, sender: Any) -> None:
        """The events are durable: apply the state, then acknowledge. An
        acknowledgement that cannot be delivered (a full mailbox refusing it)
        is a dead letter, not a failure of the command: failing it would
        retry a command whose events are already in the journal."""
        self.state = state
        self.sequence_nr = sequence_nr
        if reply is not _NO_REPLY and sender is not None:
            try:
                sender.tell(reply, self.context.self)
            except Exception as exc:
                self.context.system.dead_letter(
                    reply, self.context.self, sender, f"the reply could not be delivered: {exc}"
                )

    async def _persist_and_snapshot(
        self,
        appended: Awaitable[None],
        state: S,
        sequence_nr: int,
        reply: Any,
        sender: Any,
        requested: bool,
        command: Any,
    ) -> None:
        try:
            await appended
        except AppendInDoubt as failure:
            self._in_doubt(failure, command, sender)
            return
        self._persisted(state, sequence_nr, reply, sender)
        await self._maybe_snapshot(requested)

    def _snapshot_due(self, requested: bool, sequence_nr: int) -> bool:
        """Whether a snapshot is to be taken at ``sequence_nr`` (see the class attributes)."""
        if self._persistence.snapshots is None or sequence_nr == self._last_snapshot_nr:
            return False
        if requested:
            return True
        every = type(self).snapshot_every
        if every is not None and sequence_nr - self._last_snapshot_nr >= every:
            return True
        interval = type(self).snapshot_interval
        return (
            interval is not None
            and self.context.system.clock.now() - self._last_snapshot_at >= interval
        )

    async def _maybe_snapshot(self, requested: bool) -> None:
        if not self._snapshot_due(requested, self.sequence_nr):
            return
        # The events are durable and acknowledged: a failed snapshot must not
        # fail the command (its retry would persist the events again).
        try:
            await self.save_snapshot()
        except Exception as exc:
            logger.error(
                "snapshot of %r at sequence number %d failed; recovery will replay more",
                self.persistence_id,
                self.sequence_nr,
                exc_info=exc,
            )

    async def save_snapshot(self) -> None:
        """Snapshot the current state now (also used by snapshot_every/interval)."""
        persistence = self._persistence
        snapshots = persistence.snapshots
        if snapshots is None:
            return
        pid = self.persistence_id
        name, version, payload = persistence.codec.encode(self.state)
        await snapshots.save(StoredSnapshot(pid, self.sequence_nr, name, version, payload, now()))
        self._last_snapshot_at = self.context.system.clock.now()
        self._last_snapshot_nr = self.sequence_nr
        keep = max(1, type(self).keep_snapshots)
        kept = await snapshots.load_all(pid)
        if len(kept) > keep:
            await snapshots.delete_up_to(pid, kept[keep].sequence_nr)
            kept = kept[:keep]
        if type(self).delete_events_on_snapshot and kept:
            # Only the events that every kept snapshot covers: recovery can still
            # fall back to the oldest kept snapshot if a newer one is damaged.
            await persistence.journal.delete_events_up_to(pid, kept[-1].sequence_nr)
