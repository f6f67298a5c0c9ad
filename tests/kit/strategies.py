"""Hypothesis strategies the property tests share: whatever a JSON answer can hold."""

from __future__ import annotations

from hypothesis import strategies as st

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
#: Any JSON-shaped value, nested a little: what a misbehaving vendor could put in a field.
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
