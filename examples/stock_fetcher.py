"""A stock-price fetcher that is allowed to crash, under a supervisor.

Reproduces the supervisor tree of seed document 000 ("A Practical Guide To
Implementing The Actor Model In Rust", chapter 3 "Beyond the Basics",
section 1 "The Supervisor Tree")::

    ChildSpec = #{id => stock_fetcher, start => {stock_fetcher, start_link, []},
                  restart => temporary, shutdown => 5000, type => worker, ...},
    {ok, {{one_for_one, 5, 10}, [ChildSpec]}}.

The fetcher calls an external price API that can time out or answer garbage.
As the seed says, it does not handle those errors: "you let it crash, and the
supervisor resets the state and tries again".

hewitt features shown: :class:`hewitt.Supervisor` with a
:class:`hewitt.ChildSpec` and ``SupervisorStrategy.one_for_one(max_restarts=5,
within=10)``; restart types; a restart that builds a fresh instance (the
fetcher's cache is reset) and retries the message that failed, so the caller's
``ask`` still gets its quote; ``context.watch`` and a ``Terminated`` that
carries the exception; a deferred reply (an ask answered later).

The seed's child spec and its prose disagree, and the example runs both:

1. ``restart => temporary`` taken literally: in OTP (and in hewitt) a
   temporary child is *never* restarted, so the first timeout stops the
   fetcher for good; the caller's ask fails with the ``TimeoutError``, a
   watcher gets ``Terminated(ref, TimeoutError)`` and the supervisor has no
   child left.
2. What the prose describes ("the supervisor resets the state and tries
   again"): ``restart => transient`` (restart after a crash; a normal stop
   stays final). A timeout and a malformed response each crash the fetcher
   once; each time the supervisor restarts it (2 restarts, well within 5 in
   10 s) with an empty cache, and the failed request is retried on the new
   instance, so every caller gets its quote.

``shutdown => 5000`` has no counterpart: a stopping hewitt actor finishes its
current message, and ``SystemConfig.shutdown_timeout`` bounds a whole
system's shutdown.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import hewitt
from hewitt.supervision import StartChild, TerminateChild, WhichChildren

# --- the outside world: a flaky price API ---------------------------------------

Outcome = Literal["ok", "timeout", "garbage"]

PRICES = {"AAPL": "189.50", "MSFT": "415.20", "GOOG": "142.10", "TSLA": "251.05"}


class FlakyPriceApi:
    """Stands for an HTTP price service: each call consumes the next scripted
    outcome (a quote line, a timeout, or an HTML error page)."""

    def __init__(self, script: Iterable[Outcome]) -> None:
        self.script: deque[Outcome] = deque(script)
        self.calls = 0

    def fetch(self, symbol: str) -> str:
        self.calls += 1
        outcome = self.script.popleft() if self.script else "ok"
        if outcome == "timeout":
            raise TimeoutError(f"price API did not answer for {symbol}")
        if outcome == "garbage":
            return "<html>502 Bad Gateway</html>"
        return f"{symbol},{PRICES[symbol]}"


# --- the fetcher ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchPrice:
    """Replies with a :class:`Quote`."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: Decimal
    #: How many quotes this incarnation of the fetcher had cached: its state.
    cached: int


@dataclass(frozen=True, slots=True)
class Record:
    """One line of the lifecycle log."""

    line: str


class StockFetcher(hewitt.Actor[FetchPrice]):
    """Fetches quotes and caches them; no error handling at all (let it crash)."""

    def __init__(self, api: FlakyPriceApi, log: hewitt.ActorRef[Record]) -> None:
        self.api = api
        self.log = log
        self.cache: dict[str, Decimal] = {}

    def pre_start(self) -> None:
        self.log.tell(Record("stock_fetcher: started"))

    def pre_restart(self, exc: BaseException, message: Any) -> None:
        self.log.tell(
            Record(f"stock_fetcher: crashed on {message} with {type(exc).__name__}: {exc}")
        )

    def post_restart(self, exc: BaseException) -> None:
        self.log.tell(Record(f"stock_fetcher: restarted with cache {self.cache}"))

    def post_stop(self) -> None:
        self.log.tell(Record("stock_fetcher: stopped"))

    def receive(self, message: FetchPrice) -> None:
        raw = self.api.fetch(message.symbol)  # may raise TimeoutError
        symbol, price = raw.split(",")  # ValueError on a malformed response
        self.cache[symbol] = Decimal(price)
        self.context.reply(Quote(symbol, self.cache[symbol], len(self.cache)))


# --- a lifecycle log that can also watch ----------------------------------------


@dataclass(frozen=True, slots=True)
class Watch:
    """Watch ``ref``; replies ``True`` once the watch is in place."""

    ref: hewitt.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class AwaitTerminated:
    """Replies with the ``Terminated`` of a watched ref once it has arrived."""

    ref: hewitt.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Lines:
    """Replies with the lines logged so far (``tuple[str, ...]``)."""


LogMsg = Record | Watch | AwaitTerminated | Lines | hewitt.Terminated


