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
_NUMBER_RE2 = "[零〇一二三四五六七八九十百千]号"  # (rules/places.py's _CHINESE_NUMBER)
# An address that folding makes plain: letters, digits, CJK ideographs, their full-width and
# upper-case forms (all assigned since Unicode 1.1: pyarrow's NFKC of them is Python's),
# spaces (removed) and a full stop or comma at the end (stripped).
_SAFE = "\u4e00-\u9fff0-9a-zA-Z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_SAFE_RE2 = f"^[{_SAFE} \u3000]*[{_SAFE}][ \u3000。，]*$"
_WIDE_RE2 = "[\uff10-\uff5a]"  # what NFKC changes in a safe address
_SPACES = (" ", "\u3000")
_END = "。，"


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
    """`place_key` of `rows` (positions) of validated text columns (str, "" for none), whole
    columns at a time. An address of letters, digits and CJK ideographs (full-width or
    upper-case ones too: NFKC and case folding make them plain, see _SAFE_RE2) is folded
    and joined to its district's and street's names by pyarrow; one that may begin with one
    of those names has it dropped in Python (a slice); every other row is asked of
    `plain_place_key` once per distinct (district, street, address)."""
    at = pa.array(rows, pa.int64())
    address, district, street = (c.take(at) for c in (address, district, street))
    text = _folded(address)
    fast = pc.and_(
        pc.match_substring_regex(address, _SAFE_RE2),
        pc.invert(pc.match_substring_regex(text, _NUMBER_RE2)),
    )
    fast = _bools(pc.and_(fast, pc.greater(pc.binary_length(address), 0)))
    names, codes = [], []
    for column in (district, street):
        encoded = pc.dictionary_encode(column)
        normal = [normalise_name(v or None) for v in encoded.dictionary.to_pylist()]
        names.append(pc.take(pa.array(normal, pa.string()), encoded.indices))
        codes.append((encoded.indices.to_numpy(zero_copy_only=False), len(normal)))
    first = pc.utf8_slice_codeunits(text, 0, 1)
    prefixed = np.zeros(len(rows), dtype=bool)  # a name that may be dropped
    for name in names:
        prefixed |= _bools(pc.equal(pc.utf8_slice_codeunits(name, 0, 1), first))
    joined = pc.binary_join_element_wise(names[0], names[1], text, SEPARATOR)
    keys = np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)
    long = _bools(pc.greater(pc.utf8_length(joined), MAX_LENGTH))
    sliced = np.flatnonzero(fast & (prefixed | long))
    if len(sliced):
        take = pa.array(sliced, pa.int64())
        parts = [c.take(take).to_pylist() for c in (*names, text)]
        keys[sliced] = [_dropped(d, s, t) for d, s, t in zip(*parts, strict=True)]
    slow = np.flatnonzero(~fast)
    if len(slow):
        keys[slow] = _once_each(district, street, address, codes, slow)
    return keys


def _folded(address: pa.Array) -> pa.Array:
    """What normalisation makes of the addresses `_SAFE_RE2` matches (others: unused)."""
    text = pc.utf8_rtrim(address, characters="".join(_SPACES) + _END)
    wide = pc.match_substring_regex(text, _WIDE_RE2)
    if pc.any(wide).as_py():  # (NFKC is slow: only where it changes something)
        normal = pc.utf8_normalize(text.filter(wide), "NFKC")
        text = pc.replace_with_mask(text, wide, normal)
    for space in _SPACES:
        text = pc.replace_substring(text, space, "")
    return pc.replace_substring(pc.ascii_lower(text), "号院", "号")


def _dropped(name: str, street_name: str, text: str) -> str:
    """The key of a plain, folded address `text`: the names it begins with dropped."""
    for prefix in (name, street_name):
        if prefix and text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
    return SEPARATOR.join((name, street_name, text))[:MAX_LENGTH]


def _once_each(
    district: pa.Array,
    street: pa.Array,
    address: pa.Array,
    codes: list[tuple[np.ndarray, int]],
    slow: np.ndarray,
) -> list[str | None]:
    """`plain_place_key` of the rows `slow`, asked once per distinct (district, street,
    address): many tickets share an address."""
    (district_codes, _), (street_codes, streets) = codes
    pair = district_codes[slow].astype(np.int64) * streets + street_codes[slow]
    _, pair_codes = np.unique(pair, return_inverse=True)
    encoded = pc.dictionary_encode(address.take(pa.array(slow, pa.int64())))
    address_codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    triple = pair_codes.reshape(-1).astype(np.int64) * len(encoded.dictionary) + address_codes
    _, first, inverse = np.unique(triple, return_index=True, return_inverse=True)
    at = pa.array(slow[first], pa.int64())
    parts = [c.take(at).to_pylist() for c in (district, street, address)]
    found = [
        plain_place_key(d or None, s or None, a or None) for d, s, a in zip(*parts, strict=True)
    ]
    return list(np.asarray(found, dtype=object)[inverse.reshape(-1)])


def _bools(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
