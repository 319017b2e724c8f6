"""The JSON-lines store: one file of envelope lines per run, guarded by ``flock``.

Layout of the directory named by ``jsonl:///path/to/dir``::

    <run_id>.jsonl   one envelope JSON per line; line n holds seq n
    <run_id>.lock    locked exclusively to write (and delete), shared to read

Every primitive runs its blocking file work in a worker thread under the run's
lock, re-checking the file there, so appends from any number of tasks, threads and
processes get gap-free seqs. An append is one ``write`` of whole lines followed by
``fsync``. Every line of a batch but its last ends in a space before the newline
(JSON ignores it), so a batch cut short by a crash is recognised, whether it stops
inside a line or between two: it was never acknowledged, so readers ignore it and
the next writer truncates it.
"""

from __future__ import annotations

__all__ = ["JsonlEventStore", "JsonlOptions"]

import asyncio
import errno
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from pydantic import Field, ValidationError

from eventstore import (
    BackendError,
    BackendUnavailableError,
    ConcurrencyError,
    ConfigurationError,
    CorruptEventError,
    EventStoreError,
    IdempotencyConflictError,
    RunId,
    SessionId,
)
from eventstore.backend import (
    DEFAULT_MAX_EVENT_BYTES,
    Backdoor,
    Capability,
    EventEnvelope,
    EventStore,
    PendingEvent,
    RunInfo,
    RunNotifier,
    StoreOptions,
    StoreURL,
    decode_envelope,
    envelope_json,
    new_envelope,
    parse_options,
    stamp_sessions,
)

from ._backdoor import JsonlBackdoor
from ._files import fsync_directory, open_data, run_lock
from ._index import BATCH_CONTINUES, RunIndex, read_range
from .plugin import CAPABILITIES

#: Longest pause between two looks at a run file while a subscriber waits for
#: another process to append (appends in this process wake it at once).
MAX_POLL_INTERVAL: Final = 0.1

#: Runs whose index (line offsets and event ids) a store keeps between calls.
MAX_CACHED_RUNS: Final = 1024
#: Runs whose file state (inode, size, mtime) a store remembers, so that a waiting
#: subscriber whose index was evicted does not re-read an unchanged file.
MAX_REMEMBERED_FILES: Final = 65536

