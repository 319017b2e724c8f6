"""Parsing of path and query parameters into the values the store API takes.

Each parser raises :class:`~eventstore.InvalidArgumentError` naming the parameter,
which the app turns into a 400 response.
"""

from __future__ import annotations

__all__ = ["parse_limit", "parse_run_id", "parse_seq", "parse_session_id"]

from .._errors import InvalidArgumentError
from .._ids import RunId, SessionId
from .._store import MAX_LIMIT, MAX_SEQ

DEFAULT_LIMIT = 100


def _shown(text: str) -> str:
    # Echo enough of a bad value to recognise it, not a whole 8 KB query string.
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}... ({len(text)} characters)"


def parse_run_id(text: str | None, name: str = "run id") -> RunId:
    """A run id from its canonical UUID text."""
    if text is None:
        raise InvalidArgumentError(f"{name} is required")
    try:
        return RunId.parse(text)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be a UUID, got {_shown(text)}") from None


def parse_session_id(text: str | None) -> SessionId | None:
    """An optional session id filter; ``None`` or ``""`` means no filter."""
    if not text:
        return None
    try:
        return SessionId.parse(text)
    except ValueError:
        raise InvalidArgumentError(f"session_id must be a UUID, got {_shown(text)}") from None


# Longer digit strings are out of every range here; refusing them before int() keeps
# the message about the parameter (int() fails past 4300 digits with its own text).
_MAX_DIGITS = 40


def _parse_int(text: str, name: str) -> int:
    # int() alone would also take " 5", "+5" and "5_000"; a query value is plain digits.
    if not text.isascii() or not text.isdigit():
        raise InvalidArgumentError(f"{name} must be a non-negative integer, got {_shown(text)}")
    if len(text) > _MAX_DIGITS:
        raise InvalidArgumentError(f"{name} is out of range ({len(text)} digits)")
    return int(text)


def parse_limit(text: str | None) -> int:
    """A page size in 1..10,000 (the store's bound); 100 when absent."""
    if text is None:
        return DEFAULT_LIMIT
    limit = _parse_int(text, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(f"limit must be in 1..{MAX_LIMIT}, got {limit}")
    return limit


def parse_seq(text: str | None, name: str = "after_seq") -> int | None:
    """An optional seq bound (>= 0); ``None`` when absent or empty."""
    if text is None or text == "":
        return None
    seq = _parse_int(text, name)
    if seq > MAX_SEQ:
        # Checked here, not only by the store: the stream's response starts before
        # the store sees the value, and a 400 must come first.
        raise InvalidArgumentError(f"{name} must be at most {MAX_SEQ}, got {seq}")
    return seq
