"""Records built from what a client sent, validated before they are stored."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stagewise.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], fields: dict[str, Any]) -> M:
    """`model` validated from `fields`. A value of the wrong type is the client's 422, never
    a record the store holds but cannot read back (which would fail every later read with a
    500). `model_copy(update=...)` does not validate: updates go through here."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        errors = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        field = ".".join(errors[0]["loc"])
        raise ValidationFailed(f"{field}: {errors[0]['msg']}", field=field, errors=errors) from exc
