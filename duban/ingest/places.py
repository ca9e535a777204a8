"""The place key of each validated ticket row (rules/places.py), computed once at import."""

from __future__ import annotations

import re

import pandas as pd

from duban.rules.places import _CHINESE_NUMBER, MAX_LENGTH, SEPARATOR, normalise_name, place_key

# An address that normalisation leaves as it is but for 号院 -> 号 and the prefixes: CJK
# ideographs (NFKC- and case-stable, no punctuation), ASCII digits and lower-case letters.
_PLAIN = re.compile(r"[\u4e00-\u9fff0-9a-z]*")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def plain_place_key(district: str | None, street: str | None, address: str | None) -> str | None:
    """`place_key`, the same value, in fewer steps for a plain address (see _PLAIN)."""
    if address is None or _PLAIN.fullmatch(address) is None:
        return place_key(district, street, address)
    text = address.replace("号院", "号")
    if _CHINESE_NUMBER.search(text) is not None:
        return place_key(district, street, address)
    name, street_name = normalise_name(district), normalise_name(street)
    for prefix in (name, street_name):
        if prefix and text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
    if not text:
        return None
    return SEPARATOR.join((name, street_name, text))[:MAX_LENGTH]


def with_place_keys(good: pd.DataFrame, plain: bool = False) -> pd.DataFrame:
    """`good` (validated rows: district, street, address) with its `place_key` column;
    `plain`: through `plain_place_key` (the columnar import)."""
    if plain:  # validated text: str or None
        columns = (good[name].to_numpy(dtype=object) for name in ("district", "street", "address"))
        keys = list(map(plain_place_key, *columns))
    else:
        keys = [
            place_key(_text(d), _text(s), _text(a))
            for d, s, a in zip(good["district"], good["street"], good["address"], strict=True)
        ]
    return good.assign(place_key=pd.Series(keys, index=good.index, dtype=object))
