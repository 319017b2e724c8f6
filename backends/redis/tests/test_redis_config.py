"""URLs, options, plugin registration, and that no password ever shows."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from _redis_support import free_port, run
from eventstore_redis import LegacyRedisEventStore, RedisEventStore

import eventstore
import eventstore.backend
from eventstore import BackendUnavailableError, Capability, ConfigurationError, RunId
from eventstore.backend import StoreURL

SECRET = "s3cr3t-Pa55"


def test_plugin_module_does_not_import_redis() -> None:
    code = (
        "import sys, eventstore.backend\n"
        "backends = dict(eventstore.backend.default_registry().backends)\n"
        "assert 'redis' in backends, backends\n"
        "assert 'redis' not in sys.modules and 'eventstore_redis.store' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://127.0.0.1:6380/1",
        "unix:///tmp/redis.sock",
        "redis+cluster://127.0.0.1:7000",
    ],
)
def test_every_scheme_opens_a_redis_store(url: str) -> None:
    store = eventstore.open_store(url)
    assert isinstance(store, RedisEventStore)
    assert Capability.DURABLE in store.capabilities


def test_options_come_from_query_and_keywords() -> None:
    store = eventstore.open_store(
        "redis://127.0.0.1/0?prefix=app:&max_events_per_run=10", skip_corrupt=True
    )
    assert isinstance(store, RedisEventStore)
    assert (store.options.prefix, store.options.max_events_per_run) == ("app:", 10)
    assert store.options.skip_corrupt
    assert store.keys.log(RunId.parse("01a21b14-0000-7000-8000-000000000000")) == (
        "app:{01a21b14-0000-7000-8000-000000000000}:log"
    )


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("nosuch=1", "unknown option 'nosuch'"),
        ("prefix=a{b}", "prefix"),
        ("max_events_per_run=0", "max_events_per_run"),
        ("prefix=", "prefix"),
        ("socket_timeout=inf", "socket_timeout"),
        ("connect_timeout=nan", "connect_timeout"),
    ],
)
def test_bad_options_are_configuration_errors(query: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        eventstore.open_store(f"redis://:{SECRET}@127.0.0.1/0?{query}")


@pytest.mark.parametrize(
    ("url", "db"),
    [
        ("redis://127.0.0.1:6379/3", 3),
        ("redis://127.0.0.1:6379/3?db=3", 3),
        ("redis://127.0.0.1:6379?db=4", 4),
        ("redis://127.0.0.1:6379/", None),
        ("redis+cluster://127.0.0.1:7000/0", None),
    ],
)
def test_database_from_the_path_or_the_option(url: str, db: int | None) -> None:
    store = eventstore.open_store(url)
    assert isinstance(store, RedisEventStore)
    assert store.options.db == db


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        # redis-py would let the path win silently, or ignore a path that is no number.
        ("redis://127.0.0.1:6379/0?db=6", "disagree"),
        ("redis://127.0.0.1:6379/abc", "database number"),
        ("redis://127.0.0.1:6379/3/extra", "database number"),
        ("redis+cluster://127.0.0.1:7000/4", "only database 0"),
    ],
)
def test_database_mistakes_are_configuration_errors(url: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        eventstore.open_store(url)


def test_legacy_layout_option_gives_the_read_only_store() -> None:
    store = eventstore.open_store("redis://127.0.0.1/0?layout=legacy")
    assert isinstance(store, LegacyRedisEventStore)
    assert Capability.DELETE not in store.capabilities
    assert store.gaps_possible  # behest's streams can have holes


def test_from_url_takes_a_parsed_url_or_a_string() -> None:
    parsed = StoreURL.parse("redis://127.0.0.1:6379/2?prefix=p:")
    by_object = RedisEventStore.from_url(parsed, skip_corrupt=True)
    by_text = RedisEventStore.from_url(str(parsed.secret))
    assert isinstance(by_object, RedisEventStore) and isinstance(by_text, RedisEventStore)
    assert (by_object.options.db, by_object.options.prefix) == (2, "p:")
    assert by_object.options == by_text.options.model_copy(update={"skip_corrupt": True})
    # Skipping corrupt entries leaves holes in pages: the core checks order only.
    assert by_object.gaps_possible and not by_text.gaps_possible


def test_from_url_refuses_a_scheme_the_plugin_does_not_declare() -> None:
    with pytest.raises(ConfigurationError, match="unsupported URL scheme 'http'"):
        RedisEventStore.from_url("http://127.0.0.1:6379/0")


def test_errors_name_the_backend_once() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0?connect_timeout=0.5&retries=0"
    store = eventstore.open_store(url)
    with pytest.raises(BackendUnavailableError) as caught:
        run(store.open())
    assert caught.value.backend == "redis"
    assert str(caught.value).startswith("redis: open failed (redis://127.0.0.1:")


def test_password_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://admin:{SECRET}@127.0.0.1:{free_port()}/0?connect_timeout=0.5&retries=0"
    store = eventstore.open_store(url)
    assert SECRET not in repr(store) and SECRET not in store.describe()
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendUnavailableError) as caught:
        run(store.open())
    error = caught.value
    shown = [str(error), repr(error), caplog.text]
    cause = error.__cause__
    while cause is not None:
        shown.append(str(cause))
        cause = cause.__cause__
    assert all(SECRET not in text for text in shown)
    with pytest.raises(ConfigurationError) as bad:
        eventstore.open_store(url + "&unknown=1")
    assert SECRET not in str(bad.value)
