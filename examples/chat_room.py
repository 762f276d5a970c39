"""A chat room that watches its members and drops them when they stop.

Reproduces "Example 1 - Chat server with actors (Akka-style, pseudocode)" of
seed document 003 ("Message-Passing Concurrency - Professional Level",
section "Code Examples"): a ``ChatRoom`` with ``Join``, ``Leave`` and
``PostMessage``; ``User`` actors that write to their WebSocket on ``Deliver``
and stop on ``Disconnect``; a ``PresenceTracker`` told ``Online`` and
``Offline``. The seed's room calls ``ctx.watchWith(user, Leave(user))`` "so it
learns when a user actor stops - no manual cleanup".

hewitt features shown: ``context.watch`` / ``context.unwatch`` and the
:class:`hewitt.Terminated` message (``reason`` None for a normal stop, the
exception for a crash), which the room handles as the seed's ``Leave``; typed
refs (``ActorRef[UserCommand]``) in messages; a top-level actor spawned with
``restart=RestartType.TEMPORARY`` so that a crash stops it for good; deferred
replies (an ask answered when an event happens) instead of sleeping.

Scenario (Akka's watch semantics: exactly one ``Terminated`` per watched actor
that stops, none after ``unwatch``):

1. alice, bob, carol and dave join; the presence tracker sees all four online.
2. dave leaves explicitly: the room unwatches him and drops him.
3. alice posts "hello": delivered to alice, bob and carol. carol's socket is
   broken (the connection was reset): her ``Deliver`` crashes her; being
   TEMPORARY she is stopped, the room gets ``Terminated(carol,
   ConnectionResetError)`` and drops her.
4. bob disconnects: he closes his socket and stops; the room gets
   ``Terminated(bob, None)`` and drops him.
5. alice posts "anyone here?": delivered to alice only. The room never sent
   anything to a stopped member: the only dead letter is the ``Deliver`` that
   crashed carol (a message that failed is never silently dropped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import hewitt

# --- protocols -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


UserCommand = Deliver | Disconnect


@dataclass(frozen=True, slots=True)
class Join:
    user: hewitt.ActorRef[UserCommand]


@dataclass(frozen=True, slots=True)
class Leave:
    user: hewitt.ActorRef[UserCommand]


@dataclass(frozen=True, slots=True)
class PostMessage:
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Members:
    """Replies with the member names, sorted (``tuple[str, ...]``)."""


RoomCommand = Join | Leave | PostMessage | Members | hewitt.Terminated


@dataclass(frozen=True, slots=True)
class Online:
    user_id: str


@dataclass(frozen=True, slots=True)
class Offline:
    user_id: str
    #: Why the user went offline: "left", "disconnected" or the crash.
    why: str


@dataclass(frozen=True, slots=True)
class AwaitOffline:
    """Replies with the user's :class:`Offline` once the user is offline."""

    user_id: str


@dataclass(frozen=True, slots=True)
class WhoIsOnline:
    """Replies with the online user ids, sorted (``tuple[str, ...]``)."""


PresenceCommand = Online | Offline | AwaitOffline | WhoIsOnline


# --- the outside world: WebSockets and the clients behind them ------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """What a client received on its socket (``text`` None: the socket closed)."""

    user_id: str
    text: str | None


@dataclass(frozen=True, slots=True)
class AwaitFrames:
    """Replies with every frame received so far once there are at least ``count``."""

    count: int


ClientsCommand = Frame | AwaitFrames


class WebSocket(Protocol):
    def send(self, text: str) -> None: ...
    def close(self) -> None: ...


class LoopbackSocket:
    """A socket whose other end is the ``clients`` actor (the browsers)."""

    def __init__(self, user_id: str, clients: hewitt.ActorRef[Frame]) -> None:
        self.user_id = user_id
        self.clients = clients

    def send(self, text: str) -> None:
        self.clients.tell(Frame(self.user_id, text))

    def close(self) -> None:
        self.clients.tell(Frame(self.user_id, None))


class ResetSocket:
    """A socket whose peer has gone: every send fails."""

    def send(self, text: str) -> None:
        raise ConnectionResetError("connection reset by peer")

    def close(self) -> None:
        pass


