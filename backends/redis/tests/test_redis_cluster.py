"""A 3-primary Redis Cluster on loopback: the whole conformance suite, and cross-slot runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from _acl_support import CLUSTER_COMMANDS, COMMANDS, PASSWORD, add_user, exercise
from _redis_support import cli_binary, cluster, run, server_binary, unavailable
from eventstore_contract import StoreContract
from eventstore_redis import RedisEventStore
from redis.crc import key_slot

import eventstore
from eventstore import ConfigurationError, EventStore, RunId, RunStarted, SessionId, TextDelta


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    binary, cli = server_binary(), cli_binary()
    if binary is None or cli is None:
        unavailable("a Redis Cluster needs redis-server and redis-cli on PATH")
    with cluster(binary, cli, tmp_path_factory.mktemp("cluster")) as ports:
        yield ports


@pytest.fixture
def cluster_url(cluster_ports: list[int], prefix: str) -> str:
    return f"redis+cluster://127.0.0.1:{cluster_ports[0]}?prefix={prefix}"


class TestRedisClusterContract(StoreContract):
    """Every rule of the contract against the cluster."""

    @pytest.fixture
    def store_factory(self, cluster_url: str) -> Callable[[], EventStore]:
        return lambda: eventstore.open_store(cluster_url)

    @pytest.fixture
    def store_url(self, cluster_url: str) -> str | None:
        return cluster_url


def test_runs_spread_over_slots_are_listed_and_deleted(cluster_url: str) -> None:
    session = SessionId.new()
    runs = sorted(RunId.new() for _ in range(12))

    async def body() -> tuple[list[RunId], list[RunId], set[int]]:
        async with eventstore.open_store(cluster_url) as store:
            assert isinstance(store, RedisEventStore)
            for run_id in runs:
                await store.append(
                    RunStarted(run_id=run_id, session_id=session, provider="a", model="m")
                )
                await store.append(TextDelta(run_id=run_id, delta="x"))
            listed = [info.run_id for info in await store.list_runs(session_id=session)]
            await store.delete_run(runs[0])
            after_delete = [info.run_id for info in await store.list_runs()]
            slots = {key_slot(store.keys.log(r).encode()) for r in runs}
            return listed, after_delete, slots

    listed, after_delete, slots = run(body())
    assert listed == runs
    assert after_delete == runs[1:]
    assert len(slots) > 1


def test_an_acl_user_works_with_the_documented_cluster_rights(cluster_ports: list[int]) -> None:
    # Users are per node: each primary gets the same one. The key pattern admits
    # this test's own prefix only.
    for port in cluster_ports:
        add_user(port, f"{COMMANDS} {CLUSTER_COMMANDS}")
    url = f"redis+cluster://agent:{PASSWORD}@127.0.0.1:{cluster_ports[0]}?prefix=app:"
    assert run(exercise(url)) == [1, 2, 3, 4, 5, 5]


def test_without_the_cluster_rights_the_store_cannot_open(cluster_ports: list[int]) -> None:
    for port in cluster_ports:
        add_user(port, COMMANDS)
    url = f"redis+cluster://agent:{PASSWORD}@127.0.0.1:{cluster_ports[0]}?prefix=app:"
    with pytest.raises(eventstore.EventStoreError) as caught:
        run(exercise(url))
    assert PASSWORD not in str(caught.value)


def test_an_evicting_policy_on_any_primary_is_refused(cluster_ports: list[int]) -> None:
    # This module's own cluster (never the shared server): one primary of three evicts.
    node = redis.Redis(port=cluster_ports[2])
    url = f"redis+cluster://127.0.0.1:{cluster_ports[0]}?prefix=evict:"

    async def body() -> None:
        async with eventstore.open_store(url) as store:
            await store.append(TextDelta(run_id=RunId.new(), delta="x"))

    try:
        node.config_set("maxmemory-policy", "allkeys-lfu")
        with pytest.raises(ConfigurationError) as caught:
            run(body())
        run(_open_allowing(url))
    finally:
        node.config_set("maxmemory-policy", "noeviction")
        node.close()
    assert f"'allkeys-lfu' on 127.0.0.1:{cluster_ports[2]}" in str(caught.value)
    assert "noeviction" in str(caught.value)


async def _open_allowing(url: str) -> None:
    async with eventstore.open_store(url, allow_eviction=True) as store:
        await store.delete_run(RunId.new())
