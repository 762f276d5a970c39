"""The codec: msgspec msgpack with registered, versioned types and upcasters.

Events and snapshots are stored as (type name, version, msgpack payload). A
type is registered under a stable name (not its Python path, which refactors
change) and a version. When a type's schema changes, bump its version and
register an upcaster from the old version: on replay, old payloads (decoded to
plain data) go through the upcasters one version at a time, then become the
current type. Never pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ._records import UnknownEventType

Upcaster = Callable[[Any], Any]


class Codec:
    """Registered types, their versions and upcasters. One per application."""

    def __init__(self) -> None:
        self._by_type: dict[type[Any], tuple[str, int]] = {}
        self._by_name: dict[str, tuple[type[Any], int]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()

    def register(self, cls: type[Any], name: str | None = None, version: int = 1) -> None:
        """Register ``cls`` (a msgspec Struct or a dataclass) under ``name``
        (default: its qualified name) at schema ``version``."""
        name = name or cls.__qualname__
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"codec: version of {name!r} must be an int >= 1, got {version!r}")
        known = self._by_name.get(name)
        if known is not None and known[0] is not cls:
            raise ValueError(f"codec: {name!r} is already registered for {known[0].__qualname__}")
        self._by_type[cls] = (name, version)
        self._by_name[name] = (cls, version)

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: turn the plain data of ``name`` at ``from_version`` into
        ``from_version + 1``."""

        def register(function: Upcaster) -> Upcaster:
            self._upcasters[(name, from_version)] = function
            return function

        return register

    def type_of(self, value: Any) -> tuple[str, int]:
        try:
            return self._by_type[type(value)]
        except KeyError:
            raise UnknownEventType(
                f"codec: {type(value).__qualname__} is not registered; "
                "call codec.register(...) for every event and state type"
            ) from None

    def encode(self, value: Any) -> tuple[str, int, bytes]:
        """(type name, version, payload) of ``value``."""
        name, version = self.type_of(value)
        return name, version, self._encoder.encode(value)

    def encode_plain(self, value: Any) -> bytes:
        """msgpack of a plain value (replies kept for idempotency keys)."""
        return self._encoder.encode(value)

    def decode_plain(self, payload: bytes) -> Any:
        return self._decoder.decode(payload)

    def encode_outcome(self, value: Any, replied: bool) -> bytes:
        """The outcome of a command kept for its idempotency key: whether it
        replied, and the reply with its registered type if it has one."""
        known = self._by_type.get(type(value))
        if known is not None:
            return self._encoder.encode((replied, known[0], known[1], self._encoder.encode(value)))
        return self._encoder.encode((replied, None, 0, self._encoder.encode(value)))

    def decode_outcome(self, data: bytes) -> tuple[bool, Any]:
        """(replied, reply) as encode_outcome stored them."""
        replied, name, version, payload = self._decoder.decode(data)
        if name is None:
            return bool(replied), self._decoder.decode(payload)
        return bool(replied), self.decode(name, version, payload)

    def decode(self, name: str, version: int, payload: bytes) -> Any:
        """The value stored as (name, version, payload), upcast to the current version.

        Raises UnknownEventType for a name no code registers, or a version with
        no upcaster path; msgspec errors for bad bytes (callers name the
        persistence id and sequence number).
        """
        known = self._by_name.get(name)
        if known is None:
            raise UnknownEventType(f"type {name!r} (version {version}) is not registered")
        cls, current = known
        if version == current:
            return msgspec.msgpack.decode(payload, type=cls)
        if version > current:
            raise UnknownEventType(
                f"type {name!r} is stored at version {version}, newer than this code ({current})"
            )
        data = self._decoder.decode(payload)
        while version < current:
            upcast = self._upcasters.get((name, version))
            if upcast is None:
                raise UnknownEventType(
                    f"type {name!r}: no upcaster from version {version} to {version + 1}"
                )
            data = upcast(data)
            version += 1
        return msgspec.convert(data, type=cls)
