"""What one process remembers about a run's file, so it need not re-read it.

A run file only ever grows by whole lines appended under the run's lock, so the
index of a file stays valid while the file is the same one and no shorter; new
lines are indexed from where the last look stopped. "The same one" is checked by
inode *and* first line, because a run deleted and written again may get the old
inode back. The index holds offsets and event ids, never decoded envelopes: reads
decode every line they return, so a line damaged after it was indexed is still
reported as corrupt.

A store keeps the indexes of the runs it used lately in an :class:`IndexCache`.
"""

from __future__ import annotations

__all__ = ["BATCH_CONTINUES", "IndexCache", "RunIndex", "read_range"]

import json
import os
import threading
from typing import TYPE_CHECKING, Any, Final

from eventstore import RunId, SessionId
from eventstore.events import parse_time

if TYPE_CHECKING:
    from whenever import Instant

#: How every line of a batch but its last ends: a space, which JSON ignores, so that
#: a batch cut short by a crash is recognised and dropped as a whole.
BATCH_CONTINUES: Final = b" \n"

# Files are indexed this much at a time: one read of a whole large run would hold it
# all in memory at once, and Linux returns at most about 2 GiB from one read anyway.
_CHUNK: Final = 8 * 1024 * 1024

#: Runs whose index (line offsets and event ids) a store keeps between calls.
MAX_CACHED_RUNS: Final = 1024
#: Runs whose file state (inode, size, mtime) and last seq a store remembers, so
#: that a waiting subscriber whose index was evicted does not re-read an unchanged file.
MAX_REMEMBERED_FILES: Final = 65536


