"""Options of ``redis://`` stores, the URL checks they need, and the key layout.

:func:`resolve` turns a store URL and keyword options into a :class:`RedisTarget`:
the validated options plus what the scheme says (cluster, TLS), checked together
once, before any client exists.
"""

from __future__ import annotations

__all__ = ["KeyLayout", "Layout", "RedisOptions", "RedisTarget", "resolve"]

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from eventstore import ConfigurationError, RunId, SessionId
from eventstore.backend import StoreOptions, StoreURL, parse_options

from .plugin import BACKEND, SCHEMES

#: ``native`` is this backend's own layout; ``legacy`` reads runs written by the Rust
#: runtime's (behest) Redis store, read-only.
Layout = Literal["native", "legacy"]


class RedisOptions(StoreOptions):
    """Options of Redis stores, from the URL query or keyword arguments.

    Redis-py's own URL query options are not accepted (the query is ours); the
    database number comes from the URL path (``redis://host/3``) or ``db``.
    """

    prefix: str = Field(
        default="eventstore:",
        min_length=1,
        description="Prefix of every key the store uses; must not contain '{' or '}'.",
    )
    db: int | None = Field(default=None, ge=0, description="Database number (not in cluster).")
    max_events_per_run: int | None = Field(
        default=None,
        ge=1,
        description="Retention: keep at most this many events per run. Off by default.",
    )
    skip_corrupt: bool = Field(
        default=False,
        description="Skip undecodable entries with a warning instead of raising.",
    )
    layout: Layout = Field(
        default="native", description="'legacy' reads runs of behest's Redis store, read-only."
    )
    legacy_prefix: str = Field(default="run", description="Key prefix of the legacy layout.")
    socket_timeout: float = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds to wait for a reply to a non-blocking command.",
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, allow_inf_nan=False, description="Seconds to connect."
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Retries of a command after a connection error or timeout.",
    )
    block_ms: int = Field(
        default=5_000,
        ge=1,
        le=600_000,
        description="How long one XREAD BLOCK of a live subscription waits, in ms.",
    )
    client_name: str = Field(
        default="eventstore",
        pattern=r"^[!-~]+$",
        description="CLIENT SETNAME of the store's connections (shown by CLIENT LIST).",
    )
    max_connections: int = Field(
        default=256, ge=1, description="Connection pool size for commands (per node)."
    )
    tls_ca_file: str | None = Field(
        default=None,
        description="rediss:// only: CA bundle (PEM) to verify the server with, "
        "instead of the system's.",
    )
    tls_cert_file: str | None = Field(
        default=None, description="rediss:// only: client certificate (PEM), for mutual TLS."
    )
    tls_key_file: str | None = Field(
        default=None, description="rediss:// only: the client certificate's private key (PEM)."
    )
    tls_check_hostname: bool = Field(
        default=True, description="rediss:// only: check the server certificate's host name."
    )
    allow_eviction: bool = Field(
        default=False,
        description="Open even when the server's maxmemory-policy may evict the store's "
        "keys (allkeys-lru and the other allkeys-* policies), which loses acknowledged "
        "events. Off by default: such a server is refused at open; the fix is "
        "maxmemory-policy noeviction.",
    )

    @field_validator("prefix", "legacy_prefix")
    @classmethod
    def _no_hash_tag(cls, value: str) -> str:
        # A brace in the prefix would become the hash tag and put every run of the
        # store into one cluster slot.
        if "{" in value or "}" in value:
            raise ValueError("must not contain '{' or '}'")
        return value


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Key names of the native layout.

    Every key of a run carries the run id as its hash tag, so a run lives in one
    cluster slot and the append script may touch all of them atomically::

        <prefix>{<run_id>}:log      stream, entry id <seq>-0, field "e" = envelope JSON
        <prefix>{<run_id>}:ids      hash, event_id -> seq (idempotency)
        <prefix>{<run_id>}:meta     hash: last, session, first_at, last_at (RFC 3339, ns kept)
        <prefix>runs                sorted set of run ids (score 0, ordered by member)
        <prefix>session:<session>   sorted set of the session's run ids
    """

    prefix: str

    def log(self, run_id: RunId) -> str:
        """The run's stream."""
        return f"{self.prefix}{{{run_id}}}:log"

    def ids(self, run_id: RunId) -> str:
        """The run's event id -> seq hash."""
        return f"{self.prefix}{{{run_id}}}:ids"

    def meta(self, run_id: RunId) -> str:
        """The run's metadata hash."""
        return f"{self.prefix}{{{run_id}}}:meta"

    @property
    def runs(self) -> str:
        """The index of every run."""
        return f"{self.prefix}runs"

    @property
    def session_prefix(self) -> str:
        """What a session index key starts with (the script appends the session id)."""
        return f"{self.prefix}session:"

    def session(self, session_id: SessionId) -> str:
        """The index of one session's runs."""
        return f"{self.session_prefix}{session_id}"


