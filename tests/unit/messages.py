"""Message types shared by the unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hewitt import ActorRef


@dataclass(frozen=True, slots=True)
class Inc:
    n: int = 1


@dataclass(frozen=True, slots=True)
class Get:
    pass


@dataclass(frozen=True, slots=True)
class Seq:
    producer: int
    index: int


@dataclass(frozen=True, slots=True)
class Boom:
    pass


@dataclass(frozen=True, slots=True)
class Echo:
    value: Any


@dataclass(frozen=True, slots=True)
class Reply:
    to: ActorRef[Any]
    value: Any
