"""Fixtures shared by the integration tests: ``postgres_server``, the private
PostgreSQL server of the persistence suite (see persistence/pgserver.py), for
the kill test and the demo's ``--dsn`` test too.

Without PostgreSQL its tests are skipped, except under CI, where that fails.
"""

from tests.integration.persistence.conftest import postgres_server

__all__ = ["postgres_server"]
