"""The node service (``/system/node``): remote spawn and lookup by path.

Other nodes address it with the uid their handshake told them. Its
requests and answers are msgspec Structs registered with the codec when the
node starts; an actor class is named by its import path and built from
arguments that crossed through the codec (never pickled).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

import msgspec

from hewitt import Actor, Directive, HewittError, SupervisorStrategy

from ._remote_child import RemoteChildHost, StrategySpec, strategy_from

if TYPE_CHECKING:
    from ._node import Node


class SpawnRequest(msgspec.Struct, frozen=True):
    actor: str
    args: list[tuple[str, bytes]]
    kwargs: dict[str, tuple[str, bytes]]
    name: str | None = None
    #: a parent on another node (a packed ref) and its strategy: see _remote_child
    parent: tuple[str, bytes] | None = None
    strategy: StrategySpec | None = None


class Spawned(msgspec.Struct, frozen=True):
    path: str
    uid: int


class SpawnRefused(msgspec.Struct, frozen=True):
    reason: str


class Identify(msgspec.Struct, frozen=True):
    path: str


class Identity(msgspec.Struct, frozen=True):
    path: str
    uid: int  # 0: no live actor there


class LoadQuery(msgspec.Struct, frozen=True):
    """Asks a node how loaded it is (for placement)."""


class Load(msgspec.Struct, frozen=True):
    live_actors: int
    ready_actors: int


SERVICE_TYPES: tuple[type[Any], ...] = (
    StrategySpec,
    SpawnRequest,
    Spawned,
    SpawnRefused,
    Identify,
    Identity,
    LoadQuery,
    Load,
)


class RemoteSpawnError(HewittError):
    """A spawn on another node failed there: ``node`` is where, ``actor`` the
    import path asked for, ``reason`` what the other node said."""

    def __init__(self, node: str, actor: str, reason: str) -> None:
        super().__init__(f"spawning {actor} on node {node} failed: {reason}")
        self.node = node
        self.actor = actor
        self.reason = reason


def import_path(cls: type[Any] | str) -> str:
    """``module:qualname`` of an actor class (or the string itself)."""
    if isinstance(cls, str):
        return cls
    return f"{cls.__module__}:{cls.__qualname__}"


def find_actor_class(path: str) -> type[Actor[Any]]:
    """The Actor subclass at ``module:qualname`` (or ``module.qualname``);
    LookupError naming what is missing."""
    module_name, sep, qualname = path.partition(":")
    if not sep:
        module_name, _, qualname = path.rpartition(".")
    if not module_name or not qualname:
        raise LookupError(f"{path!r} is not an import path (module:Class)")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"module {module_name!r} cannot be imported: {exc}") from None
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LookupError(f"{module_name!r} has no {qualname!r}") from None
    if not (isinstance(target, type) and issubclass(target, Actor)):
        raise LookupError(f"{path!r} is not an Actor subclass")
    return target


def _stop_a_failed_host(exc: BaseException) -> Directive:
    return Directive.STOP  # a host that gave up on its child is not started again


class NodeService(Actor[Any]):
    supervisor_strategy = SupervisorStrategy(decider=_stop_a_failed_host)

    def __init__(self, node: Node) -> None:
        self._node = node

    def receive(self, message: Any) -> Any:
        if isinstance(message, SpawnRequest):
            return self._spawn_request(message)  # a coroutine: the runtime awaits it
        elif isinstance(message, LoadQuery):
            statistics = self.context.system.statistics()
            self.context.reply(Load(statistics.live_actors, statistics.ready_actors))
        elif isinstance(message, Identify):
            ref = self.context.system.lookup(message.path)
            self.context.reply(Identity(message.path, ref.uid if ref is not None else 0))

    async def _spawn_request(self, request: SpawnRequest) -> None:
        allowed = self._node.config.allow_spawn
        if allowed is not None and not allowed(request.actor):
            self.context.reply(
                SpawnRefused(f"{request.actor} may not be spawned here (allow_spawn)")
            )
            return
        try:
            # Imported on a thread: a first import can take long (numpy, say),
            # and this node's loop (its heartbeats, its actors) goes on meanwhile.
            cls = await asyncio.to_thread(find_actor_class, request.actor)
        except LookupError as exc:
            self.context.reply(SpawnRefused(str(exc)))
            return
        answer = self._spawn(request, cls)
        if answer is not None:
            self.context.reply(answer)

    def _spawn(self, request: SpawnRequest, cls: type[Actor[Any]]) -> Spawned | SpawnRefused | None:
        codec = self.context.system.codec
        try:
            args = [codec.unpack(name, body) for name, body in request.args]
            kwargs = {key: codec.unpack(name, body) for key, (name, body) in request.kwargs.items()}
        except HewittError as exc:
            return SpawnRefused(f"the arguments do not decode: {exc}")
        if request.parent is not None:
            return self._spawn_under_host(request, cls, args, kwargs)
        try:
            ref = self.context.system.spawn(cls, *args, name=request.name, **kwargs)
        except Exception as exc:  # a taken name, a bad name, a failing constructor
            return SpawnRefused(f"{type(exc).__name__}: {exc}")
        return Spawned(ref.path, ref.uid)

    def _spawn_under_host(
        self, request: SpawnRequest, cls: type[Actor[Any]], args: list[Any], kwargs: dict[str, Any]
    ) -> SpawnRefused | None:
        assert request.parent is not None
        codec = self.context.system.codec
        try:
            parent = codec.unpack(*request.parent)
            strategy = (
                strategy_from(request.strategy)
                if request.strategy is not None
                else SupervisorStrategy()
            )
        except (HewittError, LookupError, ValueError) as exc:
            return SpawnRefused(f"the parent or its strategy does not decode: {exc}")
        self.context.spawn(
            RemoteChildHost,
            parent,
            self.context.sender,
            cls,
            args,
            kwargs,
            request.name,
            strategy,
            (Spawned, SpawnRefused),
        )
        return None  # the host answers, once it has started the child

    def post_stop(self) -> None:
        self._node._closed("its actor system stopped")
