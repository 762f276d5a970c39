"""Supervisor: an actor that starts its children from a list of child specs (OTP)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._runtime._actor import Actor
from .._runtime._errors import HewittError
from .._runtime._messages import Terminated
from .._runtime._ref import ActorRef
from .._runtime._supervision import RestartType, SupervisorStrategy

_NAME = re.compile(r"[A-Za-z0-9_\-.:@+=~,!*'()]+")


class InvalidChildSpec(HewittError, ValueError):
    """A child spec field is invalid; the message names the spec and the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """One child of a :class:`Supervisor`, as data (OTP's child spec).

    Attributes:
        name: the child's name under its supervisor (its ``id`` in OTP).
        factory: builds the actor: ``factory(*args, **kwargs)``.
        args, kwargs: arguments of the factory (kept, reused at each restart).
        restart: PERMANENT (default, as in OTP: restarted after a failure and
            after a normal stop), TRANSIENT (only after a failure) or
            TEMPORARY (never).
    """

    name: str
    factory: Callable[..., Actor[Any]]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    restart: RestartType = RestartType.PERMANENT

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _NAME.fullmatch(self.name) is None:
            raise InvalidChildSpec(
                f"ChildSpec.name must be a valid actor name (letters, digits, -_.:@+=~,!*'()), "
                f"got {self.name!r}"
            )
        if not callable(self.factory):
            raise InvalidChildSpec(
                f"ChildSpec {self.name!r}: factory must be callable, got {self.factory!r}"
            )
        if not isinstance(self.args, tuple):
            raise InvalidChildSpec(
                f"ChildSpec {self.name!r}: args must be a tuple, got {type(self.args).__name__}"
            )
        if not isinstance(self.kwargs, Mapping) or not all(
            isinstance(key, str) for key in self.kwargs
        ):
            raise InvalidChildSpec(
                f"ChildSpec {self.name!r}: kwargs must be a mapping with str keys"
            )
        reserved = {"name", "restart"} & set(self.kwargs)
        if reserved:
            raise InvalidChildSpec(
                f"ChildSpec {self.name!r}: kwargs may not use the reserved names {sorted(reserved)}"
            )
        if not isinstance(self.restart, RestartType):
            raise InvalidChildSpec(
                f"ChildSpec {self.name!r}: restart must be a RestartType, got {self.restart!r}"
            )
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))


@dataclass(frozen=True, slots=True)
class WhichChildren:
    """Ask a Supervisor for its live children: replies ``list[tuple[str, ActorRef]]``."""


@dataclass(frozen=True, slots=True)
class StartChild:
    """Ask a Supervisor to start one more child: replies its ref.

    Idempotent: if a live child already has this spec, its ref is the reply.
    A live child of that name with another spec fails the ask with
    :class:`ChildAlreadyStarted` (OTP's ``already_started``); nothing restarts.
    The child is kept across restarts of the supervisor, until
    ``TerminateChild`` or its own final stop."""

    spec: ChildSpec


class ChildAlreadyStarted(HewittError):
    """``StartChild`` named a live child that was started from another spec."""

    def __init__(self, supervisor: str, name: str, ref: ActorRef[Any]) -> None:
        super().__init__(
            f"supervisor {supervisor} already has a live child {name!r} ({ref}) "
            "started from another spec"
        )
        self.name = name
        self.ref = ref


class _DynamicSpecs:
    """Key of the per-system table of the specs that StartChild added, by
    supervisor ref: they outlive a restart of the supervisor (its instance)."""


@dataclass(frozen=True, slots=True)
class TerminateChild:
    """Ask a Supervisor to stop a child for good (no restart): replies True if it existed."""

    name: str


SupervisorMessage = WhichChildren | StartChild | TerminateChild


class Supervisor(Actor[SupervisorMessage]):
    """Starts its children from child specs, in order, and supervises them.

    Either subclass it and set the class attributes ``child_specs`` and
    ``supervisor_strategy``, or spawn it with both as arguments::

        system.spawn(Supervisor, [ChildSpec(name="store", factory=KvStore)],
                     SupervisorStrategy.one_for_one(max_restarts=5, within=10),
                     name="kv")

    Children start in list order when the supervisor starts, and again (from
    the specs) when it is restarted: a restart of a supervisor stops its
    children first, as in OTP. Child spec names must be unique.
    """

    child_specs: Sequence[ChildSpec] = ()

    def __init__(
        self,
        child_specs: Sequence[ChildSpec] | None = None,
        strategy: SupervisorStrategy | None = None,
    ) -> None:
        specs = tuple(child_specs if child_specs is not None else type(self).child_specs)
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidChildSpec(f"duplicate child spec names: {duplicates}")
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise InvalidChildSpec(f"child specs must be ChildSpec, got {spec!r}")
        self.specs = specs
        if strategy is not None:
            if not isinstance(strategy, SupervisorStrategy):
                raise InvalidChildSpec(f"strategy must be a SupervisorStrategy, got {strategy!r}")
            # The runtime reads the strategy from the instance first.
            self.supervisor_strategy = strategy  # type: ignore[misc]

    def pre_start(self) -> None:
        for spec in (*self.specs, *self._dynamic().values()):
            self._start(spec)

    def post_stop(self) -> None:
        table = self.context.system.extensions.get(_DynamicSpecs)
        if table is not None:
            table.pop(self.context.self, None)

    def _dynamic(self) -> dict[str, ChildSpec]:
        """The specs StartChild added, in start order (kept across restarts)."""
        table: dict[ActorRef[Any], dict[str, ChildSpec]] = (
            self.context.system.extensions.setdefault(_DynamicSpecs, {})
        )
        return table.setdefault(self.context.self, {})

    def _start(self, spec: ChildSpec) -> ActorRef[Any]:
        ref = self.context.spawn(
            spec.factory, *spec.args, name=spec.name, restart=spec.restart, **spec.kwargs
        )
        self.context.watch(ref)
        return ref

    def _spec_of(self, name: str) -> ChildSpec | None:
        dynamic = self._dynamic().get(name)
        if dynamic is not None:
            return dynamic
        return next((spec for spec in self.specs if spec.name == name), None)

    def receive(self, message: SupervisorMessage) -> None:
        # Its children's Terminated come too (it watches them): see the last case.
        event: SupervisorMessage | Terminated = message
        match event:
            case WhichChildren():
                self.context.reply([(ref.name, ref) for ref in self.context.children()])
            case StartChild(spec):
                live = self.context.child(spec.name)
                if live is None:
                    self._dynamic()[spec.name] = spec
                    self.context.reply(self._start(spec))
                elif self._spec_of(spec.name) == spec:
                    self.context.reply(live)  # already started from this spec
                else:
                    error = ChildAlreadyStarted(self.context.self.path, spec.name, live)
                    self.context.reply_failure(error)
            case TerminateChild(name):
                child = self.context.child(name)
                self._dynamic().pop(name, None)
                if child is not None:
                    self.context.stop(child)
                self.context.reply(child is not None)
            case Terminated(ref):
                # A child gone for good (not replaced by a restart): a dynamic
                # one is forgotten, so that a restart does not bring it back.
                if self.context.child(ref.name) is None:
                    self._dynamic().pop(ref.name, None)
