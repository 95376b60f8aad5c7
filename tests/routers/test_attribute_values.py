"""The attribute-value converters give what boto3's TypeSerializer and TypeDeserializer give, for
every type a route item or audit entry can hold, and refuse the rest with a clear error."""

from __future__ import annotations

from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from beat_handover.routers.attribute_values import deserialize, serialize

NUMBERS = st.integers(-(10**38) + 1, 10**38 - 1) | st.decimals(
    allow_nan=False, allow_infinity=False, places=4, min_value=-(10**30), max_value=10**30
)
SCALARS = st.text(max_size=20) | NUMBERS | st.booleans() | st.none()
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
SETS = st.sets(st.text(min_size=1, max_size=8), min_size=1, max_size=4) | st.sets(
    st.integers(-1000, 1000), min_size=1, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_serialize_is_boto3s(value):
    assert serialize(value) == TypeSerializer().serialize(value)


@settings(max_examples=300, deadline=None)
@given(VALUES | SETS)
def test_deserialize_is_boto3s(value):
    attribute = TypeSerializer().serialize(value)
    assert deserialize(attribute) == TypeDeserializer().deserialize(attribute)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "a float cannot be stored in a route item"),
        (b"x", "a bytes cannot be stored"),
        ({"a"}, "a set cannot be stored"),
        (Decimal("NaN"), "Decimal('NaN') is not a finite number"),
        (Decimal("1" * 39), "is not a number DynamoDB stores exactly"),
    ],
)
def test_values_a_route_item_never_holds_are_refused(value, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        serialize(value)


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ({"B": "aGk="}, "attribute value of type 'B'"),
        ({"N": "lots"}, "'lots' is not a finite number"),
        ({"N": "1" * 39}, "is not a number DynamoDB stores exactly"),
        ({"S": 5}, "attribute value of type 'S' with data 5"),
        ({"S": "a", "N": "1"}, "an attribute value is a map of one type to its data"),
        ("text", "an attribute value is a map of one type to its data"),
        ({"NULL": False}, "attribute value of type 'NULL'"),
    ],
)
def test_attribute_values_a_route_item_never_holds_are_refused(attribute, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        deserialize(attribute)
