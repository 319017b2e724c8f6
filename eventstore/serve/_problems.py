"""How store errors become HTTP statuses and JSON error bodies.

Every error response has the body ``{"error": "<message>"}``. A caller's mistake
(a malformed id, a limit out of range) is a 4xx; only a fault of the store itself
is a 5xx, and no message carries a credential.
"""

from __future__ import annotations

__all__ = ["error_response", "status_for"]

import logging
from typing import Final

from starlette.responses import JSONResponse

from .._errors import (
    BackendError,
    BackendUnavailableError,
    CorruptEventError,
    EventStoreError,
    HistoryUnavailableError,
    RunDeletedError,
    StoreClosedError,
    UnsupportedOperationError,
)
from .._url import redact_text

logger = logging.getLogger("eventstore.serve")

# Checked in order: subclasses before their bases.
_STATUSES: Final[tuple[tuple[type[Exception], int], ...]] = (
    (BackendUnavailableError, 503),
    (StoreClosedError, 503),
    (UnsupportedOperationError, 501),
    (HistoryUnavailableError, 410),
    (RunDeletedError, 410),
    (CorruptEventError, 500),
    (BackendError, 500),
    # InvalidArgumentError and ConfigurationError are ValueErrors: the caller's fault.
    (ValueError, 400),
    (EventStoreError, 500),
)


def status_for(exc: Exception) -> int:
    """The HTTP status that reports ``exc``: 4xx for bad input, 5xx for store faults."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(exc: Exception) -> JSONResponse:
    """A JSON error response for ``exc``, logged when it is the server's fault."""
    status = status_for(exc)
    message = redact_text(str(exc)) or type(exc).__name__
    if status >= 500:
        logger.warning("request failed with %d: %s", status, message)
    return JSONResponse({"error": message}, status_code=status)
