"""Rule 9 (errors) and the lifecycle: typed errors, idempotent ``close``."""

from __future__ import annotations

__all__ = ["ErrorTests"]

from collections.abc import Awaitable, Callable

import pytest

from eventstore import EventStore, EventStoreError, InvalidArgumentError, RunId, TextDelta
from eventstore.backend import StoreURL
from eventstore.errors import EventTooLargeError, StoreClosedError
from eventstore.events import encode_event

from .._harness import StoreFactory, contract_test
from .._support import delta, read_all

# Beyond this a configured limit is too big to exceed cheaply in a test.
_LARGEST_CHECKED_LIMIT = 64 << 20


class ErrorTests:
    """Everything raised is an ``EventStoreError``; bad arguments are ``ValueError``."""

    @contract_test
    async def test_errors_invalid_arguments_are_value_errors(self, store: EventStore) -> None:
        run_id = RunId.new()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.list_after("not-a-uuid", 0),  # type: ignore[arg-type]
            lambda: store.list_after(run_id, 0, 0),
            lambda: store.last_seq(42),  # type: ignore[arg-type]
            lambda: store.append({"TextDelta": {}}),  # type: ignore[arg-type]
            lambda: store.append(delta(run_id, 0), expected_seq=-1),
            lambda: store.append(delta(run_id, 0), event_id="nope"),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(InvalidArgumentError) as caught:
                await call()
            assert isinstance(caught.value, ValueError)
            assert isinstance(caught.value, EventStoreError)
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_errors_event_too_large_is_refused(self, store: EventStore) -> None:
        limit = store.max_event_bytes
        if limit > _LARGEST_CHECKED_LIMIT:
            pytest.skip(f"max_event_bytes={limit} is too large to exceed in a test")
        run_id = RunId.new()
        with pytest.raises(EventTooLargeError):
            await store.append(TextDelta(run_id=run_id, delta="x" * (limit + 1)))
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_errors_event_of_exactly_max_event_bytes_is_stored(
        self, store: EventStore
    ) -> None:
        limit = store.max_event_bytes
        if limit > _LARGEST_CHECKED_LIMIT:
            pytest.skip(f"max_event_bytes={limit} is too large to reach in a test")
        run_id = RunId.new()
        largest = event_of_size(run_id, limit)
        appended = await store.append(largest)
        assert await read_all(store, run_id) == [appended]
        with pytest.raises(EventTooLargeError):
            await store.append(event_of_size(run_id, limit + 1))
        assert await store.last_seq(run_id) == 1

    @contract_test
    async def test_errors_closed_store_raises_store_closed_error(
        self, store_factory: StoreFactory
    ) -> None:
        store = store_factory()
        with pytest.raises(StoreClosedError):
            await store.append(delta(RunId.new(), 0))
        async with store:
            pass
        with pytest.raises(StoreClosedError):
            await store.last_seq(RunId.new())
        with pytest.raises(EventStoreError):
            await store.open()

    @contract_test
    async def test_close_is_idempotent(self, store_factory: StoreFactory) -> None:
        unopened = store_factory()
        await unopened.close()
        await unopened.close()
        store = await store_factory().open()
        await store.append(delta(RunId.new(), 0))
        await store.close()
        await store.close()
        assert not store.is_open

    @contract_test
    async def test_errors_no_credential_in_repr(
        self, store: EventStore, store_url: str | None
    ) -> None:
        password = StoreURL.parse(store_url).password if store_url else None
        if not password:
            pytest.skip("store_url carries no password that could leak")
        for text in (repr(store), str(store), store.describe()):
            assert password not in text

    @contract_test
    async def test_errors_driver_failures_become_event_store_errors(
        self, store: EventStore, store_url: str | None
    ) -> None:
        # Rule 9: a driver's exception reaches the caller as an EventStoreError with
        # the cause chained. The suite cannot make every driver fail, so it checks the
        # hook every failure goes through (the base class raises what it returns).
        password = StoreURL.parse(store_url).password if store_url else None
        where = store_url or "the store"
        for exc in (
            RuntimeError(f"driver exploded talking to {where}"),
            ConnectionRefusedError(111, f"Connection refused: {where}"),
            TimeoutError("timed out"),
        ):
            translated = store._translate_error(exc, "append")
            assert isinstance(translated, EventStoreError), (
                f"_translate_error turned {exc!r} into {type(translated).__name__}, "
                "not an EventStoreError"
            )
            if password:
                assert password not in str(translated), "a password reached an error message"


def event_of_size(run_id: RunId, size: int) -> TextDelta:
    """A ``TextDelta`` whose serialized JSON is exactly ``size`` bytes (if that is possible)."""
    empty = TextDelta(run_id=run_id, delta="")
    base = len(encode_event(empty).encode())
    if size < base:
        raise ValueError(f"an event takes at least {base} bytes, not {size}")
    event = TextDelta(run_id=run_id, delta="x" * (size - base), timestamp=empty.timestamp)
    assert len(encode_event(event).encode()) == size
    return event
