"""The ``hewitt`` command.

Subcommands:
    demo    a live bank: thousands of persistent account actors, concurrent
            transfers, and a check that no money was created or lost, run
            after run (:mod:`hewitt.demo`).
    node    a cluster node in this process: a seed, or a member that joins
            one (:mod:`hewitt.cluster`).

Starting the command costs only what the chosen subcommand needs. Besides the
``hewitt`` package itself (the runtime, which any submodule brings in), this
module imports only ``argparse``: it knows each subcommand by name and summary,
and imports the subcommand's module (its own parser and everything it uses:
the demo, persistence, ...) when that subcommand runs, as pip's
``commands_dict`` does. So ``hewitt --help`` and ``hewitt --version`` never
import persistence or the demo; a test checks it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["main"]


def _demo(arguments: list[str], prog: str) -> int:
    from ._demo_command import main

    return main(arguments, prog)


def _node(arguments: list[str], prog: str) -> int:
    from hewitt.cluster._worker import main

    return main(arguments, prog)


@dataclass(frozen=True, slots=True)
class _Command:
    #: one line for ``hewitt --help``
    summary: str
    #: runs the subcommand on its arguments, ``prog`` naming it in messages;
    #: returns the exit code. Imports the subcommand's module when called.
    run: Callable[[list[str], str], int]


_COMMANDS: dict[str, _Command] = {
    "demo": _Command("run a live bank of account actors and concurrent transfers", _demo),
    "node": _Command("run a cluster node: a seed, or a member joining one (--seed)", _node),
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``hewitt`` command on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = _parser().parse_args(argv)
    command: str = args.command
    return _COMMANDS[command].run(args.arguments, f"hewitt {command}")


def _parser() -> argparse.ArgumentParser:
    width = max(map(len, _COMMANDS))
    listing = "\n".join(
        f"  {name:<{width}}  {command.summary}" for name, command in _COMMANDS.items()
    )
    parser = argparse.ArgumentParser(
        prog="hewitt",
        description="hewitt, a fast, typed actor-model framework for Python.",
        epilog=f"commands:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("command", metavar="COMMAND", choices=_COMMANDS, help="the command to run")
    # Everything after the command is the command's own: its parser reads it.
    arguments = parser.add_argument(
        "arguments",
        metavar="...",
        nargs=argparse.REMAINDER,
        help="the command's options: see `hewitt COMMAND --help`",
    )
    arguments.required = False  # argparse makes every REMAINDER positional required
    return parser


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked for (the
    metadata machinery costs more to import than the rest of this module)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show hewitt's version and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"hewitt {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hewitt")
    except PackageNotFoundError:
        return "unknown"
