"""Reliability: several processes on one run, a killed writer, lost connections."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from _sql_support import connect_kwargs

import eventstore
from eventstore import EventEnvelope, RunId, TextDelta

WRITER = Path(__file__).with_name("_sql_writer.py")
PROCESSES = 4
PER_PROCESS = 500


def _spawn(url: str, run_id: RunId, count: int, tag: str, acks: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, str(run_id), str(count), tag, str(acks)],
        stderr=subprocess.PIPE,
    )


async def _read_all(url: str, run_id: RunId) -> list[EventEnvelope]:
    out: list[EventEnvelope] = []
    async with eventstore.open_store(url) as store:
        while True:
            page = await store.list_after(run_id, out[-1].seq if out else 0, 1000)
            if not page:
                return out
            out.extend(page)


def _assert_gap_free(envelopes: list[EventEnvelope]) -> None:
    assert [e.seq for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert len({e.event_id for e in envelopes}) == len(envelopes)


def _four_processes_one_run(url: str, tmp_path: Path) -> None:
    run_id = RunId.new()
    # Create the schema once first, so the writers race on appends, not on DDL.
    asyncio.run(_read_all(url, run_id))
    writers = [
        _spawn(url, run_id, PER_PROCESS, f"p{n}", tmp_path / f"acks{n}") for n in range(PROCESSES)
    ]
    for writer in writers:
        _out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()
    envelopes = asyncio.run(_read_all(url, run_id))
    _assert_gap_free(envelopes)
    assert len(envelopes) == PROCESSES * PER_PROCESS
    deltas = sorted(e.event.delta for e in envelopes if isinstance(e.event, TextDelta))
    expected = sorted(f"p{n}:{i}" for n in range(PROCESSES) for i in range(PER_PROCESS))
    assert deltas == expected


def test_four_processes_append_gap_free_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    _four_processes_one_run(sqlite_url, tmp_path)


def test_four_processes_append_gap_free_postgres(postgres_url: str, tmp_path: Path) -> None:
    _four_processes_one_run(postgres_url, tmp_path)


def _killed_writer_keeps_acknowledged(url: str, tmp_path: Path) -> None:
    run_id = RunId.new()
    acks = tmp_path / "acks"
    writer = _spawn(url, run_id, 100_000, "w", acks)
    try:
        deadline = time.monotonic() + 120
        while not acks.exists() or acks.read_text().count("\n") < 200:
            assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else ""
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.02)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    acknowledged = [line.split() for line in acks.read_text().splitlines() if line.strip()]
    envelopes = asyncio.run(_read_all(url, run_id))
    _assert_gap_free(envelopes)
    by_seq = {e.seq: str(e.event_id) for e in envelopes}
    for seq, event_id in acknowledged:
        assert by_seq.get(int(seq)) == event_id

    async def append_after() -> int:
        async with eventstore.open_store(url) as store:
            return (await store.append(TextDelta(run_id=run_id, delta="after"))).seq

    assert asyncio.run(append_after()) == len(envelopes) + 1


def test_sigkilled_writer_keeps_every_acknowledged_append_sqlite(
    sqlite_url: str, tmp_path: Path
) -> None:
    _killed_writer_keeps_acknowledged(sqlite_url, tmp_path)


def test_sigkilled_writer_keeps_every_acknowledged_append_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    _killed_writer_keeps_acknowledged(postgres_url, tmp_path)


async def _terminate_backends(database_url: str) -> int:
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(killed)
    finally:
        await conn.close()


def test_appends_survive_terminated_connections_postgres(
    postgres_url: str, postgres_database: str
) -> None:
    count = 300

    async def scenario() -> tuple[list[EventEnvelope], list[EventEnvelope], int]:
        run_id = RunId.new()
        returned: list[EventEnvelope] = []
        async with eventstore.open_store(postgres_url, pool_size=4) as store:
            killed = 0

            for index in range(count):
                if index in (count // 4, count // 2, 3 * count // 4):
                    killed += await _terminate_backends(postgres_database)
                returned.append(await store.append(TextDelta(run_id=run_id, delta=f"{index}")))
            stored = await store.list_after(run_id, None, 1000)
        return returned, stored, killed

    returned, stored, killed = asyncio.run(scenario())
    assert killed > 0
    _assert_gap_free(stored)
    assert stored == returned
    assert [e.event.delta for e in stored if isinstance(e.event, TextDelta)] == [
        str(i) for i in range(count)
    ]


def test_retry_after_lost_acknowledgement_stores_once_postgres(postgres_url: str) -> None:
    async def scenario() -> list[EventEnvelope]:
        run_id = RunId.new()
        event = TextDelta(run_id=run_id, delta="once")
        event_id = eventstore.EventId.new()
        async with eventstore.open_store(postgres_url) as store:
            first = await store.append(event, event_id=event_id)
            await _terminate_backends(postgres_url.split("?")[0])
            # The caller never saw `first` (say), and retries with the same id.
            again = await store.append(event, event_id=event_id)
            assert again == first
            return await store.list_after(run_id)

    assert len(asyncio.run(scenario())) == 1


def test_reopened_store_continues_the_sequence_sqlite(sqlite_url: str) -> None:
    async def scenario() -> list[int]:
        run_id = RunId.new()
        seqs = []
        for _ in range(3):
            async with eventstore.open_store(sqlite_url) as store:
                seqs.append((await store.append(TextDelta(run_id=run_id, delta="x"))).seq)
        return seqs

    assert asyncio.run(scenario()) == [1, 2, 3]
