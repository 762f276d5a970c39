"""Links over TLS with mutual certificates: one option away (``ssl_server``,
``ssl_client``); a node without a certificate of the cluster's CA is refused
before the secret's handshake even starts."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hewitt import ActorSystem
from hewitt.node import HandshakeRefused, Node
from tests.integration.nodes.actors import Echo, Ping, register
from tests.integration.nodes.conftest import FAST, SECRET


def _openssl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make the test certificates")
    where = tmp_path_factory.mktemp("tls")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=hewitt test CA", cwd=where)  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("node", "stranger"):
        _openssl("req", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=where)  # fmt: skip
    _openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "node.pem", "-days", "2", "-extfile", "san.ext",
             cwd=where)  # fmt: skip
    # The stranger's certificate is its own (self-signed): not of the cluster's CA.
    _openssl("x509", "-req", "-in", "stranger.csr", "-signkey", "stranger.key",
             "-out", "stranger.pem", "-days", "2", "-extfile", "san.ext", cwd=where)  # fmt: skip
    yield where


def _contexts(where: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(where / "ca.pem"))
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(where / f"{name}.pem", where / f"{name}.key")
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(where / "ca.pem"))
    client.load_cert_chain(where / f"{name}.pem", where / f"{name}.key")
    return server, client


async def _tls_node(name: str, where: Path, cert: str = "node") -> tuple[ActorSystem, Node]:
    system = ActorSystem(name)
    await system.start()
    register(system)
    server, client = _contexts(where, cert)
    node = await Node.start(
        system, secret=SECRET, cluster="test", config=FAST, ssl_server=server, ssl_client=client
    )
    return system, node


async def test_nodes_talk_over_mutual_tls(certificates: Path) -> None:
    a_system, a = await _tls_node("a", certificates)
    b_system, b = await _tls_node("b", certificates)
    try:
        b_system.spawn(Echo, name="echo")
        peer = await a.connect(b.node_id.host, b.node_id.port)
        echo = await a.lookup(peer, "/user/echo")
        assert echo is not None and await echo.ask(Ping(1)) == Ping(1)
        link = a.link(peer)
        assert link is not None and link.connection is not None
        assert link.connection.writer.get_extra_info("ssl_object") is not None
    finally:
        await a_system.shutdown()
        await b_system.shutdown()


async def test_a_node_without_the_clusters_certificate_is_refused(certificates: Path) -> None:
    a_system, a = await _tls_node("a", certificates)
    s_system, stranger = await _tls_node("s", certificates, cert="stranger")
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, HandshakeRefused)):
            await stranger.connect(a.node_id.host, a.node_id.port)
    finally:
        await a_system.shutdown()
        await s_system.shutdown()
