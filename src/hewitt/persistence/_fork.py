"""Stores used across ``fork()``: a store's writer process, threads and
connections belong to the process that started them. In a forked child they
are copies that nobody serves (its threads are not there, its pipes and
sockets are the parent's), so using them would hang or interfere with the
parent: a store refuses with an error that says so instead.

A counter of forks, bumped in every child, makes the check one comparison
(``os.getpid()`` is a system call).
"""

from __future__ import annotations

import os

from ._records import PersistenceError

#: How many forks away this process is from the one that imported this module.
forks = 0


def _forked() -> None:
    global forks
    forks += 1


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked)


class Owner:
    """The process that started a store's resources (its writer, threads,
    connections)."""

    __slots__ = ("forks", "pid")

    def __init__(self) -> None:
        self.forks = forks
        self.pid = os.getpid()

    @property
    def here(self) -> bool:
        """Whether this is still that process (not a fork of it)."""
        return self.forks == forks

    def check(self, store: str) -> None:
        """PersistenceError unless this is the owning process."""
        if self.forks != forks:
            raise PersistenceError(
                f"{store} was opened by process {self.pid}, and this process "
                f"({os.getpid()}) is a fork of it: its writer, threads and connections "
                "belong to that process. Open a new journal or store in this process, "
                "after the fork"
            )
