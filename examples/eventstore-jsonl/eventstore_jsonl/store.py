"""The JSON-lines store: one file of envelope lines per run, guarded by ``flock``.

Layout of the directory named by ``jsonl:///path/to/dir``::

    <run_id>.jsonl   one envelope JSON per line; line n holds seq n
    <run_id>.lock    locked exclusively to write (and delete), shared to read

Every primitive is a blocking method run in a worker thread (:func:`in_thread`)
under the run's lock, re-checking the file there, so appends from any number of
tasks, threads and processes get gap-free seqs. An append is one ``write`` of whole
lines followed by ``fsync``. Every line of a batch but its last ends in a space
before the newline (JSON ignores it), so a batch cut short by a crash is recognised,
whether it stops inside a line or between two: it was never acknowledged, so readers
ignore it and the next writer truncates it.
"""

from __future__ import annotations

__all__ = ["JsonlEventStore", "JsonlOptions"]

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from eventstore import RunId, SessionId
from eventstore.backend import (
    DEFAULT_MAX_EVENT_BYTES,
    Backdoor,
    Capability,
    EventEnvelope,
    EventStore,
    ImportBatch,
    PendingEvent,
    RunInfo,
    StoreOptions,
    StoreURL,
    decode_envelope,
    parse_options,
    stamp,
)
from eventstore.errors import (
    BackendError,
    BackendUnavailableError,
    ConcurrencyError,
    ConfigurationError,
    CorruptEventError,
    EventStoreError,
    IdempotencyConflictError,
)

from ._backdoor import JsonlBackdoor
from ._files import fsync_directory, in_thread, open_data, run_lock
from ._index import BATCH_CONTINUES, IndexCache, RunIndex
from .plugin import CAPABILITIES


class JsonlOptions(StoreOptions):
    """Options of ``jsonl://`` stores, from the URL query or keyword arguments."""

    fsync: bool = Field(
        default=True,
        description="fsync every append before it returns; without it an append "
        "survives a killed process but not a power loss.",
    )
    create_dir: bool = Field(
        default=True, description="Create the directory on open if it does not exist."
    )


