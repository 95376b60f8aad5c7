"""Checking a plain mapping against a table of fields: the one place where unknown, missing and
bad values of a handler config or a stored route side are found and reported."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from beat_handover.routers.errors import RouterError

REQUIRED: Any = object()  # the default of a field that must be given


class Field(NamedTuple):
    """``parser`` returns the value or raises ValueError saying what it expected ("a port
    number from 1 to 65535"); ``meaning`` documents it."""

    parser: Callable[[Any], Any]
    default: Any = None
    meaning: str = ""


def parse_fields(
    data: object, fields: Mapping[str, Field], *, where: str, noun: str, error: type[RouterError]
) -> dict[str, Any]:
    """Every field's parsed value (its default when absent or null), else ``error`` naming the
    field and the value seen. Unknown fields are errors: a misspelt name must not be ignored."""
    if not isinstance(data, Mapping):
        raise error(f"{where} must be a map of {', '.join(fields)}, got {data!r}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise error(
            f"{where} has unknown {noun}(s) {', '.join(map(repr, unknown))}; the {noun}s are "
            f"{', '.join(fields)}"
        )
    values = {}
    for name, field in fields.items():
        value = data.get(name)
        if value is None:
            if field.default is REQUIRED:
                raise error(f"{where} lacks the required {noun} {name!r}")
            values[name] = field.default
            continue
        try:
            values[name] = field.parser(value)
        except RouterError:
            raise
        except ValueError as exc:
            raise error(f"{where}: {noun} {name!r} must be {exc}, got {value!r}") from None
    return values
