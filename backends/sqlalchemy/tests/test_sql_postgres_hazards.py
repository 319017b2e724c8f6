"""PostgreSQL production hazards: a frozen server, a black-holed connection,
connections terminated in a loop, a URL without a database name.

The freezing tests run their own PostgreSQL cluster (``_pg_cluster``) on a free port
and SIGSTOP it; the shared test server is never touched by them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from _pg_cluster import PostgresCluster, available, start_cluster
from _pg_proxy import BlackHoleProxy
from _sql_support import connect_kwargs, unavailable, with_options
from eventstore_sqlalchemy import PostgresEventStore

import eventstore
from eventstore import (
    BackendUnavailableError,
    ConfigurationError,
    EventEnvelope,
    EventStoreError,
    RunId,
    TextDelta,
)
from eventstore.errors import StoreClosedError

#: Options of the stores under a freeze: short timeouts, so the tests are quick.
FAST = {"connect_timeout_s": 1, "command_timeout_s": 1, "close_timeout_s": 1}
#: Slack on top of a configured timeout, for a loaded 2-core machine.
SLACK = 1.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this module's own, which its tests may freeze."""
    reason = available()
    if reason is not None:
        unavailable(f"cannot start a PostgreSQL cluster of the tests' own: {reason}")
    with start_cluster() as started:
        yield started


@pytest.fixture
def database(cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database on the test's cluster (its URL)."""
    name = f"h{random.getrandbits(40):x}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(**connect_kwargs(cluster.url), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield cluster.url_of(name)
    cluster.thaw()  # whatever the test did
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def frozen(cluster: PostgresCluster) -> Iterator[None]:
    cluster.freeze()
    try:
        yield
    finally:
        cluster.thaw()


def _delta(run_id: RunId, index: int) -> TextDelta:
    return TextDelta(run_id=run_id, delta=f"{index}")


async def _timed(awaitable: Any) -> tuple[float, Any]:
    """(seconds, result or the exception raised)."""
    start = time.monotonic()
    try:
        result = await awaitable
    except BaseException as exc:
        result = exc
    return time.monotonic() - start, result


def _assert_timeout_error(outcome: object) -> None:
    assert isinstance(outcome, BackendUnavailableError), repr(outcome)
    assert "did not answer in time" in str(outcome)
    causes = []
    cause: BaseException | None = outcome
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, TimeoutError) for c in causes[1:]), causes


# -- a frozen server -------------------------------------------------------------------


def test_frozen_server_fails_calls_within_command_timeout(
    cluster: PostgresCluster, database: str
) -> None:
    timings: dict[str, float] = {}

    async def scenario() -> None:
        run_id = RunId.new()
        async with eventstore.open_store(database, pool_size=3, **FAST) as store:
            first = await store.append(_delta(run_id, 0))
            with frozen(cluster):
                for name, call in (
                    ("append", lambda: store.append(_delta(run_id, 1))),
                    ("list_after", lambda: store.list_after(run_id)),
                    ("delete_run", lambda: store.delete_run(RunId.new())),
                    ("list_runs", lambda: store.list_runs()),
                ):
                    timings[name], outcome = await _timed(call())
                    _assert_timeout_error(outcome)
                    # list_runs (SQLAlchemy's pool) may ping, then reconnect once.
                    bound = FAST["command_timeout_s"] + (
                        FAST["connect_timeout_s"] if name == "list_runs" else 0
                    )
                    assert timings[name] < bound + SLACK, (name, timings)
                # A store opening meanwhile gives up after connect_timeout_s.
                other = eventstore.open_store(database, **FAST)
                timings["open"], outcome = await _timed(other.open())
                assert isinstance(outcome, BackendUnavailableError), repr(outcome)
                assert timings["open"] < 2 * FAST["connect_timeout_s"] + SLACK, timings
                await other.close()
            # Thawed: the same store works again, on new connections.
            second = await store.append(_delta(run_id, 2))
            stored = await store.list_after(run_id)
        assert stored[0] == first
        assert stored[-1] == second
        # The timed-out append may or may not have been stored; the seqs have no gap.
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))

    asyncio.run(scenario())
    print(f"frozen server: {timings}")