class LifecycleLog(hewitt.Actor[LogMsg]):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.terminated: dict[hewitt.ActorRef[Any], hewitt.Terminated] = {}
        self.waiting: dict[hewitt.ActorRef[Any], list[hewitt.ActorRef[hewitt.Terminated]]] = {}

    def receive(self, message: LogMsg) -> None:
        match message:
            case Record(line):
                self.lines.append(line)
            case Watch(ref):
                self.context.watch(ref)
                self.context.reply(True)
            case hewitt.Terminated(ref, reason):
                self.lines.append(f"terminated {ref.path}: {type(reason).__name__}: {reason}")
                self.terminated[ref] = message
                for waiter in self.waiting.pop(ref, []):
                    waiter.tell(message)
            case AwaitTerminated(ref):
                sender = self.context.sender
                assert sender is not None
                if ref in self.terminated:
                    sender.tell(self.terminated[ref])
                else:
                    self.waiting.setdefault(ref, []).append(sender)  # a deferred reply
            case Lines():
                self.context.reply(tuple(self.lines))


# --- the scenario --------------------------------------------------------------

#: ``{one_for_one, 5, 10}``: at most 5 restarts within 10 s.
STRATEGY = hewitt.SupervisorStrategy.one_for_one(max_restarts=5, within=10)

SupervisorRef = hewitt.ActorRef[WhichChildren | StartChild | TerminateChild]


@dataclass(frozen=True, slots=True)
class TemporaryReport:
    """Part 1: ``restart => temporary``, as written in the seed."""

    first: Quote
    error: str
    terminated: hewitt.Terminated
    children_after: tuple[str, ...]
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TransientReport:
    """Part 2: ``restart => transient``, as the seed's prose describes."""

    quotes: tuple[Quote, ...]
    api_calls: int
    restarts: int
    same_ref: bool
    children_after: tuple[str, ...]
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StockReport:
    temporary: TemporaryReport
    transient: TransientReport


async def start_supervisor(
    system: hewitt.ActorSystem,
    name: str,
    api: FlakyPriceApi,
    log: hewitt.ActorRef[LogMsg],
    restart: hewitt.RestartType,
) -> tuple[SupervisorRef, hewitt.ActorRef[FetchPrice]]:
    spec = hewitt.ChildSpec(
        name="stock_fetcher", factory=StockFetcher, args=(api, log), restart=restart
    )
    supervisor: SupervisorRef = system.spawn(hewitt.Supervisor, [spec], STRATEGY, name=name)
    children: list[tuple[str, hewitt.ActorRef[Any]]] = await supervisor.ask(WhichChildren())
    fetcher: hewitt.ActorRef[FetchPrice] = children[0][1]
    return supervisor, fetcher


async def child_names(supervisor: SupervisorRef) -> tuple[str, ...]:
    children: list[tuple[str, hewitt.ActorRef[Any]]] = await supervisor.ask(WhichChildren())
    return tuple(name for name, _ in children)


async def run_temporary(system: hewitt.ActorSystem) -> TemporaryReport:
    log: hewitt.ActorRef[LogMsg] = system.spawn(LifecycleLog, name="temporary_log")
    api = FlakyPriceApi(["ok", "timeout"])
    supervisor, fetcher = await start_supervisor(
        system, "stock_supervisor", api, log, hewitt.RestartType.TEMPORARY
    )
    await log.ask(Watch(fetcher))
    first: Quote = await fetcher.ask(FetchPrice("AAPL"))
    print(f"[temporary] {first.symbol} = {first.price}")
    try:
        await fetcher.ask(FetchPrice("MSFT"))
    except TimeoutError as exc:
        error = f"{type(exc).__name__}: {exc}"
    else:
        raise AssertionError("the scripted timeout should have crashed the fetcher")
    print(f"[temporary] MSFT: the ask failed with {error}; the fetcher is not restarted")
    terminated: hewitt.Terminated = await log.ask(AwaitTerminated(fetcher))
    print(f"[temporary] watcher got Terminated with reason {terminated.reason!r}")
    lines: tuple[str, ...] = await log.ask(Lines())
    return TemporaryReport(first, error, terminated, await child_names(supervisor), lines)


async def run_transient(system: hewitt.ActorSystem) -> TransientReport:
    log: hewitt.ActorRef[LogMsg] = system.spawn(LifecycleLog, name="transient_log")
    api = FlakyPriceApi(["ok", "ok", "timeout", "ok", "garbage", "ok"])
    restarts_before = system.statistics().restarts
    supervisor, fetcher = await start_supervisor(
        system, "stock_supervisor_restarting", api, log, hewitt.RestartType.TRANSIENT
    )
    quotes: list[Quote] = []
    for symbol in ("AAPL", "MSFT", "GOOG", "TSLA"):
        quote: Quote = await fetcher.ask(FetchPrice(symbol))
        print(f"[transient] {quote.symbol} = {quote.price} (cache size {quote.cached})")
        quotes.append(quote)
    lines: tuple[str, ...] = await log.ask(Lines())
    return TransientReport(
        quotes=tuple(quotes),
        api_calls=api.calls,
        restarts=system.statistics().restarts - restarts_before,
        same_ref=system.lookup("/user/stock_supervisor_restarting/stock_fetcher") == fetcher,
        children_after=await child_names(supervisor),
        lines=lines,
    )


async def main() -> StockReport:
    async with hewitt.ActorSystem("stock-fetcher") as system:
        temporary = await run_temporary(system)
        transient = await run_transient(system)
        return StockReport(temporary, transient)


if __name__ == "__main__":
    # The crashes are on purpose: keep the "hewitt" logger's tracebacks quiet.
    logging.basicConfig(level=logging.CRITICAL)
    report = hewitt.run(main())
    for part in (report.temporary, report.transient):
        print(f"{type(part).__name__} lifecycle:")
        for line in part.lines:
            print(f"  {line}")
