"""The ``Host`` check that keeps a loopback server out of reach of other web sites.

With no authentication of its own, the app relies on being reachable only from
this machine. DNS rebinding defeats that: a page on ``evil.example`` rebinds its
name to 127.0.0.1 and its scripts read the API as same-origin. Such requests still
carry ``Host: evil.example``, so refusing unknown host names closes the hole.

The header is read strictly, not as a URL authority: a host name of RFC 1123
labels, a dotted IPv4 address or a bracketed IPv6 address, then an optional
``:port``. Anything else (``evil.com@localhost``, ``localhost#@evil.com``, a path,
a user name, spaces) is refused before any comparison, and the name is then
compared exactly with the allowed ones. Starlette's ``TrustedHostMiddleware``
would not do: it splits ``[::1]:8000`` at the first colon and so cannot allow an
IPv6 loopback.
"""

from __future__ import annotations

__all__ = ["LOOPBACK_HOSTS", "HostCheck", "host_name", "hosts_for_bind", "normalize_hosts"]

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import ConfigurationError
from ._request_id import request_id_of

#: The names a browser on this machine uses for a server bound to loopback.
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")

_WILDCARD_BINDS: Final = frozenset({"", "0.0.0.0", "::", "[::]"})

# RFC 1123: letters, digits and hyphens, 1..63 per label, no hyphen at either end.
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT: Final = re.compile(r"[0-9]{1,5}")
_MAX_NAME: Final = 253


def _dns_name(text: str) -> str | None:
    """``text`` as a lowercase DNS name of RFC 1123 labels, else ``None``.

    One trailing dot (the fully qualified form of the same name) is dropped. A name
    whose last label is numeric must be a dotted IPv4 address, as browsers read it.
    """
    name = text.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > _MAX_NAME or not name.isascii():
        return None
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            return None
    return name


def _ipv6(text: str) -> str | None:
    """The canonical (compressed) form of an IPv6 address without brackets, else ``None``."""
    if not text.isascii() or "%" in text:  # no zone ids: never in a Host header
        return None
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        return None


def host_name(header: str) -> str | None:
    """The host name of a ``Host`` header value, canonical, or ``None`` if malformed.

    Accepted: ``name``, ``1.2.3.4`` or ``[ipv6]``, each optionally followed by
    ``:port`` (1 to 5 digits, at most 65535). Names are lowercased, IPv6 addresses
    compressed (``[0:0::1]`` is ``::1``), and no other character is allowed.
    """
    if header.startswith("["):
        end = header.find("]")
        if end == -1:
            return None
        name, rest = _ipv6(header[1:end]), header[end + 1 :]
    else:
        text, colon, port = header.partition(":")
        name, rest = _dns_name(text), f"{colon}{port}"
    if name is None:
        return None
    if rest:
        port_text = rest[1:]
        if rest[0] != ":" or not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            return None
    return name


def _allowed_name(entry: str) -> str | None:
    """An ``allowed_hosts`` entry in the form :func:`host_name` gives, else ``None``."""
    if entry == "*":
        return entry
    if entry.startswith("*."):
        suffix = _dns_name(entry[2:])
        return None if suffix is None or suffix[-1].isdigit() else f"*.{suffix}"
    if entry.startswith("[") and entry.endswith("]"):
        return _ipv6(entry[1:-1])
    return _ipv6(entry) if ":" in entry else _dns_name(entry)


def hosts_for_bind(bind: str) -> tuple[str, ...]:
    """The default allowed host names for a server bound to ``bind``.

    Loopback names always; the bound address itself when it is a specific one;
    any name (``*``) when it is a wildcard address, since the operator chose to
    take requests for whatever names point at the machine.
    """
    bind = bind.strip().lower()
    if bind in _WILDCARD_BINDS:
        return ("*",)
    name = bind.strip("[]")
    return LOOPBACK_HOSTS if name in LOOPBACK_HOSTS else (*LOOPBACK_HOSTS, name)


def normalize_hosts(allowed: Iterable[str]) -> tuple[str, ...]:
    """``allowed`` in canonical form (lowercase, IPv6 unbracketed and compressed).

    Raises :class:`ConfigurationError` (a ``ValueError``) if it is a string, is
    empty, or holds an entry that is neither ``*``, a ``*.example.com`` pattern, a
    host name of RFC 1123 labels, an IPv4 address nor an IPv6 address.
    """
    if isinstance(allowed, str):
        raise ConfigurationError("allowed_hosts must be a sequence of host names, not one string")
    names = []
    for entry in allowed:
        name = _allowed_name(entry.strip()) if isinstance(entry, str) else None
        if name is None:
            raise ConfigurationError(
                f"allowed_hosts: {entry!r} is not a host name (letters, digits and "
                "hyphens in dot-separated labels), an IP address, a '*.example.com' "
                "pattern or '*'"
            )
        names.append(name)
    if not names:
        raise ConfigurationError("allowed_hosts must list at least one host name")
    return tuple(names)


def _shown(header: str) -> str:
    return repr(header) if len(header) <= 100 else f"{header[:100]!r}..."


class HostCheck:
    """ASGI middleware answering 400 to HTTP requests for a host name not allowed.

    ``allowed`` holds exact names (``example.com``, ``::1``), suffix patterns
    (``*.example.com``) or ``*`` for any.
    """

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self._app = app
        names = normalize_hosts(allowed)
        self._any = "*" in names
        self._exact = frozenset(n for n in names if not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))

    def allows(self, header: str) -> bool:
        """True if a request with this ``Host`` header may be served."""
        if self._any:
            return True
        name = host_name(header)
        if name is None:
            return False
        return name in self._exact or (":" not in name and name.endswith(self._suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._any:
            await self._app(scope, receive, send)
            return
        hosts = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
        # Two Host headers are malformed (RFC 9112), whatever they say.
        host = hosts[0] if len(hosts) == 1 else ""
        if self.allows(host):
            await self._app(scope, receive, send)
            return
        shown = _shown(host) if len(hosts) <= 1 else f"{len(hosts)} Host headers"
        body = json.dumps(
            {
                "error": f"host {shown} is not allowed; see allowed_hosts / --allow-host",
                "request_id": request_id_of(scope),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
