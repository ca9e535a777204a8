"""The place key of each validated ticket row (rules/places.py), computed once at import."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from duban.rules.places import _CHINESE_NUMBER, MAX_LENGTH, SEPARATOR, normalise_name, place_key

# An address that normalisation leaves as it is but for 号院 -> 号 and the prefixes: CJK
# ideographs (NFKC- and case-stable, no punctuation), ASCII digits and lower-case letters.
_PLAIN = re.compile(r"[\u4e00-\u9fff0-9a-z]*")
_PLAIN_RE2 = "^[\u4e00-\u9fff0-9a-z]*$"
_NUMBER_RE2 = "[零〇一二三四五六七八九十百千]号"  # (rules/places.py's _CHINESE_NUMBER)


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
    if plain and "place_key" in good.columns:  # validate_columns gave them
        return good
    if plain:  # validated text: str or None
        columns = (good[name].to_numpy(dtype=object) for name in ("district", "street", "address"))
        keys = list(map(plain_place_key, *columns))
    else:
        keys = [
            place_key(_text(d), _text(s), _text(a))
            for d, s, a in zip(good["district"], good["street"], good["address"], strict=True)
        ]
    return good.assign(place_key=pd.Series(keys, index=good.index, dtype=object))


def place_keys_of_columns(
    district: pa.Array, street: pa.Array, address: pa.Array, rows: np.ndarray
) -> np.ndarray:
    """`plain_place_key` of `rows` (positions) of validated text columns (str, "" for
    none), whole columns at a time: a plain address whose first character is not that of
    its district's or street's name is joined to them by pyarrow; the others one by one."""
    at = pa.array(rows, pa.int64())
    address, district, street = (c.take(at) for c in (address, district, street))
    text = pc.replace_substring(address, "号院", "号")
    plain = pc.and_(
        pc.match_substring_regex(address, _PLAIN_RE2),
        pc.invert(pc.match_substring_regex(text, _NUMBER_RE2)),
    )
    plain = pc.and_(plain, pc.greater(pc.binary_length(address), 0))
    names = []
    for column in (district, street):
        encoded = pc.dictionary_encode(column)
        normal = [normalise_name(v or None) for v in encoded.dictionary.to_pylist()]
        names.append(pc.take(pa.array(normal, pa.string()), encoded.indices))
    first = pc.utf8_slice_codeunits(text, 0, 1)
    for name in names:  # a prefix that may be dropped: one by one
        plain = pc.and_(plain, pc.invert(pc.equal(pc.utf8_slice_codeunits(name, 0, 1), first)))
    joined = pc.binary_join_element_wise(names[0], names[1], text, SEPARATOR)
    keys = np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)
    fast = np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)
    fast &= np.asarray(pc.utf8_length(joined).to_numpy(), dtype=np.int64) <= MAX_LENGTH
    slow = np.flatnonzero(~fast)
    if len(slow):
        at = pa.array(slow, pa.int64())
        parts = [c.take(at).to_pylist() for c in (district, street, address)]
        keys[slow] = [
            plain_place_key(d or None, s or None, a or None) for d, s, a in zip(*parts, strict=True)
        ]
    return keys
