"""The lifecycle of an actor: its states and the only way to change them.

::

                 pre_start done                 stop
    STARTING ─────────────────────▶ RUNNING ───────────────▶ STOPPING ──▶ STOPPED
       ▲  │                          │  ▲ │                     ▲
       │  │ escalated  ┌─────────────┘  │ │ failure escalated   │
       │  └──────────▶ │   SUSPENDED ───┘ └──────────┐          │
       │               ▼        │ resumed            ▼          │
       │           (decision)   └──────────────▶ RESTARTING ────┘
       └────────── rebuilt (children gone, backoff over) ┘

A cell enters the machine in STARTING, or directly in RUNNING when it has no
start hook to run (nothing to wait for: most actors, and the guardians).
Every transition goes through :func:`transition`, which refuses the ones not
in :data:`TRANSITIONS` (a refusal is a bug in the runtime, never a user
error). States are small ints because the dispatcher compares them for every
turn. docs/semantics.md (§6) draws the same machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._cell import Cell

#: Built; ``pre_start`` (or ``post_restart`` after a restart) has not run yet.
STARTING: Final = 0
#: Handling messages.
RUNNING: Final = 1
#: Its failure was escalated: waiting for its supervisor's decision.
SUSPENDED: Final = 2
#: Its supervisor restarts it: waiting for its children to stop and for the
#: backoff delay; then it is rebuilt from its factory (back to STARTING).
RESTARTING: Final = 3
#: Stopping: its children stop one at a time (reverse start order), then
#: ``post_stop`` runs.
STOPPING: Final = 4
#: Gone: its ref only reaches dead letters.
STOPPED: Final = 5

NAMES: Final = ("starting", "running", "suspended", "restarting", "stopping", "stopped")

TRANSITIONS: Final = frozenset(
    {
        (STARTING, RUNNING),
        (STARTING, SUSPENDED),
        (STARTING, RESTARTING),
        (STARTING, STOPPING),
        (RUNNING, SUSPENDED),
        (RUNNING, RESTARTING),
        (RUNNING, STOPPING),
        (SUSPENDED, RUNNING),
        (SUSPENDED, RESTARTING),
        (SUSPENDED, STOPPING),
        (RESTARTING, STARTING),
        (RESTARTING, STOPPING),
        (STOPPING, STOPPED),
    }
)


class IllegalTransition(RuntimeError):
    """The runtime tried a lifecycle transition that the state machine forbids."""


def transition(cell: Cell[Any], to: int) -> None:
    """Move ``cell`` to state ``to``; raises IllegalTransition if not allowed."""
    current = cell.state
    if (current, to) not in TRANSITIONS:
        raise IllegalTransition(
            f"{cell.ref.path}: lifecycle transition {NAMES[current]} -> {NAMES[to]} "
            "is not allowed (a bug in hewitt)"
        )
    cell.state = to


def name(state: int) -> str:
    """The name of a lifecycle state."""
    return NAMES[state]
