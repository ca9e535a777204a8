"""The columnar import's pieces that must agree with Python and pandas exactly: what
`str.strip` strips, how a file is cut into lines, and the times read from fixed places."""

from __future__ import annotations

import io
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from duban.ingest import fastcsv
from duban.ingest.columnar import FORMATS, _times
from duban.ingest.fastcsv import WHITESPACE, _LineBlocks


def test_whitespace_is_what_str_strip_strips() -> None:
    assert "".join(ch for ch in map(chr, range(0x110000)) if ch.isspace()) == WHITESPACE


@pytest.mark.parametrize("read_bytes", [7, 1000, fastcsv._READ_BYTES])
def test_lines_are_cut_as_a_binary_file_reads_them(
    read_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastcsv, "_READ_BYTES", read_bytes)  # one read or many per block
    data = b"".join(f"row {i},{'x' * (i % 7)}\r\n".encode() for i in range(1000)) + b"last"
    blocks = _LineBlocks(io.BytesIO(data))
    expected = io.BytesIO(data).readlines()
    got: list[bytes] = []
    while True:
        chunk, count = blocks.take(97)
        assert (blocks.taken_ends == [i for i, b in enumerate(chunk) if b == 10]).all()
        if not count:
            break
        assert chunk.count(b"\n") + (not chunk.endswith(b"\n")) == count
        got.extend(io.BytesIO(chunk).readlines())
    assert got == expected
    assert blocks.offset == len(data)


def _candidates(rng: random.Random, fmt: str) -> list[str]:
    """Values of the format's shape, most of them real times, some impossible."""
    values = []
    for _ in range(3000):
        year = rng.choice([rng.randint(1890, 2210), 2024, 2026])
        parts = [year, rng.randint(0, 13), rng.randint(0, 32)]
        parts += [rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)]
        if rng.random() < 0.7:
            parts[1:3] = [rng.randint(1, 12), rng.randint(1, 28)]
        separator = "/" if "/" in fmt else "-"
        text = f"{parts[0]:04d}{separator}{parts[1]:02d}{separator}{parts[2]:02d}"
        if "%H" in fmt:
            text += f" {parts[3]:02d}:{parts[4]:02d}"
        if "%S" in fmt:
            text += f":{parts[5]:02d}"
        values.append(text)
    return [*values, "", "2026-9-30 10:00:00", "2026-09-30T10:00:00", "2026-02-29 10:00:00"]


def test_times_read_at_fixed_places_are_the_times_pandas_reads() -> None:
    rng = random.Random(17)
    for fmt in FORMATS:
        values = _candidates(rng, fmt)
        read, left = _times(pa.array(values, pa.string()), [fmt])
        expected = pd.to_datetime(pd.Series(values), format=fmt, errors="coerce")
        expected_us = np.asarray(expected.dt.as_unit("us").to_numpy(), dtype="datetime64[us]")
        done = ~left & (np.array(values, dtype=object) != "")
        assert done.sum() > 1000  # most were read here
        assert (read[done] == expected_us[done]).all()  # and as pandas reads them
        # What pandas cannot read is never read here: it is left to validate_rows.
        assert not (done & np.isnat(expected_us)).any()


def test_cells_are_stripped_as_str_strip_strips_them() -> None:
    from duban.ingest.fastcsv import _stripped

    rng = random.Random(3)
    pieces = ["a", "号", " ", "\u3000", "\xa0", "\x85", "\u2028", "\u200b", "\t", "é", "。", ""]
    for size in (0, 1, 5, 60):  # none, few or most cells edged with white space
        cells = ["".join(rng.choices(pieces, k=rng.randint(0, size))) for _ in range(400)]
        sliced = pa.chunked_array([pa.array(["x", *cells], pa.string()).slice(1)])
        assert _stripped(sliced).to_pylist() == [c.strip() for c in cells]


def test_a_blank_line_is_found_by_the_line_ends_as_by_searching() -> None:
    from duban.ingest.fastcsv import _blank_line

    rng = random.Random(5)
    for _ in range(300):
        data = b"".join(rng.choices([b"a", b"\n", b"\r\n", b",", b"\r"], k=rng.randint(0, 12)))
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        assert _blank_line(data, ends) == (b"\n\n" in data or b"\n\r\n" in data)
