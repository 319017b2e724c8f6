"""The blocking file work: per-run locks shared by every process, opening, syncing.

File I/O blocks, and a blocked event loop stalls every other task, so the store's
primitives are plain blocking methods that :func:`in_thread` runs in worker threads.

``fcntl.flock`` locks belong to an open file description, so two threads of one
process that each open the lock file exclude each other exactly like two processes
do. ``delete_run`` unlinks the lock file while holding it; whoever was waiting on
the old file then holds a lock nobody else can see, so after locking we check that
the path still names the file we locked and start over if it does not.
"""

from __future__ import annotations

__all__ = ["fsync_directory", "in_thread", "open_data", "run_lock"]

import asyncio
import fcntl
import functools
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


def in_thread(blocking: Callable[_P, _R]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Turn a blocking method into an ``async`` one that runs it in a worker thread."""

    @functools.wraps(blocking)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await asyncio.to_thread(blocking, *args, **kwargs)

    return run


@contextmanager
def run_lock(path: str, *, exclusive: bool, create: bool | None = None) -> Iterator[bool]:
    """Hold the lock file at ``path``: exclusively to write, shared to read.

    The lock file is created when ``create`` (default: for a writer). A reader of
    an unknown run must not leave files behind: without the file it gets
    ``False``, meaning the run does not exist. Otherwise ``True`` while the lock
    is held.
    """
    create = exclusive if create is None else create
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            if create:
                raise  # the directory itself is gone
            yield False
            return
        try:
            fcntl.flock(fd, mode)
            if _still_linked(fd, path):
                yield True
                return
        finally:
            # Closing the descriptor releases the lock.
            os.close(fd)


def _still_linked(fd: int, path: str) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    locked = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino)


def open_data(path: str, *, write: bool, in_place: bool = False) -> int | None:
    """Open a run file: to append (creating it), to read, or to patch it in place.

    ``None`` when a file to read or patch does not exist.
    """
    if write:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # Patching needs a descriptor without O_APPEND: Linux ignores pwrite's
        # offset on one that has it.
        return os.open(path, (os.O_RDWR if in_place else os.O_RDONLY) | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def fsync_directory(path: str) -> None:
    """Make file creations and removals in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
