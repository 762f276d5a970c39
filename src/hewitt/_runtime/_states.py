"""Lifecycle states of a cell (ints, compared on the hot path)."""

from typing import Final

#: pre_start has not run yet.
NEW: Final = 0
#: handling messages.
RUNNING: Final = 1
#: waiting for its children and post_stop.
STOPPING: Final = 2
#: gone; its ref only reaches dead letters.
DEAD: Final = 3
