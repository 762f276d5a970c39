"""PostgreSQL: the asyncpg import, the schema and its migrations, the
advisory-lock keys and the lazily made pool shared by the journal and the
snapshot store (``_postgres.py``)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import zlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from ._fork import Owner
from ._records import PersistenceError

if TYPE_CHECKING:
    import asyncpg


_NO_ASYNCPG = (
    "{store} needs asyncpg, which is not installed: install hewitt with its "
    "PostgreSQL extra, pip install 'hewitt[postgres]'"
)


def _require_asyncpg(store: str) -> None:
    """PersistenceError naming the extra if asyncpg is missing (checked when a
    store is constructed, without importing it)."""
    if importlib.util.find_spec("asyncpg") is None:
        raise PersistenceError(_NO_ASYNCPG.format(store=store))


def _asyncpg() -> ModuleType:
    """asyncpg, imported on first use (it takes ~85 ms: not for every
    ``import hewitt``, nor for every ``import hewitt.persistence``): an
    optional dependency, the extra ``hewitt[postgres]``."""
    try:
        import asyncpg
    except ImportError as exc:
        raise PersistenceError(_NO_ASYNCPG.format(store="a PostgreSQL store")) from exc
    return asyncpg


#: The schema version this code writes; see ``migrate``.
SCHEMA_VERSION = 1

SynchronousCommit = Literal["on", "off", "local", "remote_write", "remote_apply"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {s}.hewitt_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.hewitt_events (
    ordering BIGSERIAL PRIMARY KEY,
    persistence_id TEXT NOT NULL,
    sequence_nr BIGINT NOT NULL,
    type_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload BYTEA NOT NULL,
    tags TEXT NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    UNIQUE (persistence_id, sequence_nr)
);
CREATE TABLE IF NOT EXISTS {s}.hewitt_highest (
    persistence_id TEXT PRIMARY KEY,
    sequence_nr BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.hewitt_tags (
    tag TEXT NOT NULL,
    ordering BIGINT NOT NULL,
    PRIMARY KEY (tag, ordering)
);
CREATE TABLE IF NOT EXISTS {s}.hewitt_idempotency (
    persistence_id TEXT NOT NULL,
    key TEXT NOT NULL,
    outcome BYTEA NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (persistence_id, key)
);
CREATE TABLE IF NOT EXISTS {s}.hewitt_snapshots (
    persistence_id TEXT NOT NULL,
    sequence_nr BIGINT NOT NULL,
    type_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload BYTEA NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (persistence_id, sequence_nr)
);
"""


def _quote_schema(schema: str) -> str:
    if not _IDENTIFIER.fullmatch(schema):
        raise ValueError(f"schema must be a plain SQL identifier, got {schema!r}")
    return f'"{schema}"'


def _lock_key(schema: str, purpose: str) -> int:
    """A stable 63-bit advisory lock key for ``purpose`` in ``schema``."""
    return zlib.crc32(f"hewitt:{purpose}:{schema}".encode()) | (0x4E57 << 32)


async def _ensure_schema(connection: asyncpg.Connection, schema: str) -> None:
    """Create the tables if needed and migrate, once per database and schema
    at a time (an advisory lock serializes processes starting together)."""
    quoted = _quote_schema(schema)
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema, "schema"))
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(_SCHEMA.format(s=quoted))
        await migrate(connection, schema)


async def migrate(connection: asyncpg.Connection, schema: str = "public") -> None:
    """Bring an existing schema to SCHEMA_VERSION, inside the caller's
    transaction (``_ensure_schema`` holds the schema lock).

    The migration story: every schema change bumps SCHEMA_VERSION and adds a
    step here, ``if version < N: ...; version = N``; the version row is
    updated in the same transaction, so a step runs once. Schemas written by
    newer code are refused, never downgraded. Big data migrations can also be
    run ahead of time with this function from a maintenance script.
    """
    quoted = _quote_schema(schema)
    version = await connection.fetchval(f"SELECT version FROM {quoted}.hewitt_schema")
    if version is None:
        await connection.execute(
            f"INSERT INTO {quoted}.hewitt_schema (version) VALUES ($1)", SCHEMA_VERSION
        )
        return
    if version > SCHEMA_VERSION:
        raise PersistenceError(
            f"journal schema version {version} in {schema!r} is newer than this hewitt "
            f"({SCHEMA_VERSION}); upgrade hewitt to use it"
        )
    # Steps for SCHEMA_VERSION 2 and later go here.
    if version != SCHEMA_VERSION:
        await connection.execute(f"UPDATE {quoted}.hewitt_schema SET version = $1", SCHEMA_VERSION)


class _Pool:
    """A lazily created asyncpg pool whose first connection makes the schema."""

    def __init__(self, dsn: str, schema: str, size: int, connect_kwargs: dict[str, Any]) -> None:
        self.dsn = dsn
        self.schema = schema
        self.size = size
        self.connect_kwargs = connect_kwargs
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self.owner: Owner | None = None  # the process that opened the pool

    async def get(self) -> asyncpg.Pool:
        if self._closed:
            raise PersistenceError("the PostgreSQL store is closed")
        if self._pool is not None:
            assert self.owner is not None
            self.owner.check("the PostgreSQL store")
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = await _asyncpg().create_pool(
                    self.dsn, min_size=1, max_size=self.size, **self.connect_kwargs
                )
                try:
                    async with pool.acquire() as connection:
                        await _ensure_schema(connection, self.schema)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
                self.owner = Owner()
        return self._pool

    async def close(self) -> None:
        self._closed = True
        if self.owner is not None and not self.owner.here:
            return  # a fork: the connections are the parent's
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
