"""The demo behind ``hewitt demo``: a live bank of persistent account actors.

Thousands of event-sourced accounts, tellers that move money between them with
asks and replies, and an audit service that crashes on purpose and is
restarted by its supervisor; at the end every account is asked for its
balance and no money may have been created or lost, run after run.

An application of hewitt, not a part of the library: nothing in ``hewitt``
(the runtime, routing, persistence, supervision, the test kit) imports this
package, and the ``hewitt`` command imports it only to run ``hewitt demo``.
``tests/integration/test_demo.py`` checks both.
"""

from ._run import DEFAULT_DB, IN_MEMORY, DemoOptions, DemoResult, run_demo, run_demo_interruptible

__all__ = [
    "DEFAULT_DB",
    "IN_MEMORY",
    "DemoOptions",
    "DemoResult",
    "run_demo",
    "run_demo_interruptible",
]
