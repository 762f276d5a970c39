"""What every node process of a cluster shares: the secret's variable and the setup hook."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from hewitt import ActorSystem

SECRET_VARIABLE = "HEWITT_CLUSTER_SECRET"


def find_setup(path: str) -> Callable[[ActorSystem], Any]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--setup {path!r}: expected module:function")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise SystemExit(f"--setup {path!r}: {module_name} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


async def run_setup(path: str, system: ActorSystem) -> Callable[[], Any] | None:
    """Call the setup hook at ``path`` with ``system`` (awaiting it if it is a
    coroutine function); what it returns, if callable, is its teardown, called
    (and awaited) by :func:`finish` once the system has shut down."""
    result = find_setup(path)(system)
    if inspect.isawaitable(result):
        result = await result
    return result if callable(result) else None


async def finish(teardown: Callable[[], Any]) -> None:
    result = teardown()
    if inspect.isawaitable(result):
        await result
