"""Read-only access to runs written by behest's (the Rust runtime's) Redis store.

That store keeps a run in a stream ``run:<run_id>`` whose entries have time-based
ids (``XADD *``) and one field ``data`` with the envelope JSON; the seq comes from a
separate ``INCR``, so stream order is not seq order when appenders raced, and a
crash between the two leaves a hole. Stream ids therefore say nothing about seqs:
every read decodes the whole stream (at most about 10,000 entries, the trim length
that store always applied) and pages by the seqs inside the envelopes. That costs
O(run length) per page, which is fine for importing runs (``eventstore copy``) and
is why this layout is read-only. Holes are passed over, so the store declares
``gaps_possible``: the base class's page check then asks only for increasing seqs of
the run.
"""

from __future__ import annotations

__all__ = ["LegacyRedisEventStore"]

from collections.abc import Sequence
from typing import ClassVar

from pydantic import ValidationError

from eventstore import RunId, SessionId
from eventstore.backend import Capability, EventEnvelope, PendingEvent, RunInfo
from eventstore.errors import UnsupportedOperationError

from ._base import RedisStoreBase
from ._client import field_value, xrange_all
from ._codec import CorruptEntries
from ._options import RedisTarget

_FIELD = b"data"


class LegacyRedisEventStore(RedisStoreBase):
    """A read-only store over behest's Redis layout (``layout=legacy``)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.LIST_RUNS})

    def __init__(self, target: RedisTarget) -> None:
        super().__init__(target)
        self._corrupt = CorruptEntries(skip_corrupt=target.options.skip_corrupt)
        self.gaps_possible = True  # behest's streams can have holes

    @property
    def _prefix(self) -> str:
        return self.options.legacy_prefix

    def _key(self, run_id: RunId) -> str:
        return f"{self.options.legacy_prefix}:{run_id}"

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        raise UnsupportedOperationError(
            f"store {self.describe()}: the legacy layout is read-only; copy its runs into a "
            "native store (eventstore copy) and append there"
        )

    async def _run(self, run_id: RunId) -> list[EventEnvelope]:
        """Every decodable envelope of the run, ordered by seq."""
        envelopes: list[EventEnvelope] = []
        for entry_id, fields in await xrange_all(self._clients.commands, self._key(run_id)):
            envelope = self._decode(run_id, entry_id, field_value(fields, _FIELD))
            if envelope is not None:
                envelopes.append(envelope)
        envelopes.sort(key=lambda envelope: envelope.seq)
        return envelopes

    def _decode(self, run_id: RunId, entry_id: bytes, data: bytes | None) -> EventEnvelope | None:
        try:
            if data is None:
                raise ValueError("the entry has no 'data' field")
            envelope = EventEnvelope.model_validate_json(data)
            if envelope.run_id != run_id:
                raise ValueError(f"the envelope belongs to run {envelope.run_id}")
        except (ValidationError, ValueError) as exc:
            self._corrupt.found(run_id, f"stream id {entry_id.decode()}", exc)
            return None
        return envelope

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        envelopes = await self._run(run_id)
        return [envelope for envelope in envelopes if envelope.seq > after_seq][:limit]

    async def _last_seq(self, run_id: RunId) -> int:
        envelopes = await self._run(run_id)
        return envelopes[-1].seq if envelopes else 0

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        # That store kept no index: SCAN the keyspace for its streams (O(keys)).
        run_ids: set[RunId] = set()
        pattern = f"{self.options.legacy_prefix}:*"
        async for key in self._clients.commands.scan_iter(
            match=pattern, count=1_000, _type="stream"
        ):
            suffix = key.decode()[len(self.options.legacy_prefix) + 1 :]
            try:
                run_ids.add(RunId.parse(suffix))
            except ValueError:
                continue
        out: list[RunInfo] = []
        for run_id in sorted(run_ids):
            if after is not None and run_id <= after:
                continue
            envelopes = await self._run(run_id)
            if not envelopes:
                continue
            session = next(
                (e.session_id for e in reversed(envelopes) if e.session_id is not None), None
            )
            if session_id is not None and session != session_id:
                continue
            out.append(
                RunInfo(
                    run_id=run_id,
                    session_id=session,
                    last_seq=envelopes[-1].seq,
                    first_emitted_at=min(e.emitted_at for e in envelopes),
                    last_emitted_at=max(e.emitted_at for e in envelopes),
                )
            )
            if len(out) == limit:
                break
        return out