_FileState = tuple[int, int, int]


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
        self._indexes: dict[RunId, RunIndex] = {}
        self._files: dict[RunId, _FileState] = {}
        # Worker threads share the indexes; the run lock alone does not order two
        # readers, which may both bring one index up to date.
        self._index_mutex = threading.Lock()
        self._notifier = RunNotifier()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> JsonlEventStore:
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

    async def _do_open(self) -> None:
        await asyncio.to_thread(self._prepare_directory)

    async def _do_close(self) -> None:
        self._notifier.notify_all()
        self._indexes.clear()
        self._files.clear()

    def _prepare_directory(self) -> None:
        if not os.path.exists(self.directory):
            if not self.create_dir:
                raise ConfigurationError(
                    f"jsonl store directory {self.directory} does not exist "
                    "(create it, or set create_dir=true)"
                )
            os.makedirs(self.directory, exist_ok=True)
        if not os.path.isdir(self.directory):
            raise ConfigurationError(f"jsonl store path {self.directory} is not a directory")

    # -- primitives: each runs its file work in a thread ---------------------------

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        envelopes = await asyncio.to_thread(self._append_sync, run_id, events, expected_seq)
        self._notifier.notify(run_id)
        return envelopes

    async def _import(
        self,
        run_id: RunId,
        envelopes: Sequence[EventEnvelope],
        event_jsons: Sequence[str],
        expected_seq: int,
    ) -> None:
        await asyncio.to_thread(self._import_sync, run_id, envelopes, event_jsons, expected_seq)
        self._notifier.notify(run_id)

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await asyncio.to_thread(self._list_after_sync, run_id, after_seq, limit)

    async def _last_seq(self, run_id: RunId) -> int:
        return await asyncio.to_thread(self._last_seq_sync, run_id)

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        return await asyncio.to_thread(self._list_runs_sync, session_id, limit, after)

    async def _delete_run(self, run_id: RunId) -> int:
        removed = await asyncio.to_thread(self._delete_run_sync, run_id)
        self._notifier.notify(run_id)  # subscribers look again and find the run gone
        return removed

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        # Listen first: an append in this process between the look at the file and
        # the wait has then already set the event.
        woken = self._notifier.listen(run_id)
        interval = 0.005
        while self.is_open:
            if await asyncio.to_thread(self._has_news, run_id, after_seq):
                return
            try:
                async with asyncio.timeout(interval):
                    await woken.wait()
                return
            except TimeoutError:
                interval = min(interval * 2, MAX_POLL_INTERVAL)

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        if isinstance(exc, OSError):
            name = errno.errorcode.get(exc.errno or 0, "OSError")
            message = f"jsonl {operation} in {self.directory} failed: {name}: {exc.strerror}"
            if isinstance(exc, (FileNotFoundError, PermissionError, NotADirectoryError)):
                return BackendUnavailableError(message)
            return BackendError(message)
        return super()._translate_error(exc, operation)

    # -- the blocking work ---------------------------------------------------------

    def _paths(self, run_id: RunId) -> tuple[str, str]:
        base = os.path.join(self.directory, str(run_id))
        return f"{base}.jsonl", f"{base}.lock"

    @contextmanager
    def _locked_run(self, run_id: RunId, *, write: bool) -> Iterator[tuple[int, RunIndex] | None]:
        """The run file's descriptor and up-to-date index, under the run's lock.

        Yields ``None`` when reading a run that has no file.
        """
        data_path, lock_path = self._paths(run_id)
        # A data file without its lock file (restored from a backup without it) is
        # still a run: its lock file is made again, as a writer would.
        create = write or os.path.exists(data_path)
        with run_lock(lock_path, exclusive=write, create=create) as exists:
            fd = open_data(data_path, write=write) if exists else None
            if fd is None:
                yield None
                return
            try:
                yield fd, self._refresh(run_id, fd)
            finally:
                os.close(fd)

    def _refresh(self, run_id: RunId, fd: int) -> RunIndex:
        stat = os.fstat(fd)
        with self._index_mutex:
            index = self._indexes.pop(run_id, None)
            if index is None or not index.describes(fd, stat.st_ino, stat.st_size):
                index = RunIndex(stat.st_ino)
            # Most recently used last; the oldest go once there are too many, so a
            # long-lived process that touches many runs does not keep them all.
            self._indexes[run_id] = index
            while len(self._indexes) > MAX_CACHED_RUNS:
                del self._indexes[next(iter(self._indexes))]
            index.extend(fd, stat.st_size)
            self._files.pop(run_id, None)
            self._files[run_id] = (stat.st_ino, index.seen[1], stat.st_mtime_ns)
            while len(self._files) > MAX_REMEMBERED_FILES:
                del self._files[next(iter(self._files))]
            return index

    def _append_sync(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        with self._locked_run(run_id, write=True) as locked:
            assert locked is not None  # a writer always gets the file
            fd, index = locked
            stored = [index.seq_by_event_id.get(str(p.event_id)) for p in events]
            if any(seq is not None for seq in stored):
                if None in stored:
                    raise IdempotencyConflictError(
                        f"run {run_id}: some event ids of the batch are stored and some are not"
                    )
                return [self._decode(run_id, fd, index, seq, seq)[0] for seq in stored if seq]
            if expected_seq is not None and expected_seq != index.count:
                raise ConcurrencyError(
                    run_id=run_id, expected_seq=expected_seq, actual_seq=index.count
                )
            sessions, _ = stamp_sessions(self._session(run_id, index), events)
            now = datetime.now(UTC)
            envelopes = [
                new_envelope(
                    event_id=p.event_id,
                    seq=seq,
                    run_id=run_id,
                    session_id=session_id,
                    event=p.event,
                    emitted_at=now,
                )
                for seq, (p, session_id) in enumerate(
                    zip(events, sessions, strict=True), start=index.count + 1
                )
            ]
            self._write(fd, index, envelopes, [p.event_json for p in events])
            return envelopes

    def _import_sync(
        self,
        run_id: RunId,
        envelopes: Sequence[EventEnvelope],
        event_jsons: Sequence[str],
        expected_seq: int,
    ) -> None:
        with self._locked_run(run_id, write=True) as locked:
            assert locked is not None
            fd, index = locked
            if index.count != expected_seq:
                raise ConcurrencyError(
                    run_id=run_id, expected_seq=expected_seq, actual_seq=index.count
                )
            ids = {str(e.event_id) for e in envelopes}
            if len(ids) != len(envelopes) or not ids.isdisjoint(index.seq_by_event_id):
                raise IdempotencyConflictError(
                    f"run {run_id}: a copied event id is already stored at another seq"
                )
            self._write(fd, index, envelopes, event_jsons)

    def _write(
        self,
        fd: int,
        index: RunIndex,
        envelopes: Sequence[EventEnvelope],
        event_jsons: Sequence[str],
    ) -> None:
        """Append one line per envelope, all or none, and make them durable."""
        lines = [
            envelope_json(
                event_id=e.event_id,
                seq=e.seq,
                run_id=e.run_id,
                session_id=e.session_id,
                event_json=event_json,
                emitted_at=e.emitted_at,
            ).encode()
            for e, event_json in zip(envelopes, event_jsons, strict=True)
        ]
        data = BATCH_CONTINUES.join(lines) + b"\n"
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
        return None if index.session_id is None else SessionId.parse(index.session_id)

    def _decode(
        self, run_id: RunId, fd: int, index: RunIndex, first: int, last: int
    ) -> list[EventEnvelope]:
        """Read and decode the lines of seqs ``first`` to ``last``."""
        start = index.start_of(first)
        lines = read_range(fd, index.ends[last - 1] - start, start).split(b"\n")[:-1]
        envelopes = []
        for seq, line in enumerate(lines, start=first):
            try:
                envelope = decode_envelope(line)
            except ValidationError as exc:
                reason = f"not an envelope: {exc.errors()[0]['msg']}"
                raise CorruptEventError(
                    run_id=run_id, position=f"seq {seq} (line {seq})", reason=reason
                ) from exc
            if envelope.seq != seq or envelope.run_id != run_id:
                raise CorruptEventError(
                    run_id=run_id,
                    position=f"seq {seq} (line {seq})",
                    reason=f"the line holds seq {envelope.seq} of run {envelope.run_id}",
                )
            envelopes.append(envelope)
        return envelopes

    def _list_after_sync(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        with self._locked_run(run_id, write=False) as locked:
            if locked is None:
                self._forget(run_id)
                return []
            fd, index = locked
            last = min(index.count, after_seq + limit)
            return self._decode(run_id, fd, index, after_seq + 1, last) if last > after_seq else []

    def _last_seq_sync(self, run_id: RunId) -> int:
        with self._locked_run(run_id, write=False) as locked:
            if locked is None:
                self._forget(run_id)
                return 0
            return locked[1].count

    def _forget(self, run_id: RunId) -> None:
        """Drop the cached index of a run whose files are gone."""
        with self._index_mutex:
            self._indexes.pop(run_id, None)
            self._files.pop(run_id, None)

    def _list_runs_sync(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos: list[RunInfo] = []
        for run_id in self._run_ids(after):
            with self._locked_run(run_id, write=False) as locked:
                if locked is None or locked[1].count == 0:
                    continue
                index = locked[1]
                # The session of the last line that decodes: one damaged line is
                # reported when the run is read, not by failing the whole listing.
                known = index.session_id
                run_session = None if known is None else SessionId.parse(known)
                if session_id is not None and run_session != session_id:
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

    def _delete_run_sync(self, run_id: RunId) -> int:
        data_path, lock_path = self._paths(run_id)
        with run_lock(lock_path, exclusive=True):
            fd = open_data(data_path, write=False)
            count = 0
            if fd is not None:
                try:
                    count = self._refresh(run_id, fd).count
                finally:
                    os.close(fd)
            # Data first: a lock file without data is an empty run, never the reverse.
            for path in (data_path, lock_path):
                with suppress(FileNotFoundError):
                    os.unlink(path)
            with self._index_mutex:
                self._indexes.pop(run_id, None)
                self._files.pop(run_id, None)
            if self.fsync:
                fsync_directory(self.directory)
        return count

    def _has_news(self, run_id: RunId, after_seq: int) -> bool:
        """Whether the run file may hold lines past ``after_seq`` (a cheap ``stat``)."""
        try:
            stat = os.stat(self._paths(run_id)[0])
        except FileNotFoundError:
            # Deleted (perhaps by another process): news once, so the subscriber
            # looks again and finds the run gone; then what was known of it is
            # dropped and a missing file is no news, or a subscriber would spin.
            with self._index_mutex:
                self._indexes.pop(run_id, None)
                known = self._files.pop(run_id, None)
            return known is not None
        index = self._indexes.get(run_id)
        if index is not None and index.count > after_seq:
            return True
        # Size alone would miss a write that replaced a torn tail with as many bytes.
        return self._files.get(run_id) != (stat.st_ino, stat.st_size, stat.st_mtime_ns)
