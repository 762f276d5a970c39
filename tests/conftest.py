"""Shared test helpers. The ``actor_system`` fixture comes from hewitt's pytest plugin."""

pytest_plugins = ["pytester"]
