"""What one process remembers about a run's file, so it need not re-read it.

A run file only ever grows by whole lines appended under the run's lock, so the
index of a file stays valid while the file is the same one and no shorter; new
lines are indexed from where the last look stopped. "The same one" is checked by
inode *and* first line, because a run deleted and written again may get the old
inode back. The index holds offsets and event ids, never decoded envelopes: reads
decode every line they return, so a line damaged after it was indexed is still
reported as corrupt.
"""

from __future__ import annotations

__all__ = ["BATCH_CONTINUES", "RunIndex", "read_range"]

import json
import os
from datetime import datetime
from typing import Final

#: How every line of a batch but its last ends: a space, which JSON ignores, so that
#: a batch cut short by a crash is recognised and dropped as a whole.
BATCH_CONTINUES: Final = b" \n"

# Files are indexed this much at a time: one read of a whole large run would hold it
# all in memory at once, and Linux returns at most about 2 GiB from one read anyway.
_CHUNK: Final = 8 * 1024 * 1024


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
        self.first_emitted_at: datetime | None = None
        self.last_emitted_at: datetime | None = None
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

    def start_of(self, seq: int) -> int:
        """Offset where the line of ``seq`` starts (``seq`` in 1..count + 1)."""
        return self.ends[seq - 2] if seq > 1 else 0

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


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
