"""The options every backend accepts (``StoreOptions``), in the URL and as keywords.

``open_store(url, **options)`` reads options from the URL's query string and from
keyword arguments (keywords win). A backend's ``from_url`` that drops either source
would silently run with defaults, so each option the core defines is checked both
ways, through ``open_store`` and the URL of the store under test.
"""

from __future__ import annotations

__all__ = ["OptionTests"]

from typing import Final

import pytest

from eventstore import EventStore, RunId, open_store
from eventstore.errors import EventTooLargeError

from .._harness import URL_MARKER, contract_test
from .._support import read_all
from .errors import event_of_size

# Small enough to exceed cheaply, large enough for any event of the test.
_SMALL_LIMIT = 2_345


def with_query_option(url: str, name: str, value: object) -> str:
    """``url`` with ``name=value`` added to its query string."""
    base, hash_mark, fragment = url.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}{name}={value}{hash_mark}{fragment}"


async def _check_max_event_bytes(store: EventStore, limit: int) -> None:
    async with store:
        assert store.max_event_bytes == limit, (
            f"max_event_bytes={limit} was given, the store has {store.max_event_bytes}"
        )
        run_id = RunId.new()
        appended = await store.append(event_of_size(run_id, limit))
        with pytest.raises(EventTooLargeError):
            await store.append(event_of_size(run_id, limit + 1))
        assert await read_all(store, run_id) == [appended]


_needs_url: Final[pytest.MarkDecorator] = getattr(pytest.mark, URL_MARKER)(
    "the options are given with the store's URL"
)


class OptionTests:
    """``max_event_bytes`` is honoured from the URL's query and as a keyword."""

    @_needs_url
    @contract_test
    async def test_options_max_event_bytes_in_the_url(self, store_url: str) -> None:
        url = with_query_option(store_url, "max_event_bytes", _SMALL_LIMIT)
        await _check_max_event_bytes(open_store(url), _SMALL_LIMIT)

    @_needs_url
    @contract_test
    async def test_options_max_event_bytes_as_a_keyword(self, store_url: str) -> None:
        await _check_max_event_bytes(
            open_store(store_url, max_event_bytes=_SMALL_LIMIT), _SMALL_LIMIT
        )
        # Keywords win over the URL.
        url = with_query_option(store_url, "max_event_bytes", _SMALL_LIMIT * 2)
        await _check_max_event_bytes(open_store(url, max_event_bytes=_SMALL_LIMIT), _SMALL_LIMIT)
