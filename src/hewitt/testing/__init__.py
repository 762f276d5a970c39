"""Test kit: probes that tests await instead of sleeping, virtual time, a
network of systems connected only by bytes, and a pytest fixture.

``hewitt.testing.pytest_plugin`` is registered as a pytest plugin when hewitt is
installed; it provides the ``actor_system`` fixture.
"""

from ._clock import VirtualClock
from ._network import BytesNetwork
from ._probe import ProbeTimeout, TestProbe

__all__ = ["BytesNetwork", "ProbeTimeout", "TestProbe", "VirtualClock"]

for _name in __all__:
    globals()[_name].__module__ = "hewitt.testing"
