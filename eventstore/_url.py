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
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._errors import ConfigurationError

# The userinfo runs to the LAST "@" (a password may itself contain "@", and
# urlsplit reads everything before the last one as userinfo). Unencoded "/", "?" or
# whitespace in a password would end the userinfo early for urlsplit, so the mask does
# not stop at them: a whole URL is masked up to its last "@", a URL inside free text
# up to the last "@" before whitespace. That can mask more than the password (an "@"
# in a query value), never less.
_URL_CREDENTIALS: Final = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<userinfo>.*)@", re.DOTALL)
_TEXT_CREDENTIALS: Final = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<userinfo>\S*)@")
# Query options whose value may be a secret (libpq's and redis-py's `password`,
# `sslpassword`, tokens, keys...): their values are masked wherever a URL is shown.
_SECRET_OPTION: Final = re.compile(
    r"(?P<name>[?&][^=&#\s]*(?:pass|pwd|secret|token|key|auth|cred)[^=&#\s]*=)[^&#\s]*",
    re.IGNORECASE,
)
_MASK: Final = "***"


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match.group("userinfo").partition(":")
    if sep:
        return f"{match.group('scheme')}{user}:{_MASK}@"
    return match.group(0)


def _mask_options(text: str) -> str:
    return _SECRET_OPTION.sub(lambda m: f"{m.group('name')}{_MASK}", text)


def redact_url(url: str) -> str:
    """``url`` with any password, and the value of any secret-looking option, as ``***``."""
    return _mask_options(_URL_CREDENTIALS.sub(_mask_userinfo, url, count=1))


def redact_text(text: str) -> str:
    """``text`` with the password (and secret options) of every URL in it as ``***``."""
    return _mask_options(_TEXT_CREDENTIALS.sub(_mask_userinfo, text))


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
            raise ConfigurationError(f"store URL must look like 'scheme://...', got {shown!r}")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            # urlsplit's message quotes what it took for the port, which may be a
            # piece of a password.
            raise ConfigurationError(
                f"invalid store URL {redact_url(url)!r}: its host or port cannot be read "
                "(percent-encode any '/', '?', '#' or '@' in the user name or password)"
            ) from None
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
        shown = redact_url(self.secret)
        # Belt and braces: if the mask missed the userinfo, the parsed password, as
        # written or encoded, is replaced wherever it appears.
        if self.password and f":{_MASK}@" not in shown:
            for form in {self.password, quote(self.password, safe="")}:
                shown = shown.replace(form, _MASK)
        return shown

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
            f"{backend} store {url.redacted!r}: {'; '.join(problems)} (valid options: {valid})"
        ) from None
