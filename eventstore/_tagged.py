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
    ``required_in_json`` names a field whose default applies only to values built
    in Python: JSON without it is refused, as serde refuses it.
    """

    def __init__(
        self,
        variants: Sequence[type[BaseModel]],
        *,
        unknown: Callable[[str, Any], Any] | None = None,
        unknown_type: type | None = None,
        required_in_json: str | None = None,
    ) -> None:
        self._by_tag = {cls.__name__: cls for cls in variants}
        self._required_in_json = required_in_json
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
        tag, payload = _single_item(value)
        return self._unknown(tag, payload)

    def _serialize(self, value: Any, handler: core_schema.SerializerFunctionWrapHandler) -> Any:
        if self._unknown_type is not None and isinstance(value, self._unknown_type):
            unknown: Any = value
            return {unknown.name: unknown.payload}
        return {type(value).__name__: handler(value)}

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        variants = {tag: handler.generate_schema(cls) for tag, cls in self._by_tag.items()}
        names = ", ".join(self._by_tag)
        return core_schema.json_or_python_schema(
            json_schema=self._json_schema(variants),
            python_schema=self._python_schema(variants, names),
            serialization=core_schema.wrap_serializer_function_ser_schema(
                self._serialize, schema=core_schema.any_schema()
            ),
        )

    def _python_schema(
        self, variants: dict[str, core_schema.CoreSchema], names: str
    ) -> core_schema.CoreSchema:
        # Python input: instances pass through, dicts are dispatched on their key.
        choices: dict[str, core_schema.CoreSchema] = {
            tag: core_schema.no_info_after_validator_function(
                _item_getter(tag),
                core_schema.typed_dict_schema(
                    {tag: core_schema.typed_dict_field(schema)}, extra_behavior="forbid"
                ),
            )
            for tag, schema in variants.items()
        }
        choices[_INSTANCE] = core_schema.is_instance_schema(self._instance_types)
        if self._unknown is not None:
            choices[_UNKNOWN] = core_schema.no_info_plain_validator_function(self._build_unknown)
        return core_schema.tagged_union_schema(
            choices,
            discriminator=self._discriminate,
            custom_error_type="externally_tagged",
            custom_error_message=f"expected an object with exactly one key, one of: {names}",
        )

    def _json_schema(self, variants: dict[str, core_schema.CoreSchema]) -> core_schema.CoreSchema:
        # JSON input, the read path of every backend: one typed dict whose keys are
        # all the tags, each optional, validated entirely in Rust. A Python
        # discriminator would first convert the whole event to Python objects.
        known = core_schema.no_info_after_validator_function(
            _single_value if self._required_in_json is None else self._single_given_value,
            core_schema.typed_dict_schema(
                {
                    tag: core_schema.typed_dict_field(schema, required=False)
                    for tag, schema in variants.items()
                },
                extra_behavior="forbid",
            ),
        )
        if self._unknown is None:
            return known
        # An unknown tag fails the typed dict (extra key) and lands here; a known tag
        # with an invalid payload fails here too, as the unknown factory refuses
        # known names, so a broken event is never mistaken for a future one.
        unknown = core_schema.no_info_after_validator_function(
            self._build_unknown, core_schema.dict_schema(core_schema.str_schema())
        )
        return core_schema.union_schema(
            [(known, "known variant"), (unknown, "unknown variant")], mode="left_to_right"
        )

    def _single_given_value(self, value: dict[str, Any]) -> Any:
        # _single_value, and the payload must have been given the required field (its
        # default is for values built in Python). One call per decoded event.
        if len(value) == 1:
            for payload in value.values():
                if self._required_in_json in payload.__pydantic_fields_set__:
                    return payload
                raise ValueError(f"missing field {self._required_in_json!r}")
        raise ValueError(f"expected an object with exactly one key, got {len(value)} keys")


def _single_item(value: dict[str, Any]) -> tuple[str, Any]:
    if len(value) != 1:
        raise ValueError(f"expected an object with exactly one key, got {len(value)} keys")
    ((tag, payload),) = value.items()
    return tag, payload


def _single_value(value: dict[str, Any]) -> Any:
    # On every decoded event: kept to one call (no _single_item) on the common path.
    if len(value) == 1:
        for payload in value.values():
            return payload
    raise ValueError(f"expected an object with exactly one key, got {len(value)} keys")


def _item_getter(tag: str) -> Callable[[dict[str, Any]], Any]:
    def get(value: dict[str, Any]) -> Any:
        return value[tag]

    return get
