"""Plugin discovery, open_store and URL option handling (CONTRACT §3)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import eventstore as es
import eventstore.backend as es_backend
from eventstore.memory import MemoryEventStore


def _plugin(*specs: es_backend.BackendSpec) -> types.SimpleNamespace:
    @es_backend.hookimpl
    def eventstore_register_backends() -> list[es_backend.BackendSpec]:
        return list(specs)

    return types.SimpleNamespace(eventstore_register_backends=eventstore_register_backends)


def test_memory_is_discovered_through_the_entry_point_group() -> None:
    registry = es_backend.Registry()
    entry = registry.backends["memory"]
    assert entry.plugin == "memory"
    assert entry.distribution == "eventstore-core"
    assert entry.spec.schemes == ("memory",)
    assert es.Capability.LIVE_SUBSCRIBE in entry.spec.capabilities


def test_open_store_picks_backend_by_scheme_and_returns_unopened_store() -> None:
    store = es.open_store("memory://")
    assert isinstance(store, MemoryEventStore)
    assert not store.is_open


def test_open_store_reads_eventstore_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSTORE_URL", "memory://?max_event_bytes=4096")
    store = es.open_store()
    assert isinstance(store, MemoryEventStore)
    assert store.max_event_bytes == 4096


def test_open_store_without_url_or_env_uses_embedded_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EVENTSTORE_URL", raising=False)
    assert isinstance(es.open_store(), es.EventStore)


def test_unknown_scheme_lists_installed_backends_and_names_the_package() -> None:
    registry = es_backend.Registry(load_entry_points=False)
    registry.register(
        _plugin(es_backend.BackendSpec("memory", ("memory",), MemoryEventStore.from_url)), name="m"
    )
    with pytest.raises(es.ConfigurationError) as info:
        registry.open_store("redis://user:hunter2@db.example:6379/0")
    message = str(info.value)
    assert "memory://" in message
    assert "eventstore-redis" in message
    assert "hunter2" not in message
    with pytest.raises(es.ConfigurationError, match="no installed backend serves nope://"):
        registry.open_store("nope://x")


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("memory://?bogus=1", {}, "unknown option 'bogus'"),
        ("memory://?max_event_bytes=abc", {}, "option 'max_event_bytes'"),
        ("memory://?max_event_bytes=0", {}, "greater than or equal to 1"),
        ("memory://", {"colour": "red"}, "unknown option 'colour'"),
        ("memory://?max_event_bytes=1&max_event_bytes=2", {}, "given twice"),
        ("not a url", {}, "scheme://"),
    ],
)
def test_bad_options_raise_configuration_error(
    url: str, options: dict[str, object], expected: str
) -> None:
    with pytest.raises(es.ConfigurationError, match=expected):
        es.open_store(url, **options)


def test_keyword_options_override_url_options() -> None:
    store = es.open_store("memory://?max_event_bytes=2048", max_event_bytes=4096)
    assert store.max_event_bytes == 4096


def test_failing_plugin_does_not_break_others_and_is_reported() -> None:
    registry = es_backend.Registry(load_entry_points=False)
    registry.register(
        _plugin(es_backend.BackendSpec("memory", ("memory",), MemoryEventStore.from_url)), name="m"
    )

    @es_backend.hookimpl
    def eventstore_register_backends() -> list[es_backend.BackendSpec]:
        raise RuntimeError("driver missing")

    broken = types.SimpleNamespace(eventstore_register_backends=eventstore_register_backends)
    with pytest.raises(es.ConfigurationError, match="driver missing"):
        registry.register(broken, name="broken", distribution="eventstore-redis")
    assert "broken" in registry.failures
    assert registry.failures["broken"].distribution == "eventstore-redis"
    assert isinstance(registry.open_store("memory://"), MemoryEventStore)
    with pytest.raises(
        es.ConfigurationError, match="'broken' from eventstore-redis failed to load"
    ):
        registry.open_store("redis://localhost")


def test_failed_third_party_plugin_is_named_for_an_unknown_scheme() -> None:
    registry = es_backend.Registry(load_entry_points=False)

    @es_backend.hookimpl
    def eventstore_register_backends() -> list[es_backend.BackendSpec]:
        raise ModuleNotFoundError("No module named 'mydriver'")

    broken = types.SimpleNamespace(eventstore_register_backends=eventstore_register_backends)
    with pytest.raises(es.ConfigurationError):
        registry.register(broken, name="mylite", distribution="eventstore-mylite")
    with pytest.raises(es.ConfigurationError) as caught:
        registry.open_store("mylite:///tmp/x.db")
    assert "'mylite' from eventstore-mylite" in str(caught.value)
    assert "No module named 'mydriver'" in str(caught.value)


def test_factory_that_fails_to_import_names_the_backend() -> None:
    registry = es_backend.Registry(load_entry_points=False)
    registry.register(
        _plugin(es_backend.BackendSpec("ghost", ("ghost",), "no_such_module_xyz:Store.from_url")),
        name="ghost",
        distribution="eventstore-ghost",
    )
    with pytest.raises(
        es.ConfigurationError, match=r"'ghost' could not be loaded.*eventstore-ghost"
    ):
        registry.open_store("ghost://")


def test_taken_scheme_is_not_silently_clobbered() -> None:
    registry = es_backend.Registry(load_entry_points=False)
    registry.register(
        _plugin(es_backend.BackendSpec("memory", ("memory",), MemoryEventStore.from_url)), name="a"
    )
    with pytest.raises(es.ConfigurationError, match="already"):
        registry.register(
            _plugin(es_backend.BackendSpec("other", ("memory",), MemoryEventStore.from_url)),
            name="b",
        )
    registry.register(
        _plugin(es_backend.BackendSpec("memory", ("memory",), MemoryEventStore.from_url)),
        name="c",
        replace=True,
    )
    assert registry.backends["memory"].plugin == "c"


def test_registry_views_are_read_only() -> None:
    registry = es_backend.Registry()
    with pytest.raises(TypeError):
        registry.backends["x"] = registry.backends["memory"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "Bad Name", "schemes": ("x",)}, "name must match"),
        ({"name": "x", "schemes": ()}, "schemes must be"),
        ({"name": "x", "schemes": ("HTTP",)}, "schemes must be"),
        ({"name": "x", "schemes": ("x",), "factory": "not a path"}, "module:attribute"),
        ({"name": "x", "schemes": ("x",), "capabilities": {"teleport"}}, "teleport"),
    ],
)
def test_backend_spec_is_validated_at_registration(
    kwargs: dict[str, object], expected: str
) -> None:
    kwargs.setdefault("factory", "m:f")
    with pytest.raises(es.ConfigurationError, match=expected):
        es_backend.BackendSpec(**kwargs)  # type: ignore[arg-type]


def test_hook_returning_wrong_type_is_a_clear_error() -> None:
    registry = es_backend.Registry(load_entry_points=False)

    @es_backend.hookimpl
    def eventstore_register_backends() -> list[object]:
        return ["memory"]

    with pytest.raises(es.ConfigurationError, match="expected BackendSpec"):
        registry.register(
            types.SimpleNamespace(eventstore_register_backends=eventstore_register_backends),
            name="w",
        )


def test_asking_for_memory_imports_no_driver() -> None:
    code = (
        "import sys, asyncio, eventstore\n"
        "async def main():\n"
        "    async with eventstore.open_store('memory://') as s:\n"
        "        await s.last_seq(eventstore.RunId.new())\n"
        "asyncio.run(main())\n"
        "heavy = [m for m in ('redis', 'sqlalchemy', 'asyncpg', 'aiosqlite', 'pytest', 'hypothesis')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_redaction() -> None:
    assert es_backend.redact_url("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert es_backend.redact_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert es_backend.redact_url("redis://h:1/0") == "redis://h:1/0"
    assert es_backend.redact_url("redis://user@h") == "redis://user@h"
    url = es_backend.StoreURL.parse("postgresql+asyncpg://u:topsecret@h:5432/db?x=1")
    assert "topsecret" not in repr(url) and "topsecret" not in str(url)
    assert url.password == "topsecret" and url.port == 5432 and url.query == {"x": "1"}
    assert "topsecret" not in es_backend.redact_text(
        "failed to connect to postgresql://u:topsecret@h/db: refused"
    )


def test_redaction_of_passwords_containing_at_signs() -> None:
    assert es_backend.redact_url("redis://u:p@ss@host:6379/0") == "redis://u:***@host:6379/0"
    assert "ss@host" not in es_backend.redact_text("error at redis://u:p@ss@host:6379/0: refused")
    url = es_backend.StoreURL.parse("redis://u:p@ss@host:6379/0")
    assert url.host == "host" and "p@ss" not in str(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Unencoded "/" and " " end urlsplit's userinfo early; the mask does not stop there.
        ("postgresql://u:s3cr/et@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:s3cr et@h:5999/db", "postgresql://u:***@h:5999/db"),
        ("postgresql://u:s3cr?et@h/db", "postgresql://u:***@h/db"),
        # Options that carry secrets (libpq, redis-py) are masked, others shown.
        (
            "postgresql://u@h/db?table_prefix=a_&password=s3cret",
            "postgresql://u@h/db?table_prefix=a_&password=***",
        ),
        (
            "redis://h/0?sslpassword=s3cret&db=1&api_key=s3cret#x",
            "redis://h/0?sslpassword=***&db=1&api_key=***#x",
        ),
        ("sqlite:///x.db?synchronous=off", "sqlite:///x.db?synchronous=off"),
        ("postgresql://u:p@s3cr/et@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:s3cr#et@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_redaction_of_unencoded_passwords_and_secret_options(url: str, shown: str) -> None:
    assert es_backend.redact_url(url) == shown
    if " " not in url:  # in free text a URL ends at whitespace
        assert "s3cr" not in es_backend.redact_text(f"connecting to {url} failed")


@pytest.mark.parametrize(
    "url",
    [
        # An "@" in a query value or a file name is not a credential.
        "redis://localhost:6379/0?client_name=worker@host1",
        "redis://localhost:6379?client_name=worker@host1",
        "postgresql://host:5432/db?application_name=svc@prod",
        "sqlite:///C:/data/x@y.db",
        "redis://[::1]:6379/0",
    ],
)
def test_redaction_leaves_urls_without_credentials_alone(url: str) -> None:
    assert es_backend.redact_url(url) == url
    assert es_backend.redact_text(f"opening {url} failed") == f"opening {url} failed"


def test_store_url_errors_never_show_the_password() -> None:
    for url in (
        "postgresql+asyncpg://u:s3cr/et@h:x/db",
        "redis://u:s3cret@h/0?password=s3cret&a=1&a=2",
    ):
        with pytest.raises(es.ConfigurationError) as caught:
            es_backend.StoreURL.parse(url)
        assert "s3cr" not in str(caught.value)
    with pytest.raises(es.ConfigurationError) as caught:
        es.open_store("memory://?password=s3cret")
    assert "s3cret" not in str(caught.value) and "password" in str(caught.value)


def test_broken_entry_point_plugins_are_reported_and_the_rest_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed plugins whose hook raises, or which claim a scheme another backend
    # serves, must not take the registry (and so every command) down with them.
    (tmp_path / "badplug_raises.py").write_text(
        "import eventstore\n"
        "@eventstore.backend.hookimpl\n"
        "def eventstore_register_backends():\n"
        "    raise RuntimeError('hook exploded')\n"
    )
    (tmp_path / "badplug_dup.py").write_text(
        "import eventstore\n"
        "from eventstore.memory import MemoryEventStore\n"
        "@eventstore.backend.hookimpl\n"
        "def eventstore_register_backends():\n"
        "    return [eventstore.backend.BackendSpec('dupmem', ('dupmem', 'memory'), MemoryEventStore.from_url)]\n"
    )
    info = tmp_path / "badplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[eventstore]\nbadraises = badplug_raises\nbaddup = badplug_dup\n"
    )
    # Appended, so the workspace's own plugins (memory://) are found first.
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    registry = es_backend.Registry()
    assert isinstance(registry.open_store("memory://"), MemoryEventStore)
    assert "hook exploded" in registry.failures["badraises"].error
    assert "already served" in registry.failures["baddup"].error
    assert registry.failures["baddup"].distribution == "badplug"
    # Nothing of a refused plugin is registered, not even its free scheme.
    with pytest.raises(es.ConfigurationError, match="no installed backend serves dupmem://"):
        registry.open_store("dupmem://")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # libpq-style DSNs and settings that drivers quote in their messages.
        ("host=db user=app password=hunter2 dbname=x", "host=db user=app password=*** dbname=x"),
        ("{'password': 'hunter2', 'user': 'a'}", "{'password': '***', 'user': 'a'}"),
        ('{"api_key": "k-123"}', '{"api_key": "***"}'),
        ("DB_PASSWORD=s3cr3t failed", "DB_PASSWORD=*** failed"),
        ("pwd: abc rejected", "pwd: *** rejected"),
        ("token=abc&x=1", "token=***&x=1"),
        ("password='my secret pass' rejected", "password='***' rejected"),
        ("secret_key=abc client_secret=def", "secret_key=*** client_secret=***"),
        # Words that only mention a secret are left alone.
        ('password authentication failed for user "app"', None),
        ("the token bucket is empty", None),
        # Token counts are usage figures, not credentials.
        ("max_tokens: 4096, input_tokens=12", None),
    ],
)
def test_redaction_of_secrets_written_outside_urls(text: str, shown: str | None) -> None:
    assert es_backend.redact_text(text) == (text if shown is None else shown)


def test_a_plugin_claiming_one_scheme_for_two_of_its_backends_is_refused() -> None:
    registry = es_backend.Registry(load_entry_points=False)

    @es_backend.hookimpl
    def eventstore_register_backends() -> list[es_backend.BackendSpec]:
        return [
            es_backend.BackendSpec("one", ("dup",), MemoryEventStore.from_url),
            es_backend.BackendSpec("two", ("dup",), MemoryEventStore.from_url),
        ]

    plugin = types.SimpleNamespace(eventstore_register_backends=eventstore_register_backends)
    with pytest.raises(es.ConfigurationError, match="scheme 'dup' for two backends"):
        registry.register(plugin, name="dupper")
    assert "dupper" in registry.failures
    with pytest.raises(es.ConfigurationError, match="no installed backend serves dup://"):
        registry.open_store("dup://")


# ------------------------------------------------------------------ URLs that are not text


@pytest.mark.parametrize(("url", "kind"), [(42, "int"), (b"memory://", "bytes"), (1.5, "float")])
def test_a_url_that_is_not_a_str_is_a_configuration_error(url: object, kind: str) -> None:
    with pytest.raises(es.ConfigurationError, match=f"store URL must be a str, got {kind}$"):
        es.open_store(url)  # type: ignore[arg-type]
    with pytest.raises(es.ConfigurationError, match=f"must be a str, got {kind}"):
        es_backend.StoreURL.parse(url)  # type: ignore[arg-type]
    with pytest.raises(es.ConfigurationError, match=f"must be a str, got {kind}"):
        es_backend.Registry().backend_for(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "where"),
    [
        (" memory://", "leading"),
        ("memory:// ", "trailing"),
        ("\tmemory://\n", "leading and trailing"),
        ("sqlite+aiosqlite:////tmp/events.db\n", "trailing"),
        ("memory://\u00a0", "trailing"),  # a no-break space pasted from a web page
    ],
)
def test_leading_or_trailing_whitespace_is_refused_at_parse_time_not_stripped(
    url: str, where: str
) -> None:
    for parse in (es_backend.StoreURL.parse, es.open_store):
        with pytest.raises(es.ConfigurationError, match=f"has {where} whitespace"):
            parse(url)


def test_whitespace_in_eventstore_url_is_reported_as_coming_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVENTSTORE_URL", "redis://u:s3cret@cache:6379/0 ")
    expected = r"^EVENTSTORE_URL: .*trailing whitespace"
    with pytest.raises(es.ConfigurationError, match=expected) as caught:
        es.open_store()
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://lo\tcal:6379/0", r"'\t' (U+0009)"),
        ("postgresql://u@h/d\nb", r"'\n' (U+000A)"),
        ("memory://?x=\x00", r"'\x00' (U+0000)"),
        ("redis://h/0?prefix=a\u200bb", "ZERO WIDTH SPACE"),
        ("sqlite:///tmp/a\u00a0b.db", "NO-BREAK SPACE"),
        ("redis://h/0?prefix=a\x7f", "U+007F"),
    ],
)
def test_control_and_invisible_characters_anywhere_are_refused(url: str, shown: str) -> None:
    with pytest.raises(es.ConfigurationError, match="contains the character") as caught:
        es_backend.StoreURL.parse(url)
    assert shown in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["redis://cache host:6379/0", "redis://u:pass word@cache:6379/0", "redis://cache: 6379/0"],
)
def test_a_space_before_the_path_is_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(es.ConfigurationError, match="space before its path") as caught:
        es_backend.StoreURL.parse(url)
    assert "pass word" not in str(caught.value)


def test_a_space_in_a_path_or_option_value_is_allowed() -> None:
    # A file name may hold a space (written as is or as %20); only the edges are refused.
    parsed = es_backend.StoreURL.parse("sqlite:///tmp/Application Support/events.db?a=b c")
    assert parsed.path == "/tmp/Application Support/events.db"
    assert es_backend.StoreURL.parse("sqlite:///tmp/a%20b.db").path == "/tmp/a b.db"


def test_a_secret_option_value_with_whitespace_is_masked_whole() -> None:
    url = "redis://h/0?password=s3 cr\tet&db=1"
    assert es_backend.redact_url(url) == "redis://h/0?password=***&db=1"
    with pytest.raises(es.ConfigurationError) as caught:
        es_backend.StoreURL.parse(url)
    assert "cr" not in str(caught.value) and "et&" not in str(caught.value)
