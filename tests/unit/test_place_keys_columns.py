"""The columnar import's place keys (ingest/places.py, whole columns at a time) are
rules/places.py's `place_key` of every row: plain addresses joined by pyarrow, full-width
and upper-case ones folded by it, names dropped from their start, long keys cut, the rest
asked once per distinct (district, street, address)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from duban.ingest.places import place_keys_of_columns, plain_place_key
from duban.rules.places import place_key

NAMES = ["", "东城区", " 东城区", "朝阳区", "东", "建国门街道", "建国门", "Ａ座", "a", "东城区，"]
# Letters of addresses: plain ones, their full-width and upper-case forms, numerals before
# 号, separators, punctuation, spaces, zero-width and other characters NFKC changes.
ALPHABET = "东城区建国门街道朝阳座楼一二十〇号院1２AaＢｂ#-，。 \u3000\u200b|ßİﬁ①㈠"
PIECES = ["", "东城区", "建国门街道", "建国门", "东", "Ａ座", "号院", "12号", "长" * 300]

addresses = st.one_of(
    st.text(ALPHABET, max_size=12),
    st.lists(st.sampled_from(PIECES + list(ALPHABET)), max_size=6).map("".join),
)
triples = st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), addresses)


@settings(max_examples=300, deadline=None)
@given(st.lists(triples, min_size=1, max_size=40), st.data())
def test_the_keys_of_whole_columns_are_place_key_of_each_row(
    rows: list[tuple[str, str, str]], data: st.DataObject
) -> None:
    rows = rows + rows[: len(rows) // 2]  # tickets sharing an address
    district, street, address = (pa.array(list(c), pa.string()) for c in zip(*rows, strict=True))
    positions = data.draw(st.lists(st.integers(0, len(rows) - 1), unique=True))
    at = np.array(sorted(positions), dtype=np.int64)
    keys = place_keys_of_columns(district, street, address, at)
    expected = [place_key(d or None, s or None, a or None) for d, s, a in (rows[i] for i in at)]
    assert list(keys) == expected


def test_plain_place_key_is_place_key() -> None:
    for d in NAMES:
        for s in NAMES:
            for a in [*PIECES, "东城区建国门街道1号院", "ＡＢ１号", "二十三号", "1#", " 1号 "]:
                assert plain_place_key(d or None, s or None, a or None) == place_key(d, s, a)


def test_spaces_wide_forms_and_a_full_stop_at_the_end_are_folded_by_pyarrow() -> None:
    rows = [
        "康庄大街 3号院6号楼",
        "看丹路38号院19号楼。",
        "Ａ座\u3000１０１号，",
        "东城区 建国门街道1号。 ",
    ]
    column = pa.array(rows, pa.string())
    names = pa.array(["东城区"] * len(rows), pa.string()), pa.array(["建国门街道"] * len(rows))
    keys = place_keys_of_columns(*names, column, np.arange(len(rows)))
    assert list(keys) == [place_key("东城区", "建国门街道", a) for a in rows]
