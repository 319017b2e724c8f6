"""The store's backdoor (capability ``backdoor``): raw access for the conformance suite."""

from __future__ import annotations

__all__ = ["JsonlBackdoor"]

import asyncio
import os
import re
from typing import TYPE_CHECKING, Final

from eventstore import RunId

from ._files import open_data, run_lock

if TYPE_CHECKING:
    from .store import JsonlEventStore

_SEQ_FIELD: Final = re.compile(rb'"seq":(\d+)')


class JsonlBackdoor:
    """Damages and inspects run files directly, for the conformance suite."""

    def __init__(self, store: JsonlEventStore) -> None:
        self._store = store

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        """Overwrite the line of ``seq`` in place with text that is not JSON."""
        await asyncio.to_thread(self._corrupt, run_id, seq)

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        """The ``seq`` field of every complete line, found without parsing JSON."""
        return await asyncio.to_thread(self._raw_seqs, run_id)

    def _corrupt(self, run_id: RunId, seq: int) -> None:
        data_path, lock_path = self._store._paths(run_id)
        with run_lock(lock_path, exclusive=True):
            fd = open_data(data_path, write=False, in_place=True)
            if fd is None:
                raise KeyError(f"run {run_id} has no events")
            try:
                index = self._store._refresh(run_id, fd)
                if not 1 <= seq <= index.count:
                    raise KeyError(f"run {run_id} has no seq {seq}")
                start, end = index.start_of(seq), index.ends[seq - 1]
                # Same length, so the offsets of every other line stay valid, and
                # the same last byte, so the line still ends (or continues) its batch.
                damage = f'{{"seq":{seq},"damaged":'.encode().ljust(end - start - 2, b"#")
                os.pwrite(fd, damage, start)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _raw_seqs(self, run_id: RunId) -> list[int]:
        with self._store._locked_run(run_id, write=False) as locked:
            if locked is None:
                return []
            fd, index = locked
            lines = os.pread(fd, index.end, 0).split(b"\n")[:-1]
        seqs = []
        for position, line in enumerate(lines, start=1):
            match = _SEQ_FIELD.search(line)
            seqs.append(int(match.group(1)) if match else position)
        return seqs
