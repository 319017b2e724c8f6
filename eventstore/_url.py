"""Store URLs: parsing, redaction of credentials, and validation of query options.

A URL may carry a password; it must never reach a repr, a log line or an error
message. :class:`StoreURL` keeps the secret form private and shows the redacted one
everywhere else.
"""

from __future__ import annotations

__all__ = [
    "StoreOptions",
    "StoreURL",
    "check_url_text",
    "parse_options",
    "redact_text",
    "redact_url",
]

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._errors import ConfigurationError

_SCHEME: Final = re.compile(r"[a-zA-Z][\w+.-]*://")
# A scheme starts where a word starts (the look-behind): otherwise every character of
# a long run is tried as a start and scanned to the run's end, quadratic in its length.
_URL_IN_TEXT: Final = re.compile(r"(?<![\w+.-])[a-zA-Z][\w+.-]*://\S+")
# Query options whose value may be a secret (libpq's and redis-py's `password`,
# `sslpassword`, tokens, keys...): their values are masked wherever a URL is shown.
_SECRET_OPTION: Final = re.compile(
    r"(?P<name>[?&][^=&#\s]*(?:pass|pwd|secret|token|key|auth|cred)[^=&#\s]*=)[^&#\s]*",
    re.IGNORECASE,
)
# The same within one URL, where a value ends only at "&" or "#": a space or a
# control character in it (a mistake the parser reports) must not end the mask.
_SECRET_OPTION_IN_URL: Final = re.compile(
    r"(?P<name>[?&][^=&#]*(?:pass|pwd|secret|token|key|auth|cred)[^=&#]*=)[^&#]*",
    re.IGNORECASE,
)
# A secret written as `name=value`, `name: value` or `'name': 'value'` in free text,
# as drivers put DSNs and connection settings into their messages ("host=db
# password=..."). Only names that say they hold a secret ("max_tokens" does not); a
# quoted value is masked to its closing quote, an unquoted one to whitespace or a
# separator. The name may only start where a word starts (the look-behind), which
# keeps matching linear: a `\b` there let every dot of "a.a.a..." start a scan.
_SECRET_IN_TEXT: Final = re.compile(
    r"""(?P<name>(?P<q>['"]?)(?<![\w.-])[\w.-]*?"""
    r"""(?:password|passwd|pwd|secret|token(?!s)|api[_-]?key|access[_-]?key|credentials?)"""
    r"""(?:[_-]?key)?(?P=q)\s*[=:]\s*)"""
    r"""(?:(?P<vq>['"])(?P<quoted>[^'"]*)(?P=vq)|(?P<value>[^\s'",;&}]+))""",
    re.IGNORECASE,
)
_MASK: Final = "***"


def _character_name(character: str) -> str:
    name = unicodedata.name(character, "")
    code = f"U+{ord(character):04X}"
    return f"{character!r} ({code} {name})" if name else f"{character!r} ({code})"