class JsonlEventStore(EventStore):
    """An event store keeping each run in a JSON-lines file in one directory."""

    backend_name: ClassVar[str] = "jsonl"
    capabilities: ClassVar[frozenset[Capability]] = CAPABILITIES

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = True,
        create_dir: bool = True,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        super().__init__(max_event_bytes=max_event_bytes)
        self.directory = os.path.abspath(directory)
        self.fsync = fsync
        self.create_dir = create_dir
        self._indexes = IndexCache()

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> JsonlEventStore:
        """Build a store from ``jsonl:///absolute/path?fsync=false`` and keywords."""
        parsed = StoreURL.parse(url)
        if parsed.host or parsed.username or parsed.password is not None or not parsed.path:
            raise ConfigurationError(
                "jsonl store URLs name a local directory, as in jsonl:///var/lib/events; "
                f"got {parsed.redacted!r}"
            )
        opts = parse_options(JsonlOptions, parsed, options, backend=cls.backend_name)
        return cls(parsed.path, **opts.model_dump())

    def describe(self) -> str:
        """The directory, as a URL."""
        return f"jsonl://{self.directory}"

    def backdoor(self) -> Backdoor:
        """Raw file access for the conformance suite's corruption tests."""
        return JsonlBackdoor(self)

    # -- lifecycle -----------------------------------------------------------------

    @in_thread
    def _do_open(self) -> None:
        if not os.path.exists(self.directory):
            if not self.create_dir:
                raise ConfigurationError(
                    f"jsonl store directory {self.directory} does not exist "
                    "(create it, or set create_dir=true)"
                )
            os.makedirs(self.directory, exist_ok=True)
        if not os.path.isdir(self.directory):
            raise ConfigurationError(f"jsonl store path {self.directory} is not a directory")

    async def _do_close(self) -> None:
        self._indexes.clear()

    # -- writing -------------------------------------------------------------------

    @in_thread
    def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        with self._locked_run(run_id, write=True) as (fd, index):
            # 1. Stored event ids win: a retry gets the stored envelopes back.
            stored = [index.seq_by_event_id.get(str(p.event_id)) for p in events]
            known = [seq for seq in stored if seq is not None]
            if known:
                if len(known) < len(events):
                    raise IdempotencyConflictError.partial_batch(
                        run_id=run_id, stored=len(known), total=len(events)
                    )
                return [self._decode(run_id, fd, index, seq, seq)[0] for seq in known]
            # 2. Optimistic concurrency: the run's last seq is its line count.
            if expected_seq is not None and expected_seq != index.count:
                raise ConcurrencyError(
                    run_id=run_id, expected_seq=expected_seq, actual_seq=index.count
                )
            # 3. The next seqs, the session ids and the commit time, then the lines.
            stamped = stamp(
                run_id, events, last_seq=index.count, session_id=self._session(run_id, index)
            )
            self._write(fd, index, stamped.texts())
            return stamped.envelopes()

    @in_thread
    def _import(self, batch: ImportBatch) -> None:
        run_id = batch.run_id
        with self._locked_run(run_id, write=True) as (fd, index):
            if index.count != batch.expected_seq:
                raise ConcurrencyError(
                    run_id=run_id, expected_seq=batch.expected_seq, actual_seq=index.count
                )
            copied = (str(envelope.event_id) for envelope in batch.envelopes)
            if not index.seq_by_event_id.keys().isdisjoint(copied):
                raise IdempotencyConflictError.copied_id_taken(run_id=run_id)
            self._write(fd, index, batch.texts)

    def _write(self, fd: int, index: RunIndex, texts: Sequence[str]) -> None:
        """Append one line per envelope JSON, all or none, and make them durable."""
        data = BATCH_CONTINUES.join(text.encode() for text in texts) + b"\n"
        new_file = index.end == 0
        if index.seen[1] > index.end:
            # A torn batch: its writer died inside write(), before it could
            # acknowledge anything, so dropping it loses nothing that was promised.
            os.ftruncate(fd, index.end)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
                if new_file:
                    fsync_directory(self.directory)
        except OSError:
            # A batch is all or none: take back whatever part of it reached the file.
            os.ftruncate(fd, index.end)
            raise
        index.extend(fd, index.end + len(data))

    def _session(self, run_id: RunId, index: RunIndex) -> SessionId | None:
        """The run's current session: the one on its last line."""
        if index.count in index.undecodable:
            raise CorruptEventError(
                run_id=run_id,
                position=f"seq {index.count} (line {index.count})",
                reason="the last line is not JSON, so the run's session is unknown",
            )
        return index.session

    # -- reading -------------------------------------------------------------------

    @in_thread
    def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        with self._locked_run(run_id, write=False) as (fd, index):
            last = min(index.count, after_seq + limit)
            return self._decode(run_id, fd, index, after_seq + 1, last)

    @in_thread
    def _last_seq(self, run_id: RunId) -> int:
        with self._locked_run(run_id, write=False) as (_, index):
            return index.count

    @in_thread
    def _last_seqs(self, run_ids: Sequence[RunId]) -> dict[RunId, int]:
        """What the live subscribers' shared poller asks every round: one thread hop.

        A ``stat`` per run tells whether its file changed since it was last indexed;
        only a changed one is read (under its lock), so idle subscribers of many
        runs read nothing, even those whose index left the cache.
        """
        out: dict[RunId, int] = {}
        for run_id in run_ids:
            last = self._indexes.last_seq_if_unchanged(run_id, self._paths(run_id)[0])
            if last is None:
                with self._locked_run(run_id, write=False) as (_, index):
                    last = index.count
            out[run_id] = last
        return out

    def _decode(
        self, run_id: RunId, fd: int, index: RunIndex, first: int, last: int
    ) -> list[EventEnvelope]:
        """Decode the lines of seqs ``first`` to ``last`` (the base class checks their seqs)."""
        if last < first:
            return []
        envelopes = []
        for seq, line in enumerate(index.lines(fd, first, last), start=first):
            try:
                envelopes.append(decode_envelope(line))
            except ValidationError as exc:
                raise CorruptEventError(
                    run_id=run_id,
                    position=f"seq {seq} (line {seq})",
                    reason=f"not an envelope: {exc.errors()[0]['msg']}",
                ) from exc
        return envelopes

    # -- runs ----------------------------------------------------------------------

    @in_thread
    def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos: list[RunInfo] = []
        for run_id in self._run_ids(after):
            with self._locked_run(run_id, write=False) as (_, index):
                # The session of the last line that decodes: one damaged line is
                # reported when the run is read, not by failing the whole listing.
                run_session = index.session
                if index.count == 0 or (session_id is not None and run_session != session_id):
                    continue
                infos.append(
                    RunInfo(
                        run_id=run_id,
                        session_id=run_session,
                        last_seq=index.count,
                        first_emitted_at=index.first_emitted_at,
                        last_emitted_at=index.last_emitted_at,
                    )
                )
            if len(infos) == limit:
                break
        return infos

    def _run_ids(self, after: RunId | None) -> list[RunId]:
        """Ids of the runs that have a file, sorted, past ``after``."""
        run_ids = []
        for name in os.listdir(self.directory):
            stem, dot, suffix = name.rpartition(".")
            if suffix != "jsonl" or not dot:
                continue
            try:
                run_id = RunId.parse(stem)
            except ValueError:
                continue  # not one of ours
            if str(run_id) == stem and (after is None or run_id > after):
                run_ids.append(run_id)
        return sorted(run_ids)

    @in_thread
    def _delete_run(self, run_id: RunId) -> int:
        with self._locked_run(run_id, write=True) as (_, index):
            # Data first: a lock file without data is an empty run, never the reverse.
            for path in self._paths(run_id):
                os.unlink(path)
            self._indexes.forget(run_id)
        if self.fsync:
            fsync_directory(self.directory)
        return index.count

    # -- errors ----------------------------------------------------------------------

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        if isinstance(exc, OSError):
            name = errno.errorcode.get(exc.errno or 0, "OSError")
            message = f"{operation} in {self.directory} failed: {name}: {exc.strerror}"
            if isinstance(exc, (FileNotFoundError, PermissionError, NotADirectoryError)):
                return BackendUnavailableError(message)
            return BackendError(message)
        return super()._translate_error(exc, operation)

    # -- the run files ---------------------------------------------------------------

    def _paths(self, run_id: RunId) -> tuple[str, str]:
        base = os.path.join(self.directory, str(run_id))
        return f"{base}.jsonl", f"{base}.lock"

    @contextmanager
    def _locked_run(self, run_id: RunId, *, write: bool) -> Iterator[tuple[int, RunIndex]]:
        """The run file's descriptor and up-to-date index, under the run's lock.

        A writer locks exclusively and creates the files. A reader locks shared and
        creates nothing: a run without a file is an empty run (and no descriptor).
        """
        data_path, lock_path = self._paths(run_id)
        # A data file without its lock file (restored from a backup without it) is
        # still a run: its lock file is made again, as a writer would.
        create = write or os.path.exists(data_path)
        with run_lock(lock_path, exclusive=write, create=create) as exists:
            fd = open_data(data_path, write=write) if exists else None
            if fd is None:
                self._indexes.forget(run_id)
                yield -1, RunIndex(0)
                return
            try:
                yield fd, self._indexes.refresh(run_id, fd)
            finally:
                os.close(fd)
