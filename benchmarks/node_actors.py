"""The actors the hewitt node benches spawn on another node, by import path
(``"benchmarks.node_actors:Echo"``): the receiving process imports this module."""

from __future__ import annotations

from typing import Final

from hewitt import Actor

#: Asked of a :class:`Counter`: how many ints it has been told.
COUNT: Final = "count"


class Echo(Actor[int]):
    """Replies every message to its sender (``node-ask``)."""

    def receive(self, message: int) -> None:
        self.context.reply(message)


class Counter(Actor[int | str]):
    """Counts the ints it is told; an ask of :data:`COUNT` gets the count so far
    (``node-tell``, ``node-scale``: asked after the last tell, from the same sender,
    it answers once all of them have been handled)."""

    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: int | str) -> None:
        if message == COUNT:
            self.context.reply(self.count)
        else:
            self.count += 1