class Clients(hewitt.Actor[ClientsCommand]):
    """Records what the clients received, in order."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.waiting: list[tuple[int, hewitt.ActorRef[tuple[Frame, ...]]]] = []

    def receive(self, message: ClientsCommand) -> None:
        match message:
            case Frame():
                self.frames.append(message)
            case AwaitFrames(count):
                sender = self.context.sender
                assert sender is not None
                self.waiting.append((count, sender))
        still_waiting = []
        for count, waiter in self.waiting:
            if len(self.frames) >= count:
                waiter.tell(tuple(self.frames))
            else:
                still_waiting.append((count, waiter))
        self.waiting = still_waiting


# --- the actors of the seed ---------------------------------------------------------


class User(hewitt.Actor[UserCommand]):
    def __init__(self, user_id: str, socket: WebSocket) -> None:
        self.user_id = user_id
        self.socket = socket

    def receive(self, message: UserCommand) -> None:
        match message:
            case Deliver(sender, text):
                self.socket.send(f"{sender}: {text}")  # a reset socket crashes the user
            case Disconnect():
                self.socket.close()
                self.context.stop()


class ChatRoom(hewitt.Actor[RoomCommand]):
    def __init__(self, room_id: str, presence: hewitt.ActorRef[PresenceCommand]) -> None:
        self.room_id = room_id
        self.presence = presence
        self.members: set[hewitt.ActorRef[UserCommand]] = set()

    def receive(self, message: RoomCommand) -> None:
        match message:
            case Join(user):
                self.members.add(user)
                self.presence.tell(Online(user.name))
                self.context.watch(user)  # the seed's ctx.watchWith(user, Leave(user))
            case Leave(user):
                self.context.unwatch(user)  # no Terminated for a user who left
                self.remove(user, "left")
            case hewitt.Terminated(user, reason):
                why = "disconnected" if reason is None else f"{type(reason).__name__}: {reason}"
                self.remove(user, why)
            case PostMessage(sender, text):
                for member in self.members:
                    member.tell(Deliver(sender, text))
            case Members():
                self.context.reply(tuple(sorted(member.name for member in self.members)))

    def remove(self, user: hewitt.ActorRef[Any], why: str) -> None:
        if user in self.members:
            self.members.discard(user)
            self.presence.tell(Offline(user.name, why))


class PresenceTracker(hewitt.Actor[PresenceCommand]):
    def __init__(self) -> None:
        self.online: set[str] = set()
        self.offline: dict[str, Offline] = {}
        self.waiting: dict[str, list[hewitt.ActorRef[Offline]]] = {}

    def receive(self, message: PresenceCommand) -> None:
        match message:
            case Online(user_id):
                self.online.add(user_id)
                self.offline.pop(user_id, None)
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
                    self.waiting.setdefault(user_id, []).append(sender)  # a deferred reply
            case WhoIsOnline():
                self.context.reply(tuple(sorted(self.online)))


# --- the scenario --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatReport:
    """What the example observed, for its test."""

    online_after_join: tuple[str, ...]
    dave_left: Offline
    carol_offline: Offline
    bob_offline: Offline
    members_at_end: tuple[str, ...]
    online_at_end: tuple[str, ...]
    frames: tuple[Frame, ...]
    dave_alive: bool
    #: Dead letters once carol has crashed (her failed Deliver) and at the end.
    dead_letters_after_crash: int
    dead_letters_at_end: int


async def main() -> ChatReport:
    async with hewitt.ActorSystem("chat") as system:
        presence: hewitt.ActorRef[PresenceCommand] = system.spawn(PresenceTracker, name="presence")
        room: hewitt.ActorRef[RoomCommand] = system.spawn(
            ChatRoom, "general", presence, name="room-general"
        )
        clients: hewitt.ActorRef[ClientsCommand] = system.spawn(Clients, name="clients")

        users: dict[str, hewitt.ActorRef[UserCommand]] = {}
        for user_id in ("alice", "bob", "carol", "dave"):
            socket: WebSocket = (
                ResetSocket() if user_id == "carol" else LoopbackSocket(user_id, clients)
            )
            # TEMPORARY: a user that crashes is not restarted (its connection is gone).
            users[user_id] = system.spawn(
                User, user_id, socket, name=user_id, restart=hewitt.RestartType.TEMPORARY
            )
            room.tell(Join(users[user_id]))
        # The room handles the Joins before Members (same sender, FIFO), and told
        # the tracker Online before it replies.
        print(f"members: {await room.ask(Members())}")
        online_after_join: tuple[str, ...] = await presence.ask(WhoIsOnline())
        print(f"online: {online_after_join}")

        room.tell(Leave(users["dave"]))
        dave_left: Offline = await presence.ask(AwaitOffline("dave"))
        print(f"dave is offline: {dave_left.why}")

        room.tell(PostMessage("alice", "hello"))
        carol_offline: Offline = await presence.ask(AwaitOffline("carol"))
        print(f"carol is offline: {carol_offline.why}")
        dead_letters_after_crash = system.statistics().dead_letters

        users["bob"].tell(Disconnect())
        bob_offline: Offline = await presence.ask(AwaitOffline("bob"))
        print(f"bob is offline: {bob_offline.why}")

        room.tell(PostMessage("alice", "anyone here?"))
        # hello to alice and bob, bob's socket closing, then alice's second line.
        frames: tuple[Frame, ...] = await clients.ask(AwaitFrames(4))
        for frame in frames:
            print(f"  {frame.user_id} <- {frame.text!r}")
        members_at_end: tuple[str, ...] = await room.ask(Members())
        online_at_end: tuple[str, ...] = await presence.ask(WhoIsOnline())
        print(f"members: {members_at_end}, online: {online_at_end}")
        return ChatReport(
            online_after_join=online_after_join,
            dave_left=dave_left,
            carol_offline=carol_offline,
            bob_offline=bob_offline,
            members_at_end=members_at_end,
            online_at_end=online_at_end,
            frames=frames,
            dave_alive=users["dave"].is_alive,
            dead_letters_after_crash=dead_letters_after_crash,
            dead_letters_at_end=system.statistics().dead_letters,
        )


if __name__ == "__main__":
    # carol's crash is logged with its traceback on the "hewitt" logger; keep it quiet.
    logging.basicConfig(level=logging.CRITICAL)
    report = hewitt.run(main())
    print(
        f"dead letters: {report.dead_letters_after_crash} after carol's crash "
        f"(the Deliver that crashed her), {report.dead_letters_at_end} at the end"
    )
