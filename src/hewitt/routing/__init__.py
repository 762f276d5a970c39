"""Routers: actors that spread messages over routees, built on the public API.

A :class:`Pool` spawns and supervises its routees; a :class:`Group` routes to
actors that already exist. A strategy (:class:`RoundRobin`,
:class:`RandomRouting`, :class:`SmallestMailbox`, :class:`ConsistentHashing`,
:class:`BroadcastRouting`) picks the routee of each message; messages keep
their sender, so an ``ask`` through a router is answered by a routee. See
docs/routing.md.
"""

import inspect as _inspect

from ._messages import (
    AddRoutee,
    Broadcast,
    GetRoutees,
    GroupCommand,
    InvalidRouterConfig,
    PoolCommand,
    RemoveRoutee,
    Resize,
    RouterCommand,
)
from ._ring import HashKey, HashRing, stable_hash
from ._router import NO_ROUTEES, Group, Pool, Router
from ._strategies import (
    BroadcastRouting,
    ConsistentHashing,
    RandomRouting,
    RoundRobin,
    RoutingLogic,
    RoutingStrategy,
    SmallestMailbox,
)

__all__ = [
    "NO_ROUTEES",
    "AddRoutee",
    "Broadcast",
    "BroadcastRouting",
    "ConsistentHashing",
    "GetRoutees",
    "Group",
    "GroupCommand",
    "HashKey",
    "HashRing",
    "InvalidRouterConfig",
    "Pool",
    "PoolCommand",
    "RandomRouting",
    "RemoveRoutee",
    "Resize",
    "RoundRobin",
    "Router",
    "RouterCommand",
    "RoutingLogic",
    "RoutingStrategy",
    "SmallestMailbox",
    "stable_hash",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or _inspect.isfunction(_obj):
        _obj.__module__ = "hewitt.routing"
