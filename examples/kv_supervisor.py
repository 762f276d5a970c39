"""A key-value server under an OTP-style supervisor with restart intensity 5 in 10 s.

Reproduces the supervisor of seed document 004 ("Actor Model & CSP - Senior
Level", section "Supervision & 'Let It Crash'")::

    SupFlags = #{strategy => one_for_one, intensity => 5, period => 10},
    Worker = #{id => kv, start => {kv_server, start_link, []}, restart => permanent},

hewitt features shown: the declarative :class:`hewitt.Supervisor` with a
:class:`hewitt.ChildSpec` (PERMANENT, as ``restart => permanent``) and
``SupervisorStrategy.one_for_one(max_restarts=5, within=10)``; a restart that
builds a fresh instance (the store's state is reset, its ref is kept); the
restart-intensity limit, which turns a crash loop into
:class:`hewitt.RestartIntensityExceeded`; the ``/user`` guardian's strategy and
``guardian_policy="stop_subtree"`` (set in :class:`hewitt.SystemConfig`) that
then stop the supervisor's subtree; and a watcher actor that receives the
supervisor's ``Terminated(ref, reason)`` and, subscribed to
:class:`hewitt.ActorFailed` on the event stream, every failure along the way.

The server's code is happy-path only, as the seed recommends: ``Incr`` on a
missing key raises ``KeyError`` and nothing catches it. ``poison_threshold=1``
gives OTP's rule that the request that crashed a server is not retried: the
caller's ``ask`` fails with the exception (as a ``gen_server:call`` exits).

Expected, as in OTP: crashes 1 to 5 are each followed by one restart (5
restarts within 10 s are allowed); crash 6 is the 6th restart request within
10 s, so the supervisor gives up: it stops its child (``post_stop``, no
restart) and fails with ``RestartIntensityExceeded``. Its own supervisor, the
``/user`` guardian, may restart it 0 times, so it gives up on it too and, by
its policy ``stop_subtree``, stops it: the watcher gets
``Terminated(/user/kv_sup, RestartIntensityExceeded)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import hewitt
from hewitt.supervision import StartChild, TerminateChild, WhichChildren

# --- the key-value server (OTP's kv_server) ------------------------------------


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: int


@dataclass(frozen=True, slots=True)
class Get:
    """Replies with the value (``int``) or ``None`` when the key is absent."""

    key: str


@dataclass(frozen=True, slots=True)
class Incr:
    """Adds one to ``key`` and replies the new value; a missing key crashes the server."""

    key: str


KvMsg = Put | Get | Incr


@dataclass(frozen=True, slots=True)
class Record:
    """One line of the lifecycle log."""

    line: str


class KvServer(hewitt.Actor[KvMsg]):
    """Holds a dict; reports its lifecycle hooks to ``log``."""

    def __init__(self, log: hewitt.ActorRef[Record]) -> None:
        self.log = log
        self.data: dict[str, int] = {}

    def pre_start(self) -> None:
        self.log.tell(Record(f"{self.context.self.name}: pre_start"))

    def pre_restart(self, exc: BaseException, message: Any) -> None:
        self.log.tell(
            Record(f"{self.context.self.name}: pre_restart after {type(exc).__name__} {exc}")
        )

    def post_restart(self, exc: BaseException) -> None:
        # Not calling pre_start: the log shows the restart as such.
        self.log.tell(Record(f"{self.context.self.name}: post_restart, data={self.data}"))

    def post_stop(self) -> None:
        self.log.tell(Record(f"{self.context.self.name}: post_stop"))

    def receive(self, message: KvMsg) -> None:
        match message:
            case Put(key, value):
                self.data[key] = value
            case Get(key):
                self.context.reply(self.data.get(key))
            case Incr(key):
                self.data[key] += 1  # let it crash: no check for a missing key
                self.context.reply(self.data[key])


# --- the watcher: a lifecycle log that watches the supervisor ------------------


@dataclass(frozen=True, slots=True)
class WatchSupervisor:
    """Watch ``ref``; replies ``True`` once the watch is in place."""

    ref: hewitt.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class AwaitTerminated:
    """Replies ``(Terminated, log lines)`` once the watched supervisor has stopped."""


LogMsg = Record | WatchSupervisor | AwaitTerminated | hewitt.ActorFailed | hewitt.Terminated


@dataclass(frozen=True, slots=True)
class Outcome:
    terminated: hewitt.Terminated
    lines: tuple[str, ...]


class LifecycleLog(hewitt.Actor[LogMsg]):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.terminated: hewitt.Terminated | None = None
        self.waiters: list[hewitt.ActorRef[Outcome]] = []

    def pre_start(self) -> None:
        self.context.system.event_stream.subscribe(self.context.self, hewitt.ActorFailed)

    def receive(self, message: LogMsg) -> None:
        match message:
            case Record(line):
                self.lines.append(line)
            case hewitt.ActorFailed(ref, _, exception):
                self.lines.append(f"failed {ref.path}: {type(exception).__name__}: {exception}")
            case WatchSupervisor(ref):
                self.context.watch(ref)
                self.context.reply(True)
            case hewitt.Terminated(ref, reason):
                self.lines.append(f"terminated {ref.path}: {type(reason).__name__}: {reason}")
                self.terminated = message
                for waiter in self.waiters:
                    waiter.tell(self.outcome(message))
                self.waiters.clear()
            case AwaitTerminated():
                sender = self.context.sender
                assert sender is not None
                if self.terminated is not None:
                    sender.tell(self.outcome(self.terminated))
                else:
                    self.waiters.append(sender)  # a deferred reply

    def outcome(self, terminated: hewitt.Terminated) -> Outcome:
        return Outcome(terminated, tuple(self.lines))


# --- the scenario --------------------------------------------------------------

#: The supervisor's flags, as in the seed: one_for_one, intensity 5, period 10.
KV_STRATEGY = hewitt.SupervisorStrategy.one_for_one(max_restarts=5, within=10, poison_threshold=1)

#: The /user guardian never restarts a top-level actor that fails; with the
#: default guardian_policy "stop_subtree" it then stops that actor's subtree.
CONFIG = hewitt.SystemConfig(
    guardian_strategy=hewitt.SupervisorStrategy(max_restarts=0, within=10),
    guardian_policy="stop_subtree",
)


@dataclass(frozen=True, slots=True)
class KvSupervisorReport:
    """What the example observed, for its test."""

    children: tuple[str, ...]
    before_crash: int | None
    after_first_crash: int | None
    same_ref_after_restart: bool
    crash_errors: tuple[str, ...]
    restarts_before_give_up: int
    restarts: int
    terminated: hewitt.Terminated
    lines: tuple[str, ...]
    supervisor_alive: bool
    child_alive: bool


async def crash(kv: hewitt.ActorRef[KvMsg]) -> str:
    """Send a request that crashes the server; the name of the error the ask got."""
    try:
        await kv.ask(Incr("missing"), timeout=2.0)
    except KeyError as exc:
        return f"KeyError {exc}"
    raise AssertionError("Incr('missing') should have crashed the server")


async def main() -> KvSupervisorReport:
    async with hewitt.ActorSystem("kv-supervisor", config=CONFIG) as system:
        log: hewitt.ActorRef[LogMsg] = system.spawn(LifecycleLog, name="lifecycle")
        kv_sup: hewitt.ActorRef[WhichChildren | StartChild | TerminateChild] = system.spawn(
            hewitt.Supervisor,
            [hewitt.ChildSpec(name="kv", factory=KvServer, args=(log,))],
            KV_STRATEGY,
            name="kv_sup",
        )
        await log.ask(WatchSupervisor(kv_sup))
        children: list[tuple[str, hewitt.ActorRef[Any]]] = await kv_sup.ask(WhichChildren())
        print(f"kv_sup children: {[name for name, _ in children]}")
        kv: hewitt.ActorRef[KvMsg] = children[0][1]

        kv.tell(Put("hits", 41))
        before: int | None = await kv.ask(Incr("hits"))
        print(f"hits = {before}")

        # Crash 1: the supervisor restarts the server; its state is gone.
        errors = [await crash(kv)]
        after: int | None = await kv.ask(Get("hits"))
        print(f"crash 1 ({errors[0]}): restarted, hits = {after}")
        same_ref = system.lookup("/user/kv_sup/kv") == kv
        restarts_before_give_up = 0

        # Crashes 2 to 6, all within 10 s: 5 restarts are allowed, the 6th is not.
        for n in range(2, 7):
            errors.append(await crash(kv))
            if n == 5:
                restarts_before_give_up = system.statistics().restarts
            print(f"crash {n} ({errors[-1]})")

        outcome: Outcome = await log.ask(AwaitTerminated(), timeout=5.0)
        reason = outcome.terminated.reason
        print(f"kv_sup terminated: {reason}")
        return KvSupervisorReport(
            children=tuple(name for name, _ in children),
            before_crash=before,
            after_first_crash=after,
            same_ref_after_restart=same_ref,
            crash_errors=tuple(errors),
            restarts_before_give_up=restarts_before_give_up,
            restarts=system.statistics().restarts,
            terminated=outcome.terminated,
            lines=outcome.lines,
            supervisor_alive=system.lookup("/user/kv_sup") is not None,
            child_alive=kv.is_alive,
        )


if __name__ == "__main__":
    # Failures are logged with tracebacks on the "hewitt" logger; this example
    # crashes on purpose, so only the supervisors' decisions are shown.
    logging.basicConfig(level=logging.CRITICAL)
    report = hewitt.run(main())
    print("lifecycle:")
    for line in report.lines:
        print(f"  {line}")
