"""``hewitt demo``: its options, and the run (imported only for this subcommand)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import hewitt
from hewitt.demo import IN_MEMORY, DemoOptions, run_demo_interruptible

_DEFAULTS = DemoOptions()


def main(arguments: list[str], prog: str = "hewitt demo") -> int:
    """Run the demo with the command-line ``arguments``; returns the exit code:
    0 if no money was created or lost, 1 otherwise, 130 after a second Ctrl-C.
    Bad options exit with argparse's code 2."""
    args = _parser(prog).parse_args(arguments)
    options = DemoOptions(
        accounts=args.accounts,
        concurrency=args.concurrency,
        duration=args.duration,
        seed=args.seed,
        balance=args.balance,
        crash_rate=args.crash_rate,
        db=args.db,
        dsn=args.dsn,
    )
    try:
        result = hewitt.run(run_demo_interruptible(options, sys.stdout, args.nodes))
    except KeyboardInterrupt:  # a second Ctrl-C: the user does not want to wait
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0 if result.conserved else 1


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Transfers random amounts between account actors. Each transfer is carried out "
            "by a teller actor that asks the source to withdraw and, only if it can, tells "
            "the target to deposit. The accounts are persistent: every withdrawal and deposit "
            "is an event, durable in the bank's SQLite file (--db) before it is acknowledged, "
            "and a later run on the same file goes on from the balances this one left. At the "
            "end every account is asked for its balance: exit code 0 if no money was created "
            "or lost, in this run and across the runs before it, 1 otherwise. Every "
            "completed transfer is also told to an audit service that crashes on a random "
            "fraction of its messages and is restarted by its supervisor, the transfer desk; "
            "the transfers go on. Ctrl-C ends the transfers early; the books are still checked."
        ),
    )
    parser.add_argument(
        "--accounts",
        type=_at_least(2),
        default=_DEFAULTS.accounts,
        metavar="N",
        help="number of account actors (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=_at_least(1),
        default=_DEFAULTS.concurrency,
        metavar="N",
        help="transfers in flight at once (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_seconds,
        default=_DEFAULTS.duration,
        metavar="SECONDS",
        help="how long new transfers keep starting (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the random transfers (default: a random one, printed)",
    )
    parser.add_argument(
        "--balance",
        type=_at_least(1),
        default=_DEFAULTS.balance,
        metavar="N",
        help="opening balance of the accounts this run opens (default: %(default)s)",
    )
    parser.add_argument(
        "--nodes",
        type=_at_least(0),
        default=0,
        metavar="N",
        help=(
            "spread the accounts over N worker node processes (a local cluster; the tellers "
            "stay in this process, so every withdrawal and deposit crosses nodes); each "
            "worker keeps its accounts in a SQLite file of its own beside --db "
            "(default: 0, everything in this process)"
        ),
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--db",
        default=_DEFAULTS.db,
        metavar="PATH",
        help=(
            "the bank's SQLite file, created if missing; a run on an existing file "
            f"recovers its accounts ('{IN_MEMORY}': keep the bank in memory) "
            "(default: %(default)s, in the current directory)"
        ),
    )
    store.add_argument(
        "--dsn",
        metavar="DSN",
        help=(
            "keep the bank in this PostgreSQL database instead (a libpq connection string "
            "or postgresql:// URL); its tables are created if missing"
        ),
    )
    parser.add_argument(
        "--crash-rate",
        type=_fraction,
        default=_DEFAULTS.crash_rate,
        metavar="FRACTION",
        help=(
            "fraction of the audit service's messages that make it crash, from 0 to 1; "
            "seeded by --seed (default: %(default)s)"
        ),
    )
    return parser


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its error messages
    return parse


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, got {text}")
    return value
