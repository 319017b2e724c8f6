"""The store's backdoor (capability ``backdoor``): raw access for the conformance suite."""

from __future__ import annotations

__all__ = ["JsonlBackdoor"]

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from eventstore import RunId

from ._files import in_thread
from ._index import BATCH_CONTINUES, read_range

if TYPE_CHECKING:
    from .store import JsonlEventStore

_SEQ_FIELD: Final = re.compile(rb'"seq":(\d+)')


class JsonlBackdoor:
    """Edits and inspects run files directly, for the conformance suite.

    An edit rewrites the run file under the run's exclusive lock and renames it into
    place: the new file has a new inode, so no process's index of the old one is
    taken for it, and the next read sees the damage. Every other line is kept byte
    for byte, and so is each line's ending (whether it ends its batch).
    """

    def __init__(self, store: JsonlEventStore) -> None:
        self._store = store

    @in_thread
    def raw_seqs(self, run_id: RunId) -> list[int]:
        """The ``seq`` field of every complete line, found without parsing JSON."""
        with self._store._locked_run(run_id, write=False) as (fd, index):
            lines = index.lines(fd, 1, index.count) if index.count else []
        seqs = []
        for position, line in enumerate(lines, start=1):
            match = _SEQ_FIELD.search(line)
            seqs.append(int(match.group(1)) if match else position)
        return seqs

    @in_thread
    def corrupt(self, run_id: RunId, seq: int) -> None:
        """Overwrite the line of ``seq`` with text that is not JSON."""

        def damage(lines: list[bytes], i: int) -> None:
            lines[i] = b'{"seq":%d,"damaged":' % seq + _ending(lines[i])

        self._edit(run_id, seq, damage)

    @in_thread
    def remove(self, run_id: RunId, seq: int) -> None:
        """Delete the line of ``seq``: the lines after it move up, leaving a hole."""

        def delete(lines: list[bytes], i: int) -> None:
            removed = lines.pop(i)
            if i > 0 and _ending(removed) == b"\n" and _ending(lines[i - 1]) != b"\n":
                # It ended its batch: the line before it ends the batch now, or the
                # batch would look torn and be dropped.
                lines[i - 1] = lines[i - 1].removesuffix(BATCH_CONTINUES) + b"\n"

        self._edit(run_id, seq, delete)

    @in_thread
    def replace(self, run_id: RunId, seq: int, envelope_json: str) -> None:
        """Overwrite the line of ``seq`` with ``envelope_json``, whatever it holds."""
        text = envelope_json.encode()
        if b"\n" in text:
            raise ValueError("a run file line cannot hold a newline")

        def put(lines: list[bytes], i: int) -> None:
            lines[i] = text + _ending(lines[i])

        self._edit(run_id, seq, put)

    def _edit(self, run_id: RunId, seq: int, edit: Callable[[list[bytes], int], None]) -> None:
        """Rewrite the run file with ``edit(lines, seq - 1)`` applied to its lines."""
        store = self._store
        data_path = store._paths(run_id)[0]
        if not os.path.exists(data_path):
            raise KeyError(f"run {run_id} has no events")
        with store._locked_run(run_id, write=True) as (fd, index):
            if not 1 <= seq <= index.count:
                raise KeyError(f"run {run_id} has no seq {seq}")
            data = read_range(fd, os.fstat(fd).st_size, 0)
            lines = [data[a:b] for a, b in zip([0, *index.ends], index.ends, strict=False)]
            edit(lines, seq - 1)
            temporary = f"{data_path}.edit"
            with open(temporary, "wb") as file:
                file.write(b"".join(lines) + data[index.end :])  # a torn tail stays
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, data_path)
            store._indexes.forget(run_id)


def _ending(line: bytes) -> bytes:
    """How a line ends: :data:`BATCH_CONTINUES`, or a newline ending its batch."""
    return BATCH_CONTINUES if line.endswith(BATCH_CONTINUES) else b"\n"
