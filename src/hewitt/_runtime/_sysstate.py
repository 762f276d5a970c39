"""The phases of an actor system (ints: read on hot paths)."""

from typing import Final

#: Constructed, not started.
CREATED: Final = 0
#: Started: actors run.
RUNNING: Final = 1
#: ``shutdown`` is under way: actors are stopping.
STOPPING: Final = 2
#: Shut down: nothing is accepted any more.
TERMINATED: Final = 3