def test_frozen_server_cancelled_calls_and_close_return_promptly(
    cluster: PostgresCluster, database: str
) -> None:
    # Long command timeout: only cancellation and close_timeout_s can end the calls.
    options = {"command_timeout_s": 60, "connect_timeout_s": 60, "close_timeout_s": 2}
    timings: dict[str, float] = {}

    async def scenario() -> None:
        run_id = RunId.new()
        store = eventstore.open_store(database, pool_size=4, **options)
        await store.open()
        try:
            # Several pooled connections, so the freeze catches calls on each path.
            await asyncio.gather(*(store.append(_delta(RunId.new(), i)) for i in range(8)))
            await store.append(_delta(run_id, 0))
            with frozen(cluster):
                own = asyncio.create_task(store.append(_delta(run_id, 1)))  # its own commit
                await asyncio.sleep(0.2)
                queued = [asyncio.create_task(store.append(_delta(run_id, i))) for i in (2, 3)]
                reader = asyncio.create_task(store.list_after(run_id))
                lister = asyncio.create_task(store.list_runs())
                await asyncio.sleep(0.3)
                for name, task in (("append", own), ("list_after", reader), ("list_runs", lister)):
                    assert not task.done(), f"{name} answered by a frozen server"
                    task.cancel()
                    timings[f"cancel {name}"], outcome = await _timed(task)
                    assert isinstance(outcome, asyncio.CancelledError), repr(outcome)
                    assert timings[f"cancel {name}"] < 1.0, timings
                # close() inside asyncio.timeout: cancelled, it still returns once
                # close_timeout_s has terminated what hung.
                start = time.monotonic()
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await store.close()
                timings["cancelled close"] = time.monotonic() - start
                timings["close again"], outcome = await _timed(store.close())
                assert outcome is None
                assert timings["cancelled close"] + timings["close again"] < (
                    options["close_timeout_s"] + SLACK
                ), timings
                # The queued appends are answered: not sent, or cut off in flight.
                done, pending = await asyncio.wait(queued, timeout=1)
                assert not pending, "a queued append was never answered"
                for task in done:
                    error = task.exception()
                    assert isinstance(error, (StoreClosedError, BackendUnavailableError)), error
        finally:
            cluster.thaw()
            await store.close()
        async with eventstore.open_store(database) as again:
            await again.append(_delta(run_id, 9))
            stored = await again.list_after(run_id)
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))

    asyncio.run(scenario())
    print(f"frozen server: {timings}")


def test_frozen_server_close_returns_within_close_timeout(
    cluster: PostgresCluster, database: str
) -> None:
    options = {"command_timeout_s": 60, "connect_timeout_s": 60, "close_timeout_s": 1}

    async def scenario() -> tuple[float, list[object]]:
        run_id = RunId.new()
        store = eventstore.open_store(database, pool_size=2, **options)
        await store.open()
        await store.append(_delta(run_id, 0))
        await store.list_runs()  # an idle SQLAlchemy connection too
        with frozen(cluster):
            appends = [asyncio.create_task(store.append(_delta(run_id, i))) for i in range(5)]
            await asyncio.sleep(0.3)
            took, outcome = await _timed(store.close())
            assert outcome is None, repr(outcome)
            results = await asyncio.gather(*appends, return_exceptions=True)
        return took, results

    took, results = asyncio.run(scenario())
    print(f"frozen server: close() took {took:.2f} s")
    assert took < options["close_timeout_s"] + SLACK
    for result in results:
        assert isinstance(result, (StoreClosedError, BackendUnavailableError)), repr(result)


# -- a black-holed connection ------------------------------------------------------------


@contextlib.asynccontextmanager
async def _through_black_hole(database: str) -> AsyncIterator[tuple[BlackHoleProxy, str]]:
    kwargs = connect_kwargs(database)
    async with BlackHoleProxy("127.0.0.1", kwargs["port"]) as proxy:
        yield proxy, f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{kwargs['database']}"


