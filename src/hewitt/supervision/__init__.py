"""Declarative supervisors: OTP-style child spec lists, built on the public runtime API."""

from ._supervisor import (
    ChildAlreadyStarted,
    ChildSpec,
    InvalidChildSpec,
    StartChild,
    Supervisor,
    SupervisorMessage,
    TerminateChild,
    WhichChildren,
)

__all__ = [
    "ChildAlreadyStarted",
    "ChildSpec",
    "InvalidChildSpec",
    "StartChild",
    "Supervisor",
    "SupervisorMessage",
    "TerminateChild",
    "WhichChildren",
]
