"""A key-value store actor, driven from async code.

Reproduces the ``KvStore`` example of seed document 001 ("Lesson 20: The Actor
Model with Rust", section "A Generic Actor Framework"): an actor owning a
``HashMap`` that handles ``Set``, ``Get``, ``Delete``, ``Dump`` and ``Stop``.

hewitt features shown: the *async API* (``async with ActorSystem(...)``,
``await ref.ask(...)``), request-reply without reply channels (the Rust
version puts an ``mpsc::Sender`` in ``Get`` and ``Dump``; here the actor calls
``context.reply`` and the caller awaits ``ask``), a message union matched with
``match``, and stopping an actor from its own handler (``context.stop()``)
while the caller awaits ``ref.wait_terminated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import hewitt


@dataclass(frozen=True, slots=True)
class Set:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Get:
    """Replies with the value (``str``) or ``None`` when the key is absent."""

    key: str


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


@dataclass(frozen=True, slots=True)
class Dump:
    """Replies with a read-only snapshot (``Mapping[str, str]``) of all the data."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Stops the store once the messages sent before it are handled."""


KvMsg = Set | Get | Delete | Dump | Stop


class KvStore(hewitt.Actor[KvMsg]):
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def receive(self, message: KvMsg) -> None:
        match message:
            case Set(key, value):
                self.data[key] = value
            case Get(key):
                self.context.reply(self.data.get(key))
            case Delete(key):
                self.data.pop(key, None)
            case Dump():
                # Replies are messages too: hand out an immutable snapshot,
                # never the actor's own dict.
                self.context.reply(MappingProxyType(dict(self.data)))
            case Stop():
                self.context.stop()

    def post_stop(self) -> None:
        print(f"KvStore stopped with {len(self.data)} keys")


@dataclass(frozen=True, slots=True)
class KvReport:
    """What the example observed, for its test."""

    name: str | None
    dump: Mapping[str, str]
    language_after_delete: str | None
    dump_after_delete: Mapping[str, str]
    alive_after_stop: bool


async def main() -> KvReport:
    async with hewitt.ActorSystem("kv-store") as system:
        store: hewitt.ActorRef[KvMsg] = system.spawn(KvStore, name="store")

        store.tell(Set("name", "Atharva"))
        store.tell(Set("language", "Rust"))

        name: str | None = await store.ask(Get("name"), timeout=2.0)
        print(f"name = {name!r}")

        dump: Mapping[str, str] = await store.ask(Dump(), timeout=2.0)
        print(f"All data: {dict(dump)}")

        store.tell(Delete("language"))
        language: str | None = await store.ask(Get("language"), timeout=2.0)
        print(f"language after Delete = {language!r}")
        dump_after_delete: Mapping[str, str] = await store.ask(Dump(), timeout=2.0)
        print(f"All data after Delete: {dict(dump_after_delete)}")

        store.tell(Stop())
        await store.wait_terminated(timeout=2.0)
        return KvReport(name, dump, language, dump_after_delete, store.is_alive)


if __name__ == "__main__":
    hewitt.run(main())
