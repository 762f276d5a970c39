"""pytest plugin: the ``actor_system`` fixture (a fresh system per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hewitt import ActorSystem, SystemConfig


@pytest_asyncio.fixture
async def actor_system(request: pytest.FixtureRequest) -> AsyncIterator[ActorSystem]:
    """A running :class:`ActorSystem` for one test, stopped after it.

    The test fails if the system does not stop cleanly: actors left running
    after shutdown, or handlers that had to be cancelled (shutdown waits
    ``shutdown_timeout``, at most 5 s). Pass settings with
    ``@pytest.mark.hewitt_config(throughput=10, ...)``.
    """
    marker = request.node.get_closest_marker("hewitt_config")
    config = SystemConfig(**marker.kwargs) if marker is not None else SystemConfig()
    system = ActorSystem(f"test-{request.node.name[:40]}".replace("/", "_"), config=config)
    await system.start()
    try:
        yield system
    finally:
        await system.shutdown(timeout=min(config.shutdown_timeout, 5.0))
    stats = system.statistics()
    if system.unclean_stops or stats.live_actors:
        pytest.fail(
            f"actor system did not stop cleanly: {stats.live_actors} actors left, "
            f"cancelled: {system.unclean_stops}",
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hewitt_config(**settings): SystemConfig for the actor_system fixture"
    )
