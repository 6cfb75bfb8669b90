"""Execute inputs checked against a retriever's input_schema, with an interpretation report."""

from __future__ import annotations

from typing import Any

from stagewise.errors import ValidationFailed

_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str),
    "date": lambda v: isinstance(v, str),
    "datetime": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "document_reference": lambda v: isinstance(v, dict | str),
}


def resolve_inputs(
    schema: dict[str, Any], inputs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (inputs with defaults, interpretation). Raises 422 on a violation."""
    resolved: dict[str, Any] = {}
    inferred: dict[str, Any] = {}
    for name, field in schema.items():
        if name in inputs and inputs[name] is not None:
            value = inputs[name]
            check = _CHECKS.get(str(field.get("type")))
            if check is not None and not check(value):
                raise ValidationFailed(
                    f"Input '{name}' must be of type {field.get('type')}, got "
                    f"{type(value).__name__}",
                    code="invalid_input",
                    input=name,
                )
            if field.get("enum") and value not in field["enum"]:
                raise ValidationFailed(
                    f"Input '{name}' must be one of {field['enum']}",
                    code="invalid_input",
                    input=name,
                )
            resolved[name] = value
        elif field.get("default") is not None:
            resolved[name] = inferred[name] = field["default"]
        elif field.get("required"):
            raise ValidationFailed(f"Input '{name}' is required", code="missing_input", input=name)
    ignored = sorted(k for k in inputs if k not in schema) if schema else []
    for name in ignored if schema else inputs:
        resolved.setdefault(name, inputs[name])
    interpretation = {
        "provided_input_keys": sorted(k for k in inputs if inputs[k] is not None),
        "inferred_inputs": inferred,
        "ignored_input_keys": ignored,
        "relaxations": [],
    }
    return resolved, interpretation
