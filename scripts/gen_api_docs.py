"""Writes docs/api.md from the docstrings of hewitt's public API.

Run `python scripts/gen_api_docs.py` after changing the API;
tests/unit/test_api_docs.py fails when docs/api.md is stale.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType

import hewitt
import hewitt.cluster
import hewitt.node
import hewitt.routing
import hewitt.supervision
import hewitt.testing

OUT = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _doc(obj: object) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _summary(obj: object) -> str:
    """The first paragraph of the docstring, on one line."""
    return " ".join(_doc(obj).split("\n\n")[0].split())


def _members(cls: type) -> list[str]:
    lines = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            lines.append(f"- `{name}` (property): {_summary(member)}")
        elif inspect.isfunction(member) or isinstance(member, (classmethod, staticmethod)):
            func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            lines.append(f"- `{name}{_signature(func)}`: {_summary(func)}")
    return lines


def _module(module: ModuleType) -> list[str]:
    out = [f"## `{module.__name__}`", ""]
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            out += [f"### `{name}`", "", _doc(obj), ""]
            members = _members(obj)
            if members:
                out += [*members, ""]
        elif inspect.isfunction(obj):
            out += [f"### `{name}{_signature(obj)}`", "", _doc(obj), ""]
        elif hasattr(obj, "__ray_actor_class__"):  # @ray.remote: its repr has an address
            actor_class = obj.__ray_actor_class__
            out += [f"### `{name}`", "", f"A Ray actor class. {_doc(actor_class)}", ""]
        else:
            out += [f"### `{name}`", "", f"A constant: `{obj!r}`.", ""]
    return out


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `scripts/gen_api_docs.py`; do not edit by hand.",
        "",
        *_module(hewitt),
        *_module(hewitt.routing),
        *_module(hewitt.supervision),
        *_module(hewitt.testing),
        *_module(hewitt.node),
        *_module(hewitt.cluster),
        *_optional("hewitt.ray"),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _optional(name: str) -> list[str]:
    """A module of an optional extra (hewitt[ray]): documented when it imports."""
    try:
        return _module(importlib.import_module(name))
    except ImportError:
        return [f"## `{name}`", "", "(not installed here: its extra is missing)", ""]


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")
