"""Lifecycle states of a cell (ints, compared on the hot path)."""

from typing import Final

#: pre_start (or post_restart) has not run yet.
NEW: Final = 0
#: handling messages.
RUNNING: Final = 1
#: paused by supervision: waiting to be rebuilt (its children stopping, a
#: backoff delay) or for its supervisor's decision after an escalation.
SUSPENDED: Final = 2
#: waiting for its children and post_stop.
STOPPING: Final = 3
#: gone; its ref only reaches dead letters.
DEAD: Final = 4