def test_black_holed_connections_time_out_cancel_and_close(database: str) -> None:
    timings: dict[str, float] = {}

    async def scenario() -> None:
        run_id = RunId.new()
        async with _through_black_hole(database) as (proxy, url):
            store = eventstore.open_store(url, pool_size=2, **FAST)
            await store.open()
            try:
                await store.append(_delta(run_id, 0))
                proxy.swallowing = True
                timings["append"], outcome = await _timed(store.append(_delta(run_id, 1)))
                _assert_timeout_error(outcome)
                assert timings["append"] < FAST["command_timeout_s"] + SLACK
                task = asyncio.create_task(store.list_after(run_id))
                await asyncio.sleep(0.3)
                task.cancel()
                timings["cancel list_after"], outcome = await _timed(task)
                assert isinstance(outcome, asyncio.CancelledError), repr(outcome)
                assert timings["cancel list_after"] < 1.0
                proxy.swallowing = False  # new connections get through again
                await store.append(_delta(run_id, 2))
                proxy.swallowing = True
                pending = asyncio.create_task(store.append(_delta(run_id, 3)))
                await asyncio.sleep(0.2)
                timings["close"], outcome = await _timed(store.close())
                assert outcome is None, repr(outcome)
                assert timings["close"] < FAST["close_timeout_s"] + SLACK
                result = await asyncio.gather(pending, return_exceptions=True)
                assert isinstance(result[0], EventStoreError), repr(result[0])
            finally:
                proxy.swallowing = False
                await store.close()
        async with eventstore.open_store(database) as direct:
            stored = await direct.list_after(run_id)
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))

    asyncio.run(scenario())
    print(f"black hole: {timings}")


# -- connections terminated in a loop ----------------------------------------------------


def test_connections_terminated_in_a_loop_give_clear_errors(database: str) -> None:
    async def scenario() -> tuple[int, list[EventEnvelope], list[BaseException]]:
        admin = await asyncpg.connect(**connect_kwargs(database))
        stop = asyncio.Event()
        kills = 0

        async def killer() -> None:
            nonlocal kills
            while not stop.is_set():
                killed = await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                kills += len(killed)
                await asyncio.sleep(random.uniform(0.005, 0.03))

        returned: list[EventEnvelope] = []
        errors: list[BaseException] = []

        async def appender(store: eventstore.EventStore) -> None:
            run_id = RunId.new()
            while not stop.is_set():
                try:
                    returned.append(await store.append(_delta(run_id, len(returned))))
                except Exception as exc:
                    errors.append(exc)

        try:
            async with eventstore.open_store(database, pool_size=4) as store:
                tasks = [asyncio.create_task(appender(store)) for _ in range(12)]
                tasks.append(asyncio.create_task(killer()))
                await asyncio.sleep(3)
                stop.set()
                await asyncio.gather(*tasks)
        finally:
            await admin.close()
        return kills, returned, errors

    kills, returned, errors = asyncio.run(scenario())
    counts = collections.Counter(
        f"{type(e).__name__} <- {type(e.__cause__).__name__}" for e in errors
    )
    print(f"{kills} connections terminated, {len(returned)} appends returned, errors: {counts}")
    assert kills > 10
    for error in errors:
        assert isinstance(error, BackendUnavailableError), repr(error)
        text = str(error)
        for confusing in ("Connection.terminate()", "Transaction.__aexit__"):
            assert confusing not in text, text

    async def read_back() -> None:
        async with eventstore.open_store(database) as store:
            for envelope in returned:
                stored = await store.list_after(envelope.run_id, envelope.seq - 1, 1)
                assert stored == [envelope]

    asyncio.run(read_back())


# -- a URL without a database name -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432",
        "postgresql://postgres@127.0.0.1:5432/",
        "postgresql+asyncpg://postgres@127.0.0.1/?table_prefix=x_",
    ],
)
def test_url_without_database_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="database name is required") as caught:
        PostgresEventStore.from_url(url)
    assert "tables there" in str(caught.value)
    with pytest.raises(ConfigurationError, match="database name is required"):
        eventstore.open_store(url)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("command_timeout_s", 0),
        ("command_timeout_s", "inf"),
        ("close_timeout_s", -1),
        ("tcp_keepalive_s", -1),
        ("tcp_keepalive_s", 40_000),
    ],
)
def test_timeout_options_are_checked(option: str, value: object) -> None:
    url = with_options("postgresql://postgres@127.0.0.1/db", **{option: value})
    with pytest.raises(ConfigurationError, match=option):
        PostgresEventStore.from_url(url)


def test_timeout_options_reach_the_connections(postgres_url: str) -> None:
    async def scenario() -> None:
        store = eventstore.open_store(postgres_url, command_timeout_s=7, tcp_keepalive_s=20)
        async with store:
            assert isinstance(store, PostgresEventStore)
            assert store._pool is not None
            async with store._pool.acquire() as conn:
                assert conn._config.command_timeout == 7
                sock = conn._transport.get_extra_info("socket")
                import socket

                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 20

    asyncio.run(scenario())
