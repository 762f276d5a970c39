"""hewitt: a fast, typed actor-model framework for Python."""

import logging as _logging
import types as _types

from ._runtime._actor import Actor, Behavior, Context, HandlerResult
from ._runtime._address import ActorAddress, NodeId
from ._runtime._clock import Clock
from ._runtime._config import SystemConfig
from ._runtime._dispatcher import DispatcherStatistics
from ._runtime._errors import (
    ActorInitializationError,
    ActorNameTaken,
    ActorSystemNotRunning,
    ActorSystemStopped,
    AskTimeout,
    CodecError,
    DeliveryError,
    HewittError,
    InvalidActorName,
    NodeDown,
    NodeUnreachable,
    RemoteError,
    StashOverflow,
    WrongThread,
)
from ._runtime._events import EventStream
from ._runtime._loops import new_event_loop, run
from ._runtime._mailbox import Mailbox, MailboxFull, Overflow
from ._runtime._messages import (
    POISON_PILL,
    ActorFailed,
    ActorRestarted,
    ActorStarted,
    ActorStopped,
    DeadLetter,
    Exit,
    Failure,
    PoisonPill,
    ReceiveTimeout,
    Terminated,
)
from ._runtime._pipe import pipe_to
from ._runtime._ref import DEFAULT_TIMEOUT, ActorRef
from ._runtime._statistics import ActorStatistics, SystemStatistics
from ._runtime._supervise import LinkedActorFailed
from ._runtime._supervision import (
    Backoff,
    Directive,
    InvalidSupervisorStrategy,
    RestartIntensityExceeded,
    RestartType,
    StrategyKind,
    SupervisorStrategy,
)
from ._runtime._system import ActorSystem, RemoteProvider
from ._runtime._timers import Timers

__all__ = [
    "DEFAULT_TIMEOUT",
    "POISON_PILL",
    "Actor",
    "ActorAddress",
    "ActorFailed",
    "ActorInitializationError",
    "ActorRestarted",
    "ActorNameTaken",
    "ActorRef",
    "ActorStarted",
    "ActorStatistics",
    "ActorStopped",
    "ActorSystem",
    "ActorSystemNotRunning",
    "ActorSystemStopped",
    "AskTimeout",
    "Backoff",
    "Behavior",
    "Clock",
    "CodecError",
    "Context",
    "DeadLetter",
    "DeliveryError",
    "Directive",
    "DispatcherStatistics",
    "EventStream",
    "Exit",
    "Failure",
    "HandlerResult",
    "HewittError",
    "InvalidActorName",
    "InvalidSupervisorStrategy",
    "Mailbox",
    "MailboxFull",
    "LinkedActorFailed",
    "NodeId",
    "NodeDown",
    "NodeUnreachable",
    "Overflow",
    "PoisonPill",
    "ReceiveTimeout",
    "RemoteError",
    "RemoteProvider",
    "RestartIntensityExceeded",
    "RestartType",
    "StashOverflow",
    "StrategyKind",
    "SupervisorStrategy",
    "SystemConfig",
    "SystemStatistics",
    "Terminated",
    "Timers",
    "WrongThread",
    "new_event_loop",
    "pipe_to",
    "run",
]

from .supervision import ChildAlreadyStarted, ChildSpec, InvalidChildSpec, Supervisor

__all__ += ["ChildAlreadyStarted", "ChildSpec", "InvalidChildSpec", "Supervisor"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, (type, _types.FunctionType)):
        _obj.__module__ = "hewitt"

_logging.getLogger("hewitt").addHandler(_logging.NullHandler())
