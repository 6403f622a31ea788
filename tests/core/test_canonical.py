from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metaqore.core.canonical import canonical_json, content_hash

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_is_sorted_compact_json(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected
    assert json.loads(canonical_json(value)) == value


@pytest.mark.parametrize("bad", [float("nan"), {"a": float("inf")}, [float("-inf")]])
def test_non_finite_numbers_are_refused(bad):
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json(bad)


def test_content_hash_ignores_key_order_but_not_values():
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert content_hash({}).startswith("sha256:")
