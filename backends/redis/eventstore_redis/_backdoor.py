"""Raw access to the native layout for the conformance suite (capability ``backdoor``)."""

from __future__ import annotations

__all__ = ["NativeBackdoor"]

from typing import TYPE_CHECKING

from eventstore import RunId

from ._client import Entry, xrange_all
from ._codec import seq_of

if TYPE_CHECKING:
    from .store import RedisEventStore


class NativeBackdoor:
    """Reads stream ids and damages entries without going through the store."""

    def __init__(self, store: RedisEventStore) -> None:
        self._store = store

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        """The seqs of the run's stream entries, from their ids, in stream order."""
        return [seq_of(entry_id) for entry_id, _ in await self._entries(run_id)]

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        """Replace the entry at ``seq`` with bytes that are not an envelope."""
        await self._rewrite(run_id, seq, b'{"event_id": "damaged')

    async def replace(self, run_id: RunId, seq: int, envelope_json: str) -> None:
        """Store ``envelope_json`` as the entry at ``seq``, under the same id ``<seq>-0``."""
        await self._rewrite(run_id, seq, envelope_json.encode())

    async def remove(self, run_id: RunId, seq: int) -> None:
        """``XDEL`` the entry at ``seq``; the run's meta, ids and indexes stay as they are."""
        key = self._store.keys.log(run_id)
        if not await self._store._clients.commands.xdel(key, f"{seq}-0"):
            raise KeyError(f"run {run_id} has no seq {seq}")

    async def _rewrite(self, run_id: RunId, seq: int, data: bytes) -> None:
        """The stream with the entry at ``seq`` holding ``data`` in its field ``e``.

        Stream entries cannot be edited and ids only grow, so the stream is rebuilt
        with the same ids (tests only; not atomic).
        """
        entries = await self._entries(run_id)
        entry_id = f"{seq}-0".encode()
        if entry_id not in {stored_id for stored_id, _ in entries}:
            raise KeyError(f"run {run_id} has no seq {seq}")
        commands = self._store._clients.commands
        key = self._store.keys.log(run_id)
        # Not a MULTI: the cluster pipeline of redis-py 5.x has no transactions.
        async with commands.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            for stored_id, fields in entries:
                if stored_id == entry_id:
                    fields = [b"e", data]
                pipe.execute_command("XADD", key, stored_id, *fields)
            await pipe.execute()

    async def _entries(self, run_id: RunId) -> list[Entry]:
        return await xrange_all(self._store._clients.commands, self._store.keys.log(run_id))
