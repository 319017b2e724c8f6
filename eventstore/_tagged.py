"""Externally tagged unions (``{"VariantName": {...fields}}``), the serde default.

Pydantic has no built-in externally tagged union, so this builds one core schema:
a tagged union whose discriminator is the single key of the input object. Instances
pass through unvalidated (models are frozen and were validated when built), and an
unknown tag either fails or, for forward compatibility, becomes an "unknown" value
that keeps the raw JSON so it can be written back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import core_schema

_INSTANCE = "\x00instance"
_UNKNOWN = "\x00unknown"


class ExternallyTagged:
    """``Annotated`` marker that (de)serializes a union of models externally tagged.

    ``unknown`` builds the value for a tag that is not among ``variants`` from
    ``(tag, payload)``; without it, an unknown tag is a validation error. Unknown
    values must expose ``name`` and ``payload`` for serialization.
    """

    def __init__(
        self,
        variants: Sequence[type[BaseModel]],
        *,
        unknown: Callable[[str, Any], Any] | None = None,
        unknown_type: type | None = None,
    ) -> None:
        self._by_tag = {cls.__name__: cls for cls in variants}
        self._unknown = unknown
        self._instance_types: tuple[type, ...] = tuple(variants) + (
            (unknown_type,) if unknown_type is not None else ()
        )
        self._unknown_type = unknown_type

    def _discriminate(self, value: Any) -> str | None:
        if isinstance(value, dict):
            if len(value) != 1:
                return None
            tag = next(iter(value))
            if tag in self._by_tag:
                return tag  # type: ignore[no-any-return]
            return _UNKNOWN if self._unknown is not None else None
        if isinstance(value, self._instance_types):
            return _INSTANCE
        return None

    def _build_unknown(self, value: dict[str, Any]) -> Any:
        assert self._unknown is not None
        ((tag, payload),) = value.items()
        return self._unknown(tag, payload)

    def _serialize(self, value: Any, handler: core_schema.SerializerFunctionWrapHandler) -> Any:
        if self._unknown_type is not None and isinstance(value, self._unknown_type):
            unknown: Any = value
            return {unknown.name: unknown.payload}
        return {type(value).__name__: handler(value)}

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        choices: dict[str, core_schema.CoreSchema] = {}
        for tag, cls in self._by_tag.items():
            choices[tag] = core_schema.no_info_after_validator_function(
                _item_getter(tag),
                core_schema.typed_dict_schema(
                    {tag: core_schema.typed_dict_field(handler.generate_schema(cls))},
                    extra_behavior="forbid",
                ),
            )
        choices[_INSTANCE] = core_schema.is_instance_schema(self._instance_types)
        if self._unknown is not None:
            choices[_UNKNOWN] = core_schema.no_info_plain_validator_function(self._build_unknown)
        names = ", ".join(self._by_tag)
        return core_schema.tagged_union_schema(
            choices,
            discriminator=self._discriminate,
            custom_error_type="externally_tagged",
            custom_error_message=f"expected an object with exactly one key, one of: {names}",
            serialization=core_schema.wrap_serializer_function_ser_schema(
                self._serialize, schema=core_schema.any_schema()
            ),
        )


def _item_getter(tag: str) -> Callable[[dict[str, Any]], Any]:
    def get(value: dict[str, Any]) -> Any:
        return value[tag]

    return get

