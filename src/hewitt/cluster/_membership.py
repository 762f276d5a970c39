"""Membership: who is in the cluster, decided by one node, the seed.

The seed's :class:`MembershipService` (``/system/membership``) holds the
table: every member that joined, with the epoch at which it joined or went
down. Each change (a join, a down) increments the epoch and the seed sends
the whole :class:`View` to every member's :class:`MembershipAgent`
(``/system/membership-agent``), which applies views in epoch order only and
publishes :class:`MemberUp` and :class:`MemberDown` on its system's event
stream. One decider means every node agrees on who is up, and a DOWN is
final for that incarnation: the agents take their own link to it down too
(quarantine), and a node that comes back is a new incarnation with a new
join. The seed declares a member down when its link to it goes down (the
member stopped, crashed, restarted, or stayed unreachable for the down
timeout); while the seed itself is down, membership does not change but
the members go on messaging one another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec

from hewitt import Actor, ActorRef, ActorSystem, NodeId, Terminated
from hewitt.node import Node


class Join(msgspec.Struct, frozen=True):
    """A member's agent asks the seed to let its node in; ``role`` is free text."""

    role: str = ""


class View(msgspec.Struct, frozen=True):
    """The membership at ``epoch``: the members up, and those down for good."""

    epoch: int
    up: list[NodeId]
    down: list[NodeId]


class Down(msgspec.Struct, frozen=True):
    """Tells the seed that ``node`` is down for good (its process is known to
    have exited, say), without waiting for the down timeout."""

    node: NodeId
    reason: str = ""


class GetView(msgspec.Struct, frozen=True):
    """Answered with the current :class:`View`."""


MEMBERSHIP_TYPES: tuple[type[Any], ...] = (Join, View, Down, GetView, NodeId)


@dataclass(frozen=True, slots=True)
class MemberUp:
    """Published on every member's event stream: ``node`` joined (at ``epoch``)."""

    node: NodeId
    epoch: int


@dataclass(frozen=True, slots=True)
class MemberDown:
    """Published: ``node`` (that incarnation) left or failed, for good (at ``epoch``)."""

    node: NodeId
    epoch: int


def register_types(system: ActorSystem) -> None:
    codec = system.codec
    for cls in MEMBERSHIP_TYPES:
        if not codec.is_registered(cls):
            codec.register(cls, name=f"hewitt.cluster.{cls.__name__}")


class MembershipService(Actor[Any]):
    """The seed's table of members (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.epoch = 0
        #: member node -> its agent
        self.up: dict[NodeId, ActorRef[Any]] = {}
        self.down: list[NodeId] = []
        self._local_agent: ActorRef[Any] | None = None

    def pre_start(self) -> None:
        self._local_agent = self.context.system.lookup("/system/membership-agent")
        self._admit(self._node.node_id, self._local_agent)

    def receive(self, message: Any) -> None:
        if isinstance(message, Join):
            sender = self.context.sender
            if sender is None:
                return
            node = sender.node
            if node in self.down:
                return  # a member declared down never comes back as itself
            self._retire_older(node)
            self._admit(node, sender)
        elif isinstance(message, Down):
            self._declare_down(message.node)
        elif isinstance(message, GetView):
            self.context.reply(self._view())
        elif isinstance(message, Terminated):
            node = message.ref.node
            if self.up.get(node) == message.ref:
                self._declare_down(node)

    def _admit(self, node: NodeId, agent: ActorRef[Any] | None) -> None:
        if agent is None or node in self.up:
            if agent is not None:
                agent.tell(self._view())
            return
        self.up[node] = agent
        if node != self._node.node_id:
            self.context.watch(agent)  # Terminated(NodeDown) when its node goes down
        self.epoch += 1
        self._broadcast()

    def _retire_older(self, node: NodeId) -> None:
        for member in list(self.up):
            if (member.system, member.host, member.port) == (node.system, node.host, node.port):
                self._declare_down(member, broadcast=False)

    def _declare_down(self, node: NodeId, broadcast: bool = True) -> None:
        agent = self.up.pop(node, None)
        if agent is None:
            return
        self.context.unwatch(agent)
        self.down.append(node)
        if len(self.down) > 10_000:
            del self.down[:5_000]  # old incarnations are quarantined by the links anyway
        self.epoch += 1
        link = self._node.link(node)
        if link is not None:
            link.down("declared down by the seed")
        if broadcast:
            self._broadcast()

    def _view(self) -> View:
        return View(self.epoch, list(self.up), list(self.down[-1000:]))

    def _broadcast(self) -> None:
        view = self._view()
        for agent in self.up.values():
            agent.tell(view)


class MembershipAgent(Actor[Any]):
    """A member's copy of the seed's view; publishes MemberUp/MemberDown."""

    def __init__(
        self,
        node: Node,
        seed: ActorRef[Any] | None,
        role: str,
        joined: asyncio.Future[View] | None = None,
    ) -> None:
        self._node = node
        self._seed = seed
        self._role = role
        #: completed with the first view that has this node up
        self._joined = joined
        self.epoch = -1
        self.up: list[NodeId] = []
        self._down: set[NodeId] = set()

    def pre_start(self) -> None:
        if self._seed is not None:
            self._seed.tell(Join(self._role))

    def receive(self, message: Any) -> None:
        if isinstance(message, View):
            self._apply(message)
        elif isinstance(message, GetView):
            self.context.reply(View(self.epoch, list(self.up), sorted(self._down, key=str)))

    def _apply(self, view: View) -> None:
        if view.epoch <= self.epoch:
            return  # an older (or the same) view: epochs only go forward
        self.epoch = view.epoch
        stream = self.context.system.event_stream
        before = set(self.up)
        now = set(view.up)
        for node in view.down:
            if node not in self._down:
                self._down.add(node)
                link = self._node.link(node)
                if link is not None and node != self._node.node_id:
                    link.down("declared down by the seed")
                if node in before:
                    stream.publish(MemberDown(node, view.epoch))
        for node in before - now:
            if node not in self._down:
                self._down.add(node)
                stream.publish(MemberDown(node, view.epoch))
        alive = [node for node in view.up if node not in self._down]  # down is final
        for node in alive:
            if node not in before:
                stream.publish(MemberUp(node, view.epoch))
        self.up = alive
        joined = self._joined
        if joined is not None and not joined.done() and self._node.node_id in alive:
            joined.set_result(view)
