"""Children on other nodes: a parent here, its child there, supervised across the link.

``await node.spawn(target, Child, ..., parent=self.context.self,
strategy=SupervisorStrategy.one_for_one(max_restarts=3, within=10))`` starts
the child on ``target`` under a :class:`RemoteChildHost` there, a stand-in
for the parent: it supervises the child with the parent's strategy (kind,
intensity, backoff, poison threshold and a decider given as a mapping of
exception classes, which cross as their import names; a decider function
cannot cross), and it watches the parent, so that the child stops when the
parent stops or its node goes down, as a child must not outlive its parent.
When the host gives up (the child failed more often than the intensity
allows), the child stops for good and a parent that watches it gets
``Terminated``.
"""

from __future__ import annotations

import importlib
from typing import Any

import msgspec

from hewitt import (
    Actor,
    ActorRef,
    Backoff,
    Directive,
    StrategyKind,
    SupervisorStrategy,
    Terminated,
)
from hewitt._runtime._supervision import DEFAULT_STRATEGY


class StrategySpec(msgspec.Struct, frozen=True):
    """A SupervisorStrategy as data."""

    kind: str
    max_restarts: int
    within: float
    poison_threshold: int
    #: exception class import name ("builtins.ValueError") -> directive value
    decider: dict[str, str]
    backoff: tuple[float, float, float, float, float] | None = None


def strategy_spec(strategy: SupervisorStrategy) -> StrategySpec:
    """The data of ``strategy``; ValueError for a decider function."""
    decider = strategy.decider
    if callable(decider) and decider is not DEFAULT_STRATEGY.decider:
        raise ValueError(
            "a decider function cannot cross nodes: give the remote child's strategy a "
            "mapping of exception classes to directives"
        )
    mapping = {} if callable(decider) else dict(decider)
    backoff = strategy.backoff
    return StrategySpec(
        strategy.kind.value,
        strategy.max_restarts,
        strategy.within,
        strategy.poison_threshold,
        {
            f"{cls.__module__}.{cls.__qualname__}": directive.value
            for cls, directive in mapping.items()
        },
        None
        if backoff is None
        else (
            backoff.min_delay,
            backoff.max_delay,
            backoff.factor,
            backoff.jitter,
            backoff.reset_after,
        ),
    )


def _exception_class(name: str) -> type[BaseException]:
    module_name, _, qualname = name.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError):
        raise LookupError(f"exception class {name!r} does not import here") from None
    if not (isinstance(target, type) and issubclass(target, BaseException)):
        raise LookupError(f"{name!r} is not an exception class")
    return target


def strategy_from(spec: StrategySpec) -> SupervisorStrategy:
    """The strategy ``spec`` describes; LookupError for an unknown exception class."""
    decider = {_exception_class(name): Directive(value) for name, value in spec.decider.items()}
    backoff = None
    if spec.backoff is not None:
        min_delay, max_delay, factor, jitter, reset_after = spec.backoff
        backoff = Backoff(
            min_delay=min_delay,
            max_delay=max_delay,
            factor=factor,
            jitter=jitter,
            reset_after=reset_after,
        )
    return SupervisorStrategy(
        kind=StrategyKind(spec.kind),
        max_restarts=spec.max_restarts,
        within=spec.within,
        poison_threshold=spec.poison_threshold,
        decider=decider,
        backoff=backoff,
    )


class RemoteChildHost(Actor[Any]):
    """Stands in, on the child's node, for a parent on another node."""

    def __init__(
        self,
        parent: ActorRef[Any],
        asker: ActorRef[Any] | None,
        factory: type[Actor[Any]],
        args: list[Any],
        kwargs: dict[str, Any],
        name: str | None,
        strategy: SupervisorStrategy,
        answer: Any,
    ) -> None:
        self.parent = parent
        # Per instance, not per class: each host mirrors its own parent's strategy
        # (the runtime reads it from the instance).
        object.__setattr__(self, "supervisor_strategy", strategy)
        self._asker = asker
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._name = name
        self._answer = answer  # (spawned, refused) message classes of the node service
        self.child: ActorRef[Any] | None = None

    def pre_start(self) -> None:
        spawned, refused = self._answer
        self.context.watch(self.parent)
        try:
            child = self.context.spawn(self._factory, *self._args, name=self._name, **self._kwargs)
        except Exception as exc:  # a bad name, a failing constructor
            if self._asker is not None:
                self._asker.tell(refused(f"{type(exc).__name__}: {exc}"))
            self.context.stop()
            return
        self.child = child
        self.context.watch(child)
        if self._asker is not None:
            self._asker.tell(spawned(child.path, child.uid))

    def receive(self, message: Any) -> None:
        if isinstance(message, Terminated):
            # The parent stopped (or its node went down), or the child stopped for good.
            self.context.stop()
