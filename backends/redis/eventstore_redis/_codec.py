"""Turning stream entries back into envelopes, and what to do with bad ones.

A native entry has id ``<seq>-0`` and one field ``e`` holding the envelope JSON that
the append script built around the event JSON the client sent (or the core built, for
an import). The store's base class checks every page it returns: the next seqs of the
run, envelopes and events of that run. Reading here adds what only this layout knows:
the stream ids are the seqs, so a hole in the ids before the first entry is retention
(``HistoryUnavailableError``) and any other is damage, and with ``skip_corrupt`` an entry
that cannot be decoded, or whose envelope disagrees with its id, is skipped rather than
reported (:class:`CorruptEntries` says which, for both layouts).
"""

from __future__ import annotations

__all__ = ["CorruptEntries", "EntryDecoder", "seq_of"]

import logging
from collections.abc import Sequence

from pydantic import TypeAdapter, ValidationError

from eventstore import CorruptEventError, RunId
from eventstore.backend import EventEnvelope
from eventstore.errors import HistoryUnavailableError

from ._client import Entry, field_value

logger = logging.getLogger("eventstore.redis")

_FIELD = b"e"
_ENVELOPE_START = b'{"event_id":"'
_PAGE: TypeAdapter[list[EventEnvelope]] = TypeAdapter(list[EventEnvelope])


def seq_of(entry_id: bytes | str) -> int:
    """The seq encoded in a native stream id ``<seq>-0``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


class CorruptEntries:
    """Reports an undecodable entry, or skips, logs and counts it with ``skip_corrupt``."""

    __slots__ = ("skip_corrupt", "skipped")

    def __init__(self, *, skip_corrupt: bool) -> None:
        self.skip_corrupt = skip_corrupt
        #: Entries skipped as undecodable since the store opened (``skip_corrupt``).
        self.skipped = 0

    def found(self, run_id: RunId, position: str, exc: Exception) -> None:
        """The entry of ``run_id`` at ``position`` is bad: raise, or skip it."""
        reason = _short_reason(exc)
        if not self.skip_corrupt:
            raise CorruptEventError(run_id=run_id, position=position, reason=reason) from exc
        self.skipped += 1
        logger.warning(
            "eventstore redis: skipping undecodable entry of run %s at %s "
            "(skip_corrupt is on; %d skipped so far): %s",
            run_id,
            position,
            self.skipped,
            reason,
        )


class EntryDecoder(CorruptEntries):
    """Decodes native stream entries."""

    __slots__ = ("retention",)

    def __init__(self, *, skip_corrupt: bool, retention: bool) -> None:
        super().__init__(skip_corrupt=skip_corrupt)
        self.retention = retention

    def decode(
        self, run_id: RunId, after_seq: int, entries: Sequence[Entry]
    ) -> tuple[list[EventEnvelope], int]:
        """Envelopes of ``entries`` (which follow ``after_seq``) and the last seq seen."""
        if not entries:
            return [], after_seq
        page = _decode_page(run_id, after_seq, entries, check=self.skip_corrupt)
        if page is not None:
            return page, after_seq + len(page)
        # Something is off in the page: decode entry by entry to name the bad one.
        out: list[EventEnvelope] = []
        expected = after_seq + 1
        validate = EventEnvelope.model_validate_json
        for index, (entry_id, fields) in enumerate(entries):
            seq = seq_of(entry_id)
            if seq != expected:
                self._missing(run_id, expected, seq, trimmed=index == 0 and self.retention)
            expected = seq + 1
            data = field_value(fields, _FIELD)
            try:
                if data is None:
                    raise ValueError("the entry has no 'e' field")
                envelope = validate(data)
                if envelope.seq != seq or envelope.run_id != run_id:
                    raise ValueError(f"the envelope says run {envelope.run_id} seq {envelope.seq}")
            except (ValidationError, ValueError) as exc:
                self.found(run_id, f"seq {seq} (stream id {entry_id.decode()})", exc)
                continue
            out.append(envelope)
        return out, expected - 1

    def _missing(self, run_id: RunId, expected: int, found: int, *, trimmed: bool) -> None:
        # Retention only ever removes the oldest entries, so only a hole before the
        # first entry read can be its doing; any other is damage (never skipped: the
        # entry is not there to be skipped, and the ids are this layout's seqs).
        if trimmed and expected < found:
            raise HistoryUnavailableError(
                run_id=run_id, requested_after=expected - 1, first_available=found
            )
        raise CorruptEventError(
            run_id=run_id,
            position=f"seq {expected}",
            reason=f"the stream has no entry {expected}-0; the next entry is seq {found}",
        )


def _decode_page(
    run_id: RunId, after_seq: int, entries: Sequence[Entry], *, check: bool
) -> list[EventEnvelope] | None:
    """A whole page of good entries in one validation call, else ``None``.

    Validating one JSON array of the page's envelopes costs a fifth less than one
    call per envelope. It is only used when every id is exactly ``<seq>-0`` in
    order and every value starts as an envelope does (so that the joined array
    cannot pair the pieces of two entries differently); anything else falls back to
    the entry-by-entry path. An envelope that disagrees with its id is left to the
    base class's page check (the ids being the next seqs, an envelope's seq or run
    that differs breaks the page), unless ``check``: with ``skip_corrupt`` such an
    entry must be skipped, so then this page falls back too.
    """
    datas: list[bytes] = []
    seq = after_seq
    for entry_id, fields in entries:
        seq += 1
        # A native entry has exactly one field, "e".
        if (
            entry_id != b"%d-0" % seq
            or len(fields) != 2
            or fields[0] != _FIELD
            or not fields[1].startswith(_ENVELOPE_START)
        ):
            return None
        datas.append(fields[1])
    try:
        envelopes = _PAGE.validate_json(b"[" + b",".join(datas) + b"]")
    except ValidationError:
        return None
    if len(envelopes) != len(datas):
        return None
    if not check:
        return envelopes
    seq = after_seq
    for envelope in envelopes:
        seq += 1
        if envelope.seq != seq or envelope.run_id != run_id:
            return None
    return envelopes


def _short_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "envelope"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return str(exc)
