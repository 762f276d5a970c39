"""The kernel: actors, refs, mailboxes, the dispatcher and the system.

Nothing here imports from the sibling packages of :mod:`hewitt`.
"""
