"""A throwaway PostgreSQL cluster of the test's own, on a free loopback port.

For fault tests that must freeze (SIGSTOP), or otherwise mistreat, the server: never
the shared one. ``initdb`` and ``pg_ctl`` come from ``/usr/lib/postgresql/*/bin`` (or
``PATH``); as root they run as the ``postgres`` user, since PostgreSQL refuses root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2].split(".")[0])
    )
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            if int(text.rpartition(")")[2].split()[1]) == pid:
                out.append(int(stat.split("/")[2]))
    return out


class PostgresCluster:
    """One ``initdb``-ed cluster; use :func:`start_cluster`."""

    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = port
        self._user = user
        self._frozen: list[int] = []

    @property
    def url(self) -> str:
        """The URL of its ``postgres`` database (create others for stores)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self._user,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.thaw()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = self.postmaster_pid()
        return [postmaster, *_children(postmaster)]

    def freeze(self) -> list[int]:
        """SIGSTOP the whole cluster: it keeps its sockets and answers nothing."""
        # The postmaster first, so it starts no process that would escape the freeze.
        postmaster = self.postmaster_pid()
        os.kill(postmaster, signal.SIGSTOP)
        self._frozen.append(postmaster)
        for pid in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                self._frozen.append(pid)
        return list(self._frozen)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        frozen, self._frozen = self._frozen, []
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def available() -> str | None:
    """Why no cluster can be started here, or ``None`` if one can."""
    if _bin_dir() is None:
        return "no initdb/pg_ctl in /usr/lib/postgresql/*/bin or PATH"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


@contextlib.contextmanager
def start_cluster() -> Iterator[PostgresCluster]:
    """Init and start a cluster in a temporary directory; stop and remove it after."""
    bin_dir = _bin_dir()
    assert bin_dir is not None, available()
    root = Path(tempfile.mkdtemp(prefix="es_pgcluster_"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(root, user)
    cluster = PostgresCluster(bin_dir, root, free_port(), user)
    try:
        cluster.init()
        for attempt in range(3):
            try:
                cluster.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                cluster.port = free_port()  # taken meanwhile: try another
                time.sleep(0.2)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