_TLS_FILES: Final = ("tls_ca_file", "tls_cert_file", "tls_key_file")
_DATABASE_PATH: Final = re.compile(r"/(\d+)/?")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A Redis store's URL and validated options, and what its scheme implies."""

    url: StoreURL
    options: RedisOptions
    #: ``redis+cluster://`` or ``rediss+cluster://``: redis-py's cluster client.
    cluster: bool
    #: ``rediss://`` or ``rediss+cluster://``: TLS, the server certificate verified.
    tls: bool

    @property
    def driver_url(self) -> str:
        """The URL for redis-py: without our query, and the cluster scheme made plain."""
        bare = self.url.without_query
        if self.cluster:
            return ("rediss" if self.tls else "redis") + bare[len(self.url.scheme) :]
        return bare


def resolve(url: str | StoreURL, options: Mapping[str, Any]) -> RedisTarget:
    """Parse ``url`` (if it is not parsed yet) and ``options`` into a checked target.

    Every mistake is a :class:`ConfigurationError` naming the redacted URL.
    """
    parsed = StoreURL.parse(url)
    if parsed.scheme not in SCHEMES:
        raise ConfigurationError(
            f"redis store: unsupported URL scheme {parsed.scheme!r} in {parsed.redacted!r}"
            f" (use one of {', '.join(sorted(SCHEMES))})"
        )
    opts = parse_options(RedisOptions, parsed, options, backend=BACKEND)
    cluster = parsed.scheme.endswith("+cluster")
    tls = parsed.scheme.startswith("rediss")
    if opts.db is not None and cluster:
        raise ConfigurationError(
            f"redis store {parsed.redacted!r}: option 'db' is not available in a cluster"
        )
    opts = _with_path_database(parsed, opts, cluster=cluster)
    tls_set = [name for name in _TLS_FILES if getattr(opts, name) is not None]
    if tls_set and not tls:
        raise ConfigurationError(
            f"redis store {parsed.redacted!r}: {', '.join(tls_set)} need a rediss:// URL"
        )
    return RedisTarget(url=parsed, options=opts, cluster=cluster, tls=tls)


def _with_path_database(url: StoreURL, opts: RedisOptions, *, cluster: bool) -> RedisOptions:
    """``opts`` with the database number of the URL path (``redis://host/3``) as ``db``.

    redis-py would let the path silently override ``db`` and ignore a path that is
    not a number; here either is a ConfigurationError.
    """
    if url.scheme == "unix" or url.path in ("", "/"):  # a unix URL's path is the socket
        return opts
    match = _DATABASE_PATH.fullmatch(url.path)
    if match is None:
        raise ConfigurationError(
            f"redis store {url.redacted!r}: the URL path must be a database number "
            f"(redis://host:6379/0), not {url.path!r}"
        )
    number = int(match.group(1))
    if cluster:
        if number != 0:
            raise ConfigurationError(f"redis store {url.redacted!r}: a cluster has only database 0")
        return opts
    if opts.db is not None and opts.db != number:
        raise ConfigurationError(
            f"redis store {url.redacted!r}: database {number} in the URL path and option "
            f"db={opts.db} disagree"
        )
    return opts.model_copy(update={"db": number})
