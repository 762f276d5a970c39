"""Two nodes, one actor on the other: the guide's example (docs/cluster.md).

The same actor code, in this process or on another node: spawn it there,
ask it, tell it, pass refs in messages, watch it; when its node goes away,
the watch says so (``Terminated`` with NodeDown) and an ask fails with it.

Run it with ``python examples/nodes_hello.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hewitt
from hewitt.node import Node


@dataclass(frozen=True)
class Greet:
    name: str
    reply_to: hewitt.ActorRef[str]


class Greeter(hewitt.Actor[Greet | str]):
    def receive(self, message: Greet | str) -> None:
        match message:
            case Greet(name, reply_to):
                reply_to.tell(f"hello, {name}, from {self.context.system.name}")
            case str(text):
                self.context.reply(text.upper())


class Inbox(hewitt.Actor[Any]):
    """Keeps what it receives; ``"next"`` answers the oldest."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.waiting: list[hewitt.ActorRef[Any]] = []

    def receive(self, message: Any) -> None:
        if message == "next":
            assert self.context.sender is not None
            self.waiting.append(self.context.sender)
        else:
            self.received.append(message)
        while self.waiting and self.received:
            self.waiting.pop(0).tell(self.received.pop(0))


async def main() -> list[str]:
    lines: list[str] = []
    async with hewitt.ActorSystem("a") as a, hewitt.ActorSystem("b") as b:
        for system in (a, b):
            system.codec.register(Greet)  # the types that cross: on every node
        node_a = await Node.start(a, cluster="hello", secret="not-a-real-secret")
        node_b = await Node.start(b, cluster="hello", secret="not-a-real-secret")

        # Spawn on b, by class (sent as its import path), from a.
        greeter = await node_a.spawn(node_b.node_id, Greeter, name="greeter")
        lines.append(f"spawned {greeter.path} on {greeter.node.system}")

        lines.append(await greeter.ask("shout"))  # an ask across the nodes

        inbox = a.spawn(Inbox)
        greeter.tell(Greet("world", inbox))  # a ref inside a message, resolved over there
        lines.append(await inbox.ask("next"))

        watcher = a.spawn(Inbox)

        class Watcher(hewitt.Actor[Any]):
            def pre_start(self) -> None:
                self.context.watch(greeter)

            def receive(self, message: Any) -> None:
                watcher.tell(message)

        a.spawn(Watcher)
        await greeter.ask("sync")  # the watch has arrived over there
        await node_b.stop()  # b's node goes away (its goodbye: at once)
        terminated = await watcher.ask("next")
        lines.append(f"watch: {type(terminated.reason).__name__}")
        try:
            await greeter.ask("anyone?")
        except hewitt.NodeDown as down:
            lines.append(f"ask: {type(down).__name__}")
    for line in lines:
        print(line)
    return lines


if __name__ == "__main__":
    hewitt.run(main())
