"""The kernel codec: envelopes and control messages as bytes, and back.

What crosses a process boundary is a *frame*: an envelope (recipient, sender,
message type, message body, trace context) or a control message (watch,
link, stop, death and exit notices, a failed ask), encoded with msgspec as
msgpack. Every ref is encoded as its address and resolved on arrival by the
receiving system (so a ref inside a message reaches the right actor, a
temporary ref gets the reply, and a ref to an actor that is gone is dead
letters). Exceptions travel as data, type name and message, and arrive as
:class:`~hewitt.RemoteError`. Nothing is ever pickled.

User messages must be registered types: dataclasses, msgspec Structs, or
the plain scalars (str, int, float, bool, bytes, None). A message of an
unregistered type is refused with :class:`~hewitt.CodecError` at the sender;
a frame naming a type the receiver does not know, or that does not decode,
is refused there (a dead letter, and the asker gets the error).

This module imports msgspec; the kernel imports it only when a system's
codec is first used (``ActorSystem.codec``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ._address import TEMP_PREFIX, ActorAddress, NodeId
from ._asks import fail_ask
from ._control import (
    AskFailed,
    ControlMessage,
    DeathNotice,
    ExitNotice,
    Link,
    Stop,
    Unlink,
    Unwatch,
    Watch,
)
from ._envelope import Item
from ._errors import (
    ActorSystemStopped,
    AskTimeout,
    CodecError,
    DeliveryError,
    NodeDown,
    NodeUnreachable,
    RemoteError,
)
from ._marks import ENVELOPE
from ._messages import POISON_PILL, Exit, Failure, PoisonPill, ReceiveTimeout, Terminated
from ._ref import ActorRef

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("hewitt")

#: Wire form of a ref: (system, host, port, incarnation, path, uid).
WireRef = tuple[str, str, int, int, str, int]


class WireError(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """An exception as data: the qualified name of its class and its message;
    for hewitt's own errors also their fields, so that they arrive as
    themselves (an ask that fails over there fails here the same way)."""

    type_name: str
    message: str
    fields: list[str | float] | None = None


class MessageFrame(msgspec.Struct, array_like=True, frozen=True, gc=False, tag=0):
    """A user message (or a runtime message delivered like one) to ``to``."""

    to: WireRef
    sender: WireRef | None
    type_name: str
    body: msgspec.Raw
    trace: dict[str, str] | None = None


class ControlFrame(msgspec.Struct, array_like=True, frozen=True, gc=False, tag=1):
    """A control message to ``to``: ``kind`` names it; ``ref`` is the watcher,
    the linked actor or the actor that stopped; ``error`` the reason."""

    to: WireRef
    kind: str
    ref: WireRef | None = None
    error: WireError | None = None


Frame = MessageFrame | ControlFrame

#: How many resolved wire refs a codec keeps (then it starts again).
_RESOLVED_CACHE: Final = 4096


def batch_header(count: int) -> bytes:
    """The msgpack array header of ``count`` items: a batch of encoded frames
    is this header followed by the frames' bytes, concatenated."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


@dataclasses.dataclass(frozen=True, slots=True)
class Undecodable:
    """Stands for a message that arrived but could not be decoded (in its
    dead letter): ``type_name`` is the type the sender named."""

    type_name: str


_SCALARS: Final = (str, int, float, bool, bytes, type(None))


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


#: hewitt's own errors that cross as themselves: name -> (class, its fields).
_KERNEL_ERRORS: Final[dict[str, tuple[type[BaseException], tuple[str, ...]]]] = {
    "hewitt.DeliveryError": (DeliveryError, ("recipient", "message_type", "reason")),
    "hewitt.AskTimeout": (AskTimeout, ("recipient", "message_type", "timeout")),
    "hewitt.NodeUnreachable": (NodeUnreachable, ("node", "detail")),
    "hewitt.NodeDown": (NodeDown, ("node", "detail")),
    "hewitt.ActorSystemStopped": (ActorSystemStopped, ()),
    "hewitt.CodecError": (CodecError, ()),
}
_KERNEL_NAMES: Final = {cls: name for name, (cls, _) in _KERNEL_ERRORS.items()}


