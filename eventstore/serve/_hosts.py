"""The ``Host`` check that keeps a loopback server out of reach of other web sites.

With no authentication of its own, the app relies on being reachable only from
this machine. DNS rebinding defeats that: a page on ``evil.example`` rebinds its
name to 127.0.0.1 and its scripts read the API as same-origin. Such requests still
carry ``Host: evil.example``, so refusing unknown host names closes the hole.

Starlette's ``TrustedHostMiddleware`` would do, but it splits ``[::1]:8000`` at the
first colon and so cannot allow an IPv6 loopback; this one parses the header as a
URL authority.
"""

from __future__ import annotations

__all__ = ["LOOPBACK_HOSTS", "HostCheck", "hosts_for_bind", "normalize_hosts"]

import json
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

#: The names a browser on this machine uses for a server bound to loopback.
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")

_WILDCARD_BINDS: Final = frozenset({"", "0.0.0.0", "::", "[::]"})


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
    """``allowed`` lowercased and unbracketed; ValueError if it is empty or a string."""
    if isinstance(allowed, str):
        raise ValueError("allowed_hosts must be a sequence of host names, not one string")
    names = tuple(name.strip().lower().strip("[]") for name in allowed)
    if not names or any(not name for name in names):
        raise ValueError("allowed_hosts must list at least one non-empty host name")
    return names


def _host_name(header: str) -> str | None:
    try:
        name = urlsplit(f"//{header}").hostname
    except ValueError:  # a malformed port or bracket
        return None
    return name  # lowercased by urlsplit


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
        name = _host_name(header)
        if name is None:
            return False
        return name in self._exact or name.endswith(self._suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._any:
            await self._app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.allows(host):
            await self._app(scope, receive, send)
            return
        body = json.dumps(
            {"error": f"host {host!r} is not allowed; see allowed_hosts / --allow-host"}
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
