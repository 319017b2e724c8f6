"""Store URLs: parsing, redaction of credentials, and validation of query options.

A URL may carry a password; it must never reach a repr, a log line or an error
message. :class:`StoreURL` keeps the secret form private and shows the redacted one
everywhere else.
"""

from __future__ import annotations

__all__ = ["StoreOptions", "StoreURL", "parse_options", "redact_text", "redact_url"]

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._errors import ConfigurationError

# Greedy up to the LAST "@" before the path, as urlsplit reads it: a password may
# itself contain "@", and everything before that last one is userinfo.
_CREDENTIALS: Final = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<userinfo>[^/\s]*)@")
_MASK: Final = "***"


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match.group("userinfo").partition(":")
    if sep:
        return f"{match.group('scheme')}{user}:{_MASK}@"
    return match.group(0)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return _CREDENTIALS.sub(_mask_userinfo, url)


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(_mask_userinfo, text)


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. ``str()`` and ``repr()`` show it redacted.

    Use :attr:`secret` only to hand the URL to a driver.
    """

    scheme: str
    username: str | None
    password: str | None = field(repr=False)
    host: str | None
    port: int | None
    path: str
    query: Mapping[str, str]
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        """Parse ``url``; raise :class:`ConfigurationError` if it is not a URL."""
        if not isinstance(url, str) or "://" not in url:
            shown = redact_url(url) if isinstance(url, str) else type(url).__name__
            raise ConfigurationError(
                f"store URL must look like 'scheme://...', got {shown!r}"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"invalid store URL {redact_url(url)!r}: {exc}") from None
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in query:
                raise ConfigurationError(
                    f"option {key!r} given twice in store URL {redact_url(url)!r}"
                )
            query[key] = value
        return cls(
            scheme=parts.scheme.lower(),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            host=parts.hostname,
            port=port,
            path=unquote(parts.path),
            query=query,
            secret=url,
        )

    @property
    def redacted(self) -> str:
        """The URL as it may be shown: any password replaced by ``***``."""
        return redact_url(self.secret)

    @property
    def without_query(self) -> str:
        """The secret URL without its query string (options are consumed by us)."""
        return self.secret.split("?", 1)[0]

    def __str__(self) -> str:
        return self.redacted


class StoreOptions(BaseModel):
    """Options every backend accepts; backends subclass it with their own.

    Options come from the URL query (``?max_event_bytes=2048``) and from keyword
    arguments to :func:`eventstore.open_store`; unknown names and bad values raise
    :class:`ConfigurationError`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_event_bytes: int = Field(
        default=1 << 20, ge=1, description="Largest serialized event accepted, in bytes."
    )


_O = TypeVar("_O", bound=StoreOptions)


def parse_options(
    model: type[_O], url: StoreURL, overrides: Mapping[str, Any], *, backend: str
) -> _O:
    """Merge the URL's query options with keyword ``overrides`` and validate them.

    Keyword arguments win over the URL. Errors name the option and the backend and
    list the valid options; they show no value (a value may be a secret).
    """
    merged: dict[str, Any] = dict(url.query)
    merged.update(overrides)
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "options"
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown option {name!r}")
            else:
                problems.append(f"option {name!r}: {error['msg']}")
        valid = ", ".join(sorted(model.model_fields)) or "none"
        raise ConfigurationError(
            f"{backend} store {url.redacted!r}: {'; '.join(problems)} "
            f"(valid options: {valid})"
        ) from None
