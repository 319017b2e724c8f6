"""Raw access to the native layout for the conformance suite (capability ``backdoor``)."""

from __future__ import annotations

__all__ = ["NativeBackdoor"]

from typing import TYPE_CHECKING

from eventstore import RunId

from ._client import Entry, xrange
from ._codec import seq_of

if TYPE_CHECKING:
    from .store import RedisEventStore

_PAGE = 1_000


class NativeBackdoor:
    """Reads stream ids and damages entries without going through the store."""

    def __init__(self, store: RedisEventStore) -> None:
        self._store = store

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        """The seqs of the run's stream entries, from their ids, in stream order."""
        return [seq_of(entry_id) for entry_id, _ in await self._entries(run_id)]

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        """Replace the entry at ``seq`` with bytes that are not an envelope.

        Stream entries cannot be edited and ids only grow, so the stream is rebuilt
        with the same ids (tests only; not atomic).
        """
        entries = await self._entries(run_id)
        if seq not in {seq_of(entry_id) for entry_id, _ in entries}:
            raise KeyError(f"run {run_id} has no seq {seq}")
        commands = self._store._clients.commands
        key = self._store.keys.log(run_id)
        # Not a MULTI: the cluster pipeline of redis-py 5.x has no transactions.
        async with commands.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            for entry_id, fields in entries:
                if seq_of(entry_id) == seq:
                    fields = [b"e", b'{"event_id": "damaged']
                pipe.execute_command("XADD", key, entry_id, *fields)
            await pipe.execute()

    async def _entries(self, run_id: RunId) -> list[Entry]:
        commands = self._store._clients.commands
        key = self._store.keys.log(run_id)
        out: list[Entry] = []
        start = "-"
        while True:
            page = await xrange(commands, key, start, _PAGE)
            out.extend(page)
            if len(page) < _PAGE:
                return out
            start = f"({page[-1][0].decode()}"
