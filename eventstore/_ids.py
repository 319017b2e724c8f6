"""Typed identifiers: :class:`RunId`, :class:`SessionId`, :class:`EventId`.

Each is a :class:`uuid.UUID` subclass, so it compares and hashes equal to the plain
UUID with the same value and works wherever a UUID does. ``new()`` gives a UUIDv7,
whose time-ordered prefix keeps index inserts local and makes run listings roughly
chronological.
"""

from __future__ import annotations

__all__ = ["EventId", "RunId", "SessionId", "new_uuid7"]

import uuid
from typing import Any, ClassVar, Self

import uuid_utils
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema
from uuid_utils.compat import uuid7 as _uuid7


def new_uuid7() -> uuid.UUID:
    """Return a new time-ordered UUID (version 7)."""
    return _uuid7()


_new = object.__new__
_set = object.__setattr__


class _TypedUUID(uuid.UUID):
    # The string form is computed once: stores format the same ids into keys, rows
    # and envelope JSON several times per append.
    __slots__ = ("_text",)
    _text: str

    @classmethod
    def new(cls) -> Self:
        """A new time-ordered (version 7) identifier."""
        # uuid_utils' own UUID type is ~4x faster to make than the stdlib-compatible
        # one; only its 128-bit value is taken.
        obj = _new(cls)
        _set(obj, "int", uuid_utils.uuid7().int)
        _set(obj, "is_safe", uuid.SafeUUID.unknown)
        return obj

    @classmethod
    def parse(cls, value: str | uuid.UUID) -> Self:
        """Coerce a UUID or its string form; raise ``ValueError`` for anything else."""
        if type(value) is cls:
            return value
        if isinstance(value, uuid.UUID):
            return cls._from_uuid(value)
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                raise ValueError(f"{cls.__name__} must be a UUID, got {value!r}") from None
        raise ValueError(f"{cls.__name__} must be a UUID, got {type(value).__name__}")

    def __str__(self) -> str:
        try:
            return self._text
        except AttributeError:
            text = super().__str__()
            _set(self, "_text", text)
            return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self}')"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_uuid = core_schema.no_info_after_validator_function(
            cls._from_uuid, core_schema.uuid_schema()
        )
        return core_schema.json_or_python_schema(
            json_schema=from_uuid,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_uuid]
            ),
            serialization=core_schema.to_string_ser_schema(),
        )

    @classmethod
    def _from_uuid(cls, value: uuid.UUID) -> Self:
        # Hot on every decoded envelope: copy the validated value's slots instead of
        # re-running UUID.__init__'s parsing and range checks.
        obj = _new(cls)
        _set(obj, "int", value.int)
        _set(obj, "is_safe", value.is_safe)
        return obj


class _InternedUUID(_TypedUUID):
    """An id that repeats on every envelope of a run: decoded values are interned.

    A page of one run carries the same run id (twice) and session id on every
    envelope; reusing the instance is four times cheaper than building it. The
    table is bounded and simply cleared when full.
    """

    __slots__ = ()
    _interned: ClassVar[dict[int, Any]]
    _interned_text: ClassVar[dict[str, Any]]
    _INTERN_LIMIT: ClassVar[int] = 65_536

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._interned = {}
        cls._interned_text = {}

    @classmethod
    def parse(cls, value: str | uuid.UUID) -> Self:
        """Like :meth:`_TypedUUID.parse`; a string seen before returns its interned id.

        Stores parse the same run and session id text on every append and row.
        """
        if type(value) is str:
            obj = cls._interned_text.get(value)
            if obj is None:
                obj = cls._from_uuid(super().parse(value))
                if len(cls._interned_text) >= cls._INTERN_LIMIT:
                    cls._interned_text.clear()
                cls._interned_text[value] = obj
            return obj
        return super().parse(value)

    @classmethod
    def _from_uuid(cls, value: uuid.UUID) -> Self:
        key = value.int
        obj = cls._interned.get(key)
        if obj is None:
            if len(cls._interned) >= cls._INTERN_LIMIT:
                cls._interned.clear()
            obj = cls._interned[key] = super()._from_uuid(value)
        return obj


class RunId(_InternedUUID):
    """Identifies one agent run, whose events form one log."""

    __slots__ = ()


class SessionId(_InternedUUID):
    """Identifies the session a run belongs to (set by its ``RunStarted``)."""

    __slots__ = ()


class EventId(_TypedUUID):
    """Identifies one stored event; scoped to its run, used for idempotent retries."""

    __slots__ = ()
