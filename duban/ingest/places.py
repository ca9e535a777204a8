"""The place key of each validated ticket row (rules/places.py), computed once at import."""

from __future__ import annotations

import pandas as pd

from duban.rules.places import place_key


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def with_place_keys(good: pd.DataFrame) -> pd.DataFrame:
    """`good` (validated rows: district, street, address) with its `place_key` column."""
    keys = [
        place_key(_text(d), _text(s), _text(a))
        for d, s, a in zip(good["district"], good["street"], good["address"], strict=True)
    ]
    return good.assign(place_key=pd.Series(keys, index=good.index, dtype=object))
