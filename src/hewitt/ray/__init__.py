"""hewitt on Ray: placement, membership and restarts by Ray, messages by hewitt.

    import ray, hewitt.ray
    ray.init(address="auto")
    client = hewitt.ray.start(setup="myapp:setup")   # coordinator + one NodeHost per CPU
    server = client.spawn(ModelServer, placement=hewitt.ray.LeastLoaded())
    server.ask_blocking(Predict([...]))

Install with ``pip install 'hewitt[ray]'``. See docs/ray.md.
"""

from ._client import (
    LeastLoaded,
    OnResource,
    Pinned,
    PortableRef,
    RayClient,
    RoundRobinPlacement,
    connect,
    host_handles,
    process_client,
    shutdown,
    start,
)
from ._coordinator import COORDINATOR_NAME, Coordinator
from ._host import NodeHost

__all__ = [
    "COORDINATOR_NAME",
    "Coordinator",
    "LeastLoaded",
    "NodeHost",
    "OnResource",
    "Pinned",
    "PortableRef",
    "RayClient",
    "RoundRobinPlacement",
    "connect",
    "host_handles",
    "process_client",
    "shutdown",
    "start",
]