def check_url_text(url: object) -> str:
    """``url`` if it is a str a store URL can be read from, else :class:`ConfigurationError`.

    Refused: anything but a ``str`` (bytes included); leading or trailing whitespace
    (a stray space or newline from an environment variable or a file is a mistake
    to report, not to strip silently); control and invisible formatting characters
    anywhere; whitespace other than a plain space anywhere; and any whitespace
    before the path (scheme, user name, password, host, port), where it is never
    part of a valid URL. A space in a path or query value may be written as is or
    percent-encoded (``%20``).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"store URL must be a str, got {type(url).__name__}")
    if url != url.strip():
        where = "leading" if url[:1].isspace() else "trailing"
        if url[:1].isspace() and url[-1:].isspace():
            where = "leading and trailing"
        raise ConfigurationError(
            f"store URL {redact_url(url)!r} has {where} whitespace; remove it where the "
            "URL comes from (an environment variable such as EVENTSTORE_URL, a file, "
            "a command line)"
        )
    for character in url:
        if character == " ":
            continue
        if character.isspace() or unicodedata.category(character) in ("Cc", "Cf"):
            raise ConfigurationError(
                f"store URL {redact_url(url)!r} contains the character "
                f"{_character_name(character)}; percent-encode it if it belongs there"
            )
    scheme = _SCHEME.match(url)
    head = url[: scheme.end() + _first_of(url[scheme.end() :], "/?#")] if scheme else ""
    if " " in head:
        raise ConfigurationError(
            f"store URL {redact_url(url)!r} contains a space before its path (in the "
            "scheme, user name, password, host or port); percent-encode a space in a "
            "user name or password as %20"
        )
    return url


def _first_of(text: str, characters: str) -> int:
    found = [i for i in (text.find(c) for c in characters) if i != -1]
    return min(found, default=len(text))


def _mask_credentials(url: str) -> str:
    """Mask the password of one URL, as urlsplit reads the userinfo and then some.

    The userinfo ends at the last "@" before the query (a password may contain "@",
    and an unencoded "/" too, which urlsplit would take for the path). A URL whose
    port cannot be read (an unencoded "?" or "#" in a password) is masked up to its
    last "@" at all. An "@" in a query value is not a credential and is left alone.
    """
    scheme = _SCHEME.match(url)
    if scheme is None:
        return url
    head, rest = url[: scheme.end()], url[scheme.end() :]
    authority_end = _first_of(rest, "/?#")
    if authority_end == 0:  # no authority at all (sqlite:///path)
        return url
    at = rest.rfind("@", 0, _first_of(rest, "?#"))
    if at == -1:
        _host, colon, port = rest[:authority_end].rpartition(":")
        if not colon or port.isdigit() or not port or "]" in port:
            return url
        at = rest.rfind("@")
        if at == -1:
            return url
    user, colon, _password = rest[:at].partition(":")
    if not colon:
        return url
    return f"{head}{user}:{_MASK}@{rest[at + 1 :]}"


def _mask_options(text: str, pattern: re.Pattern[str] = _SECRET_OPTION) -> str:
    return pattern.sub(lambda m: f"{m.group('name')}{_MASK}", text)


def _mask_assignment(match: re.Match[str]) -> str:
    quote = match.group("vq")
    masked = f"{quote}{_MASK}{quote}" if quote else _MASK
    return f"{match.group('name')}{masked}"


def _mask_assignments(text: str) -> str:
    return _SECRET_IN_TEXT.sub(_mask_assignment, text)


def redact_url(url: str) -> str:
    """``url`` with any password, and the value of any secret-looking option, as ``***``."""
    return _mask_options(_mask_credentials(url), _SECRET_OPTION_IN_URL)


def redact_text(text: str) -> str:
    """``text`` with the password (and secret options) of every URL in it as ``***``.

    Secrets outside URLs are masked too when written as ``password=...``,
    ``token: ...`` or ``'api_key': '...'`` (names that say they hold a secret), as
    driver messages quote connection settings. A URL in free text ends at
    whitespace: percent-encode a password's spaces.
    """
    masked = _URL_IN_TEXT.sub(lambda m: _mask_credentials(m.group(0)), text)
    return _mask_assignments(_mask_options(masked))


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
    def parse(cls, url: str | StoreURL) -> StoreURL:
        """Parse ``url``; raise :class:`ConfigurationError` if it is not a URL.

        A URL that is not a ``str``, or holds whitespace or control characters where
        they cannot belong, is refused as :func:`check_url_text` describes.

        A :class:`StoreURL` is returned as it is, so a factory may call this on
        whatever it was given (the registry hands it the URL parsed already).
        """
        if isinstance(url, StoreURL):
            return url
        check_url_text(url)
        if "://" not in url:
            raise ConfigurationError(
                f"store URL must look like 'scheme://...', got {redact_url(url)!r}"
            )
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
