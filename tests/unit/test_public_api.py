"""The front door: everything exported exists, is documented and reads as hewitt.X."""

from __future__ import annotations

import inspect

import hewitt
import hewitt.testing


def test_all_exports_exist_and_are_documented() -> None:
    for module in (hewitt, hewitt.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"
                assert obj.__module__ == module.__name__, name


def test_public_methods_are_documented() -> None:
    for cls in (hewitt.ActorRef, hewitt.ActorSystem, hewitt.Actor, hewitt.Context):
        for name, member in vars(cls).items():
            if name.startswith("_") or (not callable(member) and not isinstance(member, property)):
                continue
            assert getattr(member, "__doc__", None), f"{cls.__name__}.{name} has no docstring"
