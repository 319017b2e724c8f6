"""How store errors become HTTP statuses and JSON error bodies.

Every error response has the body ``{"error": "<message>", "request_id": "<id>"}``
and the same id in its ``X-Request-ID`` header. A caller's mistake (a malformed id,
a limit out of range) is a 4xx whose message is about the request. A fault of the
server or the store is a 5xx whose message is generic: store errors name the
backend and where it keeps its data (host, port, database, key prefix, file
path), which anonymous clients must not learn. The full message goes to the
server log, filed under the request id.
"""

from __future__ import annotations

__all__ = [
    "GENERIC_MESSAGES",
    "client_message",
    "error_body",
    "error_response",
    "log_failure",
    "status_for",
    "unexpected_error_response",
]

import logging
import re
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from .._errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptEventError,
    EventStoreError,
    HistoryUnavailableError,
    InvalidArgumentError,
    RunDeletedError,
    StoreClosedError,
    UnsupportedOperationError,
)
from .._url import redact_text
from ._request_id import REQUEST_ID_HEADER, request_id_of

logger = logging.getLogger("eventstore.serve")

_LINE_BREAKS: Final = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")

# Checked in order: subclasses before their bases.
_STATUSES: Final[tuple[tuple[type[Exception], int], ...]] = (
    (BackendUnavailableError, 503),
    (StoreClosedError, 503),
    (UnsupportedOperationError, 501),
    (HistoryUnavailableError, 410),
    (RunDeletedError, 410),
    (CorruptEventError, 500),
    (BackendError, 500),
    # A ValueError too, but a store that is misconfigured is the server's fault.
    (ConfigurationError, 500),
    # The caller's fault: a malformed id, a limit or seq out of range.
    (InvalidArgumentError, 400),
    (EventStoreError, 500),
)

#: What clients are told of a server-side failure, by status; the rest is logged.
GENERIC_MESSAGES: Final = {
    500: "internal server error",
    501: "the store does not offer this operation",
    503: "the store is unavailable",
}


def status_for(exc: BaseException) -> int:
    """The HTTP status that reports ``exc``: 4xx for bad input, 5xx for store faults."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def client_message(exc: BaseException, status: int) -> str:
    """What a client may read about ``exc``: generic for a 5xx, else the request's problem.

    A 4xx message is about the request (a parameter, a run id, a seq) and is kept,
    without the backend name the store's error boundary puts in front of it.
    """
    if status >= 500:
        return GENERIC_MESSAGES.get(status, GENERIC_MESSAGES[500])
    return redact_text(Exception.__str__(exc)) or type(exc).__name__


def _detail(exc: BaseException) -> str:
    detail = f"{type(exc).__name__}: {redact_text(str(exc))}"
    cause = exc.__cause__
    if cause is not None:
        detail += f" (caused by {type(cause).__name__}: {redact_text(str(cause))})"
    # One log line per failure: a message may quote stored data, which must not be
    # able to start a line of its own (a forged entry).
    return _LINE_BREAKS.sub(" | ", detail)


def log_failure(exc: BaseException, status: int, request_id: str, where: str) -> None:
    """Log a 5xx's full (redacted) detail under ``request_id``; 4xx are not logged."""
    if status < 500:
        return
    level = logging.ERROR if status == 500 else logging.WARNING
    logger.log(level, "request %s: %s failed with %d: %s", request_id, where, status, _detail(exc))


def error_body(exc: BaseException, request_id: str, where: str) -> tuple[int, dict[str, object]]:
    """The status and JSON body reporting ``exc`` to a client; a 5xx's detail is logged."""
    status = status_for(exc)
    log_failure(exc, status, request_id, where)
    return status, {"error": client_message(exc, status), "request_id": request_id}


def _where(request: Request) -> str:
    # repr: a path is the client's text, and must not forge log lines.
    return f"{request.method} {request.url.path!r}"


def error_response(request: Request, exc: BaseException) -> JSONResponse:
    """A JSON error response for ``exc``, logged when it is the server's fault."""
    request_id = request_id_of(request.scope)
    status, body = error_body(exc, request_id, _where(request))
    return JSONResponse(body, status_code=status, headers={REQUEST_ID_HEADER: request_id})


def unexpected_error_response(request: Request, exc: BaseException) -> JSONResponse:
    """The 500 for an exception nothing expected (a bug): logged with its traceback."""
    request_id = request_id_of(request.scope)
    logger.error(
        "request %s: %s failed with 500: unhandled %s",
        request_id,
        _where(request),
        type(exc).__name__,
        exc_info=exc,
    )
    return JSONResponse(
        {"error": GENERIC_MESSAGES[500], "request_id": request_id},
        status_code=500,
        headers={REQUEST_ID_HEADER: request_id},
    )