def wire_error(exc: BaseException) -> WireError:
    if isinstance(exc, RemoteError):
        return WireError(exc.type_name, exc.remote_message)
    name = _KERNEL_NAMES.get(type(exc))
    if name is not None:
        fields = _KERNEL_ERRORS[name][1]
        values = [getattr(exc, field) for field in fields] if fields else [str(exc)]
        return WireError(name, str(exc), values)
    return WireError(_qualified(type(exc)), str(exc))


def remote_error(error: WireError) -> BaseException:
    known = _KERNEL_ERRORS.get(error.type_name)
    if known is not None and error.fields is not None:
        cls, _ = known
        try:
            return cls(*error.fields)
        except (TypeError, ValueError):
            pass  # a peer's fields that do not fit: fall back to the plain form
    return RemoteError(error.type_name, error.message)


class KernelCodec:
    """One system's codec: its registry of message types, and frames.

    Built once per system (``system.codec``); encoders and decoders are built
    once per type and reused. Thread-safe for encoding; decoding (which
    resolves refs) runs on the system's loop.
    """

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self._by_type: dict[type[Any], str] = {}
        self._by_name: dict[str, type[Any]] = {}
        self._decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}
        self._encoder = msgspec.msgpack.Encoder(enc_hook=self._enc_hook)
        self._frames = msgspec.msgpack.Decoder(Frame)
        self._batches = msgspec.msgpack.Decoder(list[Frame])
        self._resolved: dict[WireRef, ActorRef[Any]] = {}
        #: id(ref) -> (ref, its encoded wire ref): see encode_message
        self._frame_parts: dict[int, tuple[ActorRef[Any], bytes]] = {}
        #: type name -> the name encoded (the frame's third field)
        self._type_names: dict[str, bytes] = {}
        self._wire_refs = msgspec.msgpack.Decoder(WireRef)
        for scalar in _SCALARS:
            self._add(scalar, scalar.__name__)
        self._add(Terminated, "hewitt.Terminated")
        self._add(Exit, "hewitt.Exit")
        self._add(Failure, "hewitt.Failure")
        self._add(ReceiveTimeout, "hewitt.ReceiveTimeout")
        self._add(PoisonPill, "hewitt.PoisonPill")

    # ------------------------------------------------------------------
    # Registry

    def register(self, *types: type[Any], name: str | None = None) -> None:
        """Let messages of ``types`` cross to other nodes (under their
        qualified names, or ``name`` for a single type). Both ends must
        register the same types under the same names."""
        if name is not None and len(types) != 1:
            raise ValueError("name= can only be given with a single type")
        for cls in types:
            if not isinstance(cls, type) or not (
                dataclasses.is_dataclass(cls) or issubclass(cls, msgspec.Struct)
            ):
                raise CodecError(
                    f"{cls!r} cannot be registered: message types are dataclasses or "
                    "msgspec Structs"
                )
            self._add(cls, name or _qualified(cls))

    def _add(self, cls: type[Any], name: str) -> None:
        known = self._by_name.get(name)
        if known is not None and known is not cls:
            raise CodecError(f"message type name {name!r} is taken by {known!r}")
        self._by_type[cls] = name
        self._by_name[name] = cls
        self._type_names[name] = msgspec.msgpack.encode(name)

    def is_registered(self, cls: type[Any]) -> bool:
        return cls in self._by_type

    # ------------------------------------------------------------------
    # Encoding (any thread)

    def encode_message(
        self, ref: ActorRef[Any], item: Item, trace: dict[str, str] | None = None
    ) -> bytes:
        """The frame of a user message to ``ref``; raises CodecError for an
        unregistered type or a value msgspec cannot encode."""
        if type(item) is tuple and item[-1] is ENVELOPE:
            message, sender = item[0], item[1]
        else:
            message, sender = item, None
        name = self._by_type.get(type(message))
        if name is None:
            raise CodecError(
                f"message type {_qualified(type(message))} to {ref.path} is not registered "
                f"with the codec of actor system {self._system.name!r}: "
                "system.codec.register(...) it on both nodes"
            )
        try:
            body = self._encoder.encode(message)
            if trace is not None:
                frame = MessageFrame(
                    _wire_ref(ref),
                    _wire_ref(sender) if sender is not None else None,
                    name,
                    msgspec.Raw(body),
                    trace,
                )
                return self._encoder.encode(frame)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"{name} to {ref.path} cannot be encoded: {exc}") from exc
        # The frame by hand, from cached parts: a MessageFrame is a tagged
        # msgpack array [0, to, sender, type name, body, trace]; msgspec writes
        # the same bytes (a test checks it), ~1 µs slower.
        parts = self._frame_parts
        head = parts.get(id(ref))
        if head is None or head[0] is not ref:
            head = self._frame_part(ref)
        if sender is None:
            tail = b"\xc0"
        else:
            cached = parts.get(id(sender))
            if cached is None or cached[0] is not sender:
                cached = self._frame_part(sender)
            tail = cached[1]
        return b"".join((b"\x96\x00", head[1], tail, self._type_names[name], body, b"\xc0"))

    def _frame_part(self, ref: ActorRef[Any]) -> tuple[ActorRef[Any], bytes]:
        """The encoded wire ref of ``ref``, kept with ``ref`` itself (looked up
        by identity, not equality: holding the ref, the cache keeps its id
        from being reused)."""
        parts = self._frame_parts
        if len(parts) >= _RESOLVED_CACHE:
            parts.clear()
        wire = self._encoder.encode(_wire_ref(ref))
        part = (ref, wire)
        parts[id(ref)] = part
        if ref._path.startswith(TEMP_PREFIX):
            del parts[id(ref)]  # a temporary ref (encoding gave it its path): one ask
        return part

    def encode_control(self, ref: ActorRef[Any], message: ControlMessage) -> bytes:
        """The frame of a control message to ``ref``."""
        if isinstance(message, Watch):
            frame = ControlFrame(_wire_ref(ref), "watch", _wire_ref(message.watcher))
        elif isinstance(message, Unwatch):
            frame = ControlFrame(_wire_ref(ref), "unwatch", _wire_ref(message.watcher))
        elif isinstance(message, Link):
            frame = ControlFrame(_wire_ref(ref), "link", _wire_ref(message.other))
        elif isinstance(message, Unlink):
            frame = ControlFrame(_wire_ref(ref), "unlink", _wire_ref(message.other))
        elif isinstance(message, Stop):
            frame = ControlFrame(_wire_ref(ref), "stop")
        elif isinstance(message, DeathNotice):
            reason = wire_error(message.reason) if message.reason is not None else None
            frame = ControlFrame(_wire_ref(ref), "death", _wire_ref(message.ref), reason)
        elif isinstance(message, ExitNotice):
            reason = wire_error(message.reason) if message.reason is not None else None
            frame = ControlFrame(_wire_ref(ref), "exit", _wire_ref(message.ref), reason)
        elif isinstance(message, AskFailed):
            frame = ControlFrame(_wire_ref(ref), "ask-failed", None, wire_error(message.error))
        else:  # pragma: no cover - the union is closed
            raise CodecError(f"unknown control message {message!r}")
        return self._encoder.encode(frame)

    def _enc_hook(self, value: Any) -> Any:
        if isinstance(value, ActorRef):
            return _wire_ref(value)
        if isinstance(value, BaseException):
            return wire_error(value)
        if isinstance(value, PoisonPill):
            return None
        raise TypeError(f"{type(value).__qualname__} values cannot cross nodes")

    # ------------------------------------------------------------------
    # Decoding (the receiving system's loop)

    def decode(self, data: bytes, peer: str = "a peer") -> Frame:
        """Decode one frame (no message body yet); CodecError if malformed."""
        try:
            return self._frames.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"malformed frame from {peer}: {exc}") from exc

    def decode_batch(self, data: bytes | memoryview, peer: str = "a peer") -> list[Frame]:
        """Decode a batch (see :func:`batch_header`); CodecError if malformed."""
        try:
            return self._batches.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"malformed batch from {peer}: {exc}") from exc

    def pack(self, value: Any) -> tuple[str, bytes]:
        """A value of a registered type as (type name, bytes), for a protocol
        that carries values outside an envelope (a remote spawn's arguments)."""
        if isinstance(value, ActorRef):
            return _REF_NAME, self._encoder.encode(_wire_ref(value))
        name = self._by_type.get(type(value))
        if name is None:
            raise CodecError(
                f"{_qualified(type(value))} is not registered with the codec of actor "
                f"system {self._system.name!r}: system.codec.register(...) it on both nodes"
            )
        try:
            return name, self._encoder.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"{name} cannot be encoded: {exc}") from exc

    def unpack(self, type_name: str, body: bytes) -> Any:
        """The value :meth:`pack` made; CodecError if unknown or malformed."""
        if type_name == _REF_NAME:
            try:
                return self.resolve(self._wire_refs.decode(body))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise CodecError(f"a ref does not decode: {exc}") from exc
        return self._body(MessageFrame(_NOWHERE, None, type_name, msgspec.Raw(body)))

    def receive(self, data: bytes, peer: str = "a peer") -> None:
        """Decode a frame and deliver what it carries in this system.

        A malformed frame raises CodecError (a transport drops that
        connection); a message of an unknown type, or one that does not
        decode, is a dead letter here and fails the asker."""
        self.deliver(self.decode(data, peer), peer)

    def decode_message(
        self, data: bytes, peer: str = "a peer"
    ) -> tuple[ActorRef[Any], ActorRef[Any] | None, Any]:
        """Decode a message frame all the way, without delivering it:
        (recipient, sender, message). CodecError if it is not one, or does
        not decode."""
        frame = self.decode(data, peer)
        if not isinstance(frame, MessageFrame):
            raise CodecError(f"a control frame from {peer}, not a message")
        sender = self.resolve(frame.sender) if frame.sender is not None else None
        return self.resolve(frame.to), sender, self._body(frame)

    def deliver(self, frame: Frame, peer: str = "a peer") -> None:
        """Deliver a decoded frame in this system (see :meth:`receive`). After
        this system has shut down, an arriving ask fails at once."""
        resolved = self._resolved
        to = resolved.get(frame.to) or self.resolve(frame.to)
        if type(frame) is ControlFrame:
            with contextlib.suppress(ActorSystemStopped):
                to._recipient.deliver_system(to, self._control(frame))
            return
        assert isinstance(frame, MessageFrame)
        wire_sender = frame.sender
        sender = (
            None if wire_sender is None else resolved.get(wire_sender) or self.resolve(wire_sender)
        )
        decoder = self._decoders.get(frame.type_name)
        try:
            if decoder is None:
                message = self._body(frame)
            else:
                try:
                    message = decoder.decode(frame.body)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise CodecError(f"{frame.type_name} does not decode: {exc}") from exc
        except CodecError as exc:
            logger.warning("refused a message from %s to %s: %s", peer, to.path, exc)
            self._system._dead_letter(
                Undecodable(frame.type_name), sender, to, f"refused on arrival: {exc}"
            )
            return
        try:
            if sender is None:
                to._recipient.deliver(to, message)
            elif sender._path.startswith(TEMP_PREFIX):
                # A remote ask: an idle actor answers it at once (the direct hand-off).
                to._recipient.deliver_ask(to, (message, sender, ENVELOPE))
            else:
                to._recipient.deliver(to, (message, sender, ENVELOPE))
        except ActorSystemStopped as stopped:
            fail_ask(sender, stopped)
        except Exception as refused:  # a full mailbox: the sender is elsewhere
            self._system._dead_letter(message, sender, to, f"refused on arrival: {refused}")

    def _body(self, frame: MessageFrame) -> Any:
        cls = self._by_name.get(frame.type_name)
        if cls is None:
            raise CodecError(
                f"unknown message type {frame.type_name!r}: not registered with the codec of "
                f"actor system {self._system.name!r}"
            )
        if cls is PoisonPill:
            return POISON_PILL
        decoder = self._decoders.get(frame.type_name)
        if decoder is None:
            decoder = self._decoders[frame.type_name] = msgspec.msgpack.Decoder(
                cls, dec_hook=self._dec_hook
            )
        try:
            return decoder.decode(frame.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"{frame.type_name} does not decode: {exc}") from exc

    def _dec_hook(self, cls: Any, value: Any) -> Any:
        origin = getattr(cls, "__origin__", cls)
        if isinstance(origin, type) and issubclass(origin, ActorRef):
            return self.resolve(msgspec.convert(value, WireRef))
        if isinstance(origin, type) and issubclass(origin, BaseException):
            return remote_error(msgspec.convert(value, WireError))
        raise NotImplementedError(f"{cls!r} cannot be decoded")

    def _control(self, frame: ControlFrame) -> ControlMessage:
        kind = frame.kind
        ref = self.resolve(frame.ref) if frame.ref is not None else None
        reason = remote_error(frame.error) if frame.error is not None else None
        if kind == "stop":
            return Stop()
        if kind == "ask-failed" and reason is not None:
            return AskFailed(reason)
        if ref is None:
            raise CodecError(f"control message {kind!r} without its ref")
        builders: dict[str, Callable[[], ControlMessage]] = {
            "watch": lambda: Watch(ref),
            "unwatch": lambda: Unwatch(ref),
            "link": lambda: Link(ref),
            "unlink": lambda: Unlink(ref),
            "death": lambda: DeathNotice(ref, reason),
            "exit": lambda: ExitNotice(ref, reason),
        }
        build = builders.get(kind)
        if build is None:
            raise CodecError(f"unknown control message {kind!r}")
        return build()

    def resolve(self, wire: WireRef) -> ActorRef[Any]:
        """The ref for a wire ref. Refs to actors (not temporary refs) are
        cached: a cached ref stays right, as an actor that stops turns its ref
        into a dead one and an actor started again has another uid."""
        ref = self._resolved.get(wire)
        if ref is not None:
            return ref
        system, host, port, incarnation, path, uid = wire
        ref = self._system.resolve(ActorAddress(NodeId(system, host, port, incarnation), path, uid))
        if not path.startswith(TEMP_PREFIX) and ref.is_alive:
            resolved = self._resolved
            if len(resolved) >= _RESOLVED_CACHE:
                resolved.clear()
            resolved[wire] = ref
        return ref

    def forget_node(self, node: NodeId) -> None:
        """Drop the cached refs of ``node`` (its link went down)."""
        key = (node.system, node.host, node.port, node.incarnation)
        self._resolved = {w: r for w, r in self._resolved.items() if w[:4] != key}


_NOWHERE: Final[WireRef] = ("", "", 0, 0, "", 0)
#: the type name of a ref packed on its own (see KernelCodec.pack)
_REF_NAME: Final = "hewitt.ActorRef"


def _wire_ref(ref: ActorRef[Any]) -> WireRef:
    node = ref.node
    return (node.system, node.host, node.port, node.incarnation, ref.path, ref.uid)
