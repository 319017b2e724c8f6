"""A request id for every HTTP request: in the ``X-Request-ID`` header and the log.

Clients get generic messages for the server's own faults; the detail goes to the
server log under the same id, so an operator can find what a user reports.
"""

from __future__ import annotations

__all__ = ["REQUEST_ID_HEADER", "RequestId", "request_id_of"]

import uuid
from typing import Any, Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The response header carrying the request's id.
REQUEST_ID_HEADER: Final = "X-Request-ID"
_STATE_KEY: Final = "request_id"


def request_id_of(scope: Scope) -> str:
    """The id :class:`RequestId` gave this request (one is made if it gave none)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    request_id = state.get(_STATE_KEY)
    if not isinstance(request_id, str):
        request_id = state[_STATE_KEY] = uuid.uuid4().hex
    return request_id


class RequestId:
    """ASGI middleware giving each HTTP request a fresh id, sent as ``X-Request-ID``.

    The id is made here, never taken from the request: a client must not be able
    to choose what the server's log lines are filed under.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        # A per-request copy: the server may share one state dict across requests.
        scope["state"] = dict(scope.get("state") or {})
        scope["state"].pop(_STATE_KEY, None)
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        await self._app(scope, receive, send_with_id)
