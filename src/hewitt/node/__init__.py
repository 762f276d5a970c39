"""Nodes: actor systems in other processes and on other machines.

``await Node.start(system, host=..., port=..., cluster=..., secret=...)``
makes a running ActorSystem a node. Refs to actors on other nodes then work
like local ones (tell, ask, forward, watch, link, refs inside messages),
except that they can fail, and the failure is explicit: an ask fails with
NodeUnreachable while the node is suspect and NodeDown once it is down, and
watchers get ``Terminated`` with NodeDown. See docs/cluster.md.
"""

from hewitt import NodeDown, NodeUnreachable

from ._config import NodeConfig
from ._events import PeerDown, PeerSuspect, PeerUp
from ._faults import FaultInjector, partition
from ._handshake import HandshakeRefused
from ._link import LinkState, RemoteLink
from ._node import Node
from ._phi import PhiAccrualDetector
from ._service import RemoteSpawnError
from ._wire import PROTOCOL_VERSION

__all__ = [
    "PROTOCOL_VERSION",
    "FaultInjector",
    "HandshakeRefused",
    "LinkState",
    "Node",
    "NodeConfig",
    "NodeDown",
    "NodeUnreachable",
    "PeerDown",
    "PeerSuspect",
    "PeerUp",
    "PhiAccrualDetector",
    "RemoteLink",
    "RemoteSpawnError",
    "partition",
]
