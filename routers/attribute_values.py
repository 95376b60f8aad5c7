"""DynamoDB attribute values (``{"S": "paas"}``, ``{"N": "12.5"}``, ``{"M": {...}}``) to plain
Python values and back, as boto3's ``TypeSerializer`` and ``TypeDeserializer`` convert them, for
the types route items and audit entries hold.

boto3 has these converters, but importing them imports boto3, which costs a Lambda cold start
about a quarter of a second; the tests check these against boto3's on generated values.

Numbers are Decimals in DynamoDB's context: 38 significant digits, and a number that does not fit
exactly is an error, never rounded. Strings, numbers, booleans, null, maps, lists and the string
and number sets are supported; binary values (B, BS) are refused, as route items never hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import (
    Clamped,
    Context,
    Decimal,
    DecimalException,
    Inexact,
    Overflow,
    Rounded,
    Underflow,
)
from typing import Any

DYNAMODB_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _number(value: int | Decimal | str) -> Decimal:
    try:
        number = DYNAMODB_CONTEXT.create_decimal(value)
    except DecimalException as exc:
        raise ValueError(f"{value!r} is not a number DynamoDB stores exactly ({exc!r})") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def serialize(value: Any) -> dict[str, Any]:
    """The attribute value of ``value``: str, int, Decimal, bool, None, a mapping with string
    keys or a list of these. Anything else (a float included) is a TypeError, as in boto3."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        try:
            return {"N": str(_number(value))}
        except ValueError as exc:
            raise TypeError(str(exc)) from None
    if isinstance(value, Mapping):
        return {"M": {str(key): serialize(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [serialize(item) for item in value]}
    raise TypeError(f"a {type(value).__name__} cannot be stored in a route item: {value!r}")


def deserialize(value: Any) -> Any:
    """The plain value of an attribute value, else ValueError saying what is wrong with it."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(f"an attribute value is a map of one type to its data, got {value!r}")
    ((kind, data),) = value.items()
    if kind == "S" and isinstance(data, str):
        return data
    if kind == "N" and isinstance(data, str):
        return _number(data)
    if kind == "BOOL" and isinstance(data, bool):
        return data
    if kind == "NULL" and data is True:
        return None
    if kind == "M" and isinstance(data, Mapping):
        return {key: deserialize(item) for key, item in data.items()}
    if kind == "L" and isinstance(data, list):
        return [deserialize(item) for item in data]
    if kind == "SS" and isinstance(data, list) and all(isinstance(item, str) for item in data):
        return set(data)
    if kind == "NS" and isinstance(data, list) and all(isinstance(item, str) for item in data):
        return {_number(item) for item in data}
    raise ValueError(f"attribute value of type {kind!r} with data {data!r} is not supported here")
