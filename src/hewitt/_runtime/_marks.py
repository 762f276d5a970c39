"""Sentinels shared by the mailbox code (a module of its own: no import cycles)."""

from typing import Final

#: Marks a mailbox item that carries a sender: (message, sender, ENVELOPE).
#: A message told without a sender is queued as itself, so the common tell
#: allocates nothing; the mark keeps a user's own tuples from being mistaken
#: for an envelope.
ENVELOPE: Final = object()

#: ``Cell.pending`` when no message waits there.
NOTHING: Final = object()
