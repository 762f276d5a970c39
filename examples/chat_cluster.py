"""The chat room of seed 003 (example 1) with its members on other nodes.

The room and the presence tracker run on the seed node (this process); the
users run on two worker node processes of a local cluster, and the room
watches them across the nodes, so presence is driven by watch alone: a user
that leaves, stops, or whose whole node dies goes offline, with the reason.

1. alice and bob join from worker 1, carol and dave from worker 2.
2. alice posts "hello": all four receive it (on the seed's ``clients``).
3. bob disconnects: the room gets ``Terminated(bob, None)``: offline, "disconnected".
4. worker 2 is killed (SIGKILL): within the down timeout the room gets
   ``Terminated`` with :class:`hewitt.NodeDown` for carol and dave: both offline.
5. alice posts "anyone here?": only alice receives it.

Run it with ``python examples/chat_cluster.py``.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hewitt
from hewitt.cluster import Pinned, local
from hewitt.node import NodeConfig

HERE = Path(__file__).resolve().parent

# --- protocols (registered under fixed names: every node speaks them) ------------


@dataclass(frozen=True, slots=True)
class Deliver:
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


@dataclass(frozen=True, slots=True)
class Join:
    user: hewitt.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class PostMessage:
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Frame:
    """What a user's client received (``text`` None: its socket closed)."""

    user_id: str
    text: str | None


@dataclass(frozen=True, slots=True)
class Offline:
    user_id: str
    why: str


@dataclass(frozen=True, slots=True)
class AwaitOffline:
    user_id: str


@dataclass(frozen=True, slots=True)
class WhoIsOnline:
    pass


@dataclass(frozen=True, slots=True)
class AwaitFrames:
    count: int


MESSAGES = (Deliver, Disconnect, Join, PostMessage, Frame, Offline, AwaitOffline, WhoIsOnline)


def setup(system: hewitt.ActorSystem) -> None:
    """Every node's setup (the workers import this module as ``chat_cluster``)."""
    for cls in MESSAGES:
        system.codec.register(cls, name=f"chat.{cls.__name__}")


# --- the users, on the workers ---------------------------------------------------------


class User(hewitt.Actor[Deliver | Disconnect]):
    """Writes what the room delivers to its client (the seed's ``clients``)."""

    def __init__(self, user_id: str, clients: hewitt.ActorRef[Frame]) -> None:
        self.user_id = user_id
        self.clients = clients

    def receive(self, message: Deliver | Disconnect) -> None:
        match message:
            case Deliver(sender, text):
                self.clients.tell(Frame(self.user_id, f"{sender}: {text}"))
            case Disconnect():
                self.clients.tell(Frame(self.user_id, None))
                self.context.stop()


# --- the room, the presence tracker and the clients, on the seed ----------------------


class Presence(hewitt.Actor[Any]):
    def __init__(self) -> None:
        self.online: set[str] = set()
        self.offline: dict[str, Offline] = {}
        self.waiting: dict[str, list[hewitt.ActorRef[Offline]]] = {}

    def receive(self, message: Any) -> None:
        match message:
            case str(user_id):
                self.online.add(user_id)
            case Offline(user_id):
                self.online.discard(user_id)
                self.offline[user_id] = message
                for waiter in self.waiting.pop(user_id, []):
                    waiter.tell(message)
            case AwaitOffline(user_id):
                sender = self.context.sender
                assert sender is not None
                if user_id in self.offline:
                    sender.tell(self.offline[user_id])
                else:
                    self.waiting.setdefault(user_id, []).append(sender)
            case WhoIsOnline():
                self.context.reply(",".join(sorted(self.online)))


class ChatRoom(hewitt.Actor[Any]):
    def __init__(self, presence: hewitt.ActorRef[Any]) -> None:
        self.presence = presence
        self.members: dict[hewitt.ActorRef[Any], str] = {}

    def receive(self, message: Any) -> None:
        match message:
            case Join(user):
                self.members[user] = user.name
                self.presence.tell(user.name)
                self.context.watch(user)  # across nodes: Terminated if it stops or its node dies
                self.context.reply("joined")
            case hewitt.Terminated(user, reason):
                name = self.members.pop(user, None)
                if name is not None:
                    why = "disconnected" if reason is None else type(reason).__name__
                    self.presence.tell(Offline(name, why))
            case PostMessage(sender, text):
                for member in self.members:
                    member.tell(Deliver(sender, text))


class Clients(hewitt.Actor[Any]):
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.waiting: list[tuple[int, hewitt.ActorRef[Any]]] = []

    def receive(self, message: Any) -> None:
        match message:
            case Frame():
                self.frames.append(message)
            case AwaitFrames(count):
                sender = self.context.sender
                assert sender is not None
                self.waiting.append((count, sender))
        ready = [(n, w) for n, w in self.waiting if len(self.frames) >= n]
        self.waiting = [(n, w) for n, w in self.waiting if len(self.frames) < n]
        for _, waiter in ready:
            waiter.tell(tuple(self.frames))


@dataclass(frozen=True, slots=True)
class ChatReport:
    online_after_join: str
    bob: Offline
    carol: Offline
    dave: Offline
    online_at_end: str
    frames: tuple[Frame, ...]


async def main(down_after: float = 3.0) -> ChatReport:
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    async with local(
        2,
        name="chat",
        setup="chat_cluster:setup",
        setup_on_seed=False,  # this process registers its own classes (below)
        env={"PYTHONPATH": python_path},
        node_config=NodeConfig(heartbeat_interval=0.2, down_after=down_after),
    ) as cluster:
        system = cluster.system
        setup(system)
        presence = system.spawn(Presence, name="presence")
        room = system.spawn(ChatRoom, presence, name="room")
        clients = system.spawn(Clients, name="clients")
        first, second = sorted(cluster.worker_nodes, key=lambda node: node.system)
        users: dict[str, hewitt.ActorRef[Any]] = {}
        for user_id, node in (
            ("alice", first),
            ("bob", first),
            ("carol", second),
            ("dave", second),
        ):
            users[user_id] = await cluster.spawn(
                "chat_cluster:User", user_id, clients, name=user_id, placement=Pinned(node)
            )
            await room.ask(Join(users[user_id]))
        online_after_join = await presence.ask(WhoIsOnline())
        where = f"alice, bob on {first.system}; carol, dave on {second.system}"
        print(f"online: {online_after_join} ({where})")

        room.tell(PostMessage("alice", "hello"))
        await clients.ask(AwaitFrames(4))

        users["bob"].tell(Disconnect())
        bob = await presence.ask(AwaitOffline("bob"))
        print(f"bob is offline: {bob.why}")

        cluster.kill(1)  # worker 2, with carol and dave
        carol = await presence.ask(AwaitOffline("carol"), timeout=down_after + 60)
        dave = await presence.ask(AwaitOffline("dave"), timeout=down_after + 60)
        print(f"carol is offline: {carol.why}; dave is offline: {dave.why}")

        room.tell(PostMessage("alice", "anyone here?"))
        frames = await clients.ask(AwaitFrames(6))  # 4 hellos, bob's close, the last line
        for frame in frames:
            print(f"  {frame.user_id} <- {frame.text!r}")
        online_at_end = await presence.ask(WhoIsOnline())
        print(f"online: {online_at_end}")
        return ChatReport(online_after_join, bob, carol, dave, online_at_end, frames)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    sys.path.insert(0, str(HERE))
    hewitt.run(main())