def read_range(fd: int, length: int, offset: int) -> bytes:
    """``length`` bytes at ``offset``, fewer only at the end of the file.

    One ``pread`` may return less than asked (Linux caps it near 2 GiB); taking a
    short read for the whole range would silently drop what follows.
    """
    parts: list[bytes] = []
    while length > 0:
        part = os.pread(fd, min(length, 1 << 30), offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
        length -= len(part)
    return b"".join(parts)


class RunIndex:
    """Line offsets, event ids and the current session of one run file.

    Line ``n`` (from 1) of the file holds the envelope with seq ``n``. Lines after
    the last one that ends a batch belong to a write that never completed (its
    writer died); they are not counted.
    """

    def __init__(self, inode: int) -> None:
        self.inode = inode
        #: ``ends[n - 1]`` is the offset just past line ``n``.
        self.ends: list[int] = []
        #: Event id (canonical string) -> seq, for idempotent retries.
        self.seq_by_event_id: dict[str, int] = {}
        #: Session id of the last decodable line (``None`` before any ``RunStarted``).
        self.session_id: str | None = None
        #: Seqs whose line was not a JSON object when it was indexed.
        self.undecodable: set[int] = set()
        #: ``emitted_at`` of the first and last line, to the nanosecond (``list_runs``).
        self.first_emitted_at: Instant | None = None
        self.last_emitted_at: Instant | None = None
        #: ``(inode, size)`` of the file at the last refresh, torn tail included.
        self.seen = (inode, 0)
        self._first_line = b""

    @property
    def count(self) -> int:
        """How many complete lines, that is events, the file holds."""
        return len(self.ends)

    @property
    def end(self) -> int:
        """Offset just past the last complete batch."""
        return self.ends[-1] if self.ends else 0

    @property
    def session(self) -> SessionId | None:
        """The run's current session: the one on its last line that decodes."""
        return None if self.session_id is None else SessionId.parse(self.session_id)

    def start_of(self, seq: int) -> int:
        """Offset where the line of ``seq`` starts (``seq`` in 1..count + 1)."""
        return self.ends[seq - 2] if seq > 1 else 0

    def lines(self, fd: int, first: int, last: int) -> list[bytes]:
        """The lines of seqs ``first`` to ``last``, read at once, without newlines."""
        start = self.start_of(first)
        return read_range(fd, self.ends[last - 1] - start, start).split(b"\n")[:-1]

    def describes(self, fd: int, inode: int, size: int) -> bool:
        """Whether this index still describes the open file ``fd``."""
        if inode != self.inode or size < self.end:
            return False
        return not self.ends or os.pread(fd, self.ends[0], 0) == self._first_line

    def extend(self, fd: int, size: int) -> None:
        """Index the complete batches of lines between :attr:`end` and ``size``."""
        offset = self.end
        carry = b""  # the start of a line that continues in the next chunk
        batch: list[tuple[bytes, int]] = []
        while offset < size:
            chunk = read_range(fd, min(_CHUNK, size - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            data = carry + chunk
            base = offset - len(data)  # file offset of data[0]
            position = 0
            while (newline := data.find(b"\n", position)) >= 0:
                line = data[position : newline + 1]
                position = newline + 1
                batch.append((line, base + position))
                if not line.endswith(BATCH_CONTINUES):
                    for complete, end in batch:
                        self._add_line(complete, end)
                    batch.clear()
            carry = data[position:]
        # Lines of a batch whose last line is missing stay out, like a torn line.
        # What was read, not what was asked: a short read is looked at again later.
        self.seen = (self.inode, offset)

    def _add_line(self, line: bytes, end: int) -> None:
        self.ends.append(end)
        seq = self.count
        if seq == 1:
            self._first_line = line
        try:
            fields = json.loads(line)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            self.undecodable.add(seq)
            return
        event_id = fields.get("event_id")
        if isinstance(event_id, str):
            self.seq_by_event_id[event_id] = seq
        session_id = fields.get("session_id")
        self.session_id = session_id if isinstance(session_id, str) else None
        self.last_emitted_at = _parse_time(fields.get("emitted_at"))
        if seq == 1:
            self.first_emitted_at = self.last_emitted_at


class IndexCache:
    """The indexes of the runs a store used lately, shared by its worker threads.

    The run lock alone does not order two readers, which may both bring one index up
    to date, hence the mutex. Most recently used runs come last in the dicts; the
    oldest go once there are too many, so a long-lived process that touches many runs
    does not keep them all.
    """

    def __init__(self) -> None:
        self._indexes: dict[RunId, RunIndex] = {}
        #: ``(inode, size, mtime)`` of each run file when it was last indexed, and
        #: its last seq then.
        self._files: dict[RunId, tuple[tuple[int, int, int], int]] = {}
        self._mutex = threading.Lock()

    def refresh(self, run_id: RunId, fd: int) -> RunIndex:
        """The index of the open run file ``fd``, brought up to date (under the run lock)."""
        stat = os.fstat(fd)
        with self._mutex:
            index = self._indexes.pop(run_id, None)
            if index is None or not index.describes(fd, stat.st_ino, stat.st_size):
                index = RunIndex(stat.st_ino)
            index.extend(fd, stat.st_size)
            self._indexes[run_id] = index
            self._files.pop(run_id, None)
            self._files[run_id] = ((stat.st_ino, index.seen[1], stat.st_mtime_ns), index.count)
            _trim(self._indexes, MAX_CACHED_RUNS)
            _trim(self._files, MAX_REMEMBERED_FILES)
            return index

    def forget(self, run_id: RunId) -> bool:
        """Drop what is known of a run; whether anything was."""
        with self._mutex:
            self._indexes.pop(run_id, None)
            return self._files.pop(run_id, None) is not None

    def clear(self) -> None:
        """Drop everything (the store closed)."""
        with self._mutex:
            self._indexes.clear()
            self._files.clear()

    def last_seq_if_unchanged(self, run_id: RunId, path: str) -> int | None:
        """The run's last seq if a ``stat`` of its file at ``path`` shows no change.

        Compared with what the last refresh saw (size alone would miss a write that
        replaced a torn tail with as many bytes); ``None`` when the file changed or
        is not remembered: then only indexing it under its lock tells. A missing
        file is a run without events (perhaps deleted by another process): 0.
        """
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            self.forget(run_id)
            return 0
        with self._mutex:
            known = self._files.get(run_id)
        if known is None or known[0] != (stat.st_ino, stat.st_size, stat.st_mtime_ns):
            return None
        return known[1]


def _trim(cache: dict[RunId, Any], size: int) -> None:
    while len(cache) > size:
        del cache[next(iter(cache))]


def _parse_time(value: object) -> Instant | None:
    # As the envelope's own validation reads it (chrono's RFC 3339), every digit kept;
    # a line whose time does not parse is reported when it is read, not here.
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
