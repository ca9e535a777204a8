"""Per-cell rules of an import: pure functions on arrays of raw strings, returning masks.

Each rule flags the cells that would break the database or be stored wrong, so that the
row is quarantined (with the field named) and the rest of the chunk is kept. No I/O: a
columnar import path can reuse them.
"""

from __future__ import annotations

import re

import numpy as np

# C0 control characters and DEL, except tab, line feed and carriage return (which exports
# legitimately carry in free text). PostgreSQL refuses NUL in text; the others are never
# typed by a person and would reach mail headers and workbooks.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Ranges of the integer column types, as the model declares them.
SMALLINT_MAX = 2**15 - 1
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

# A whole number as written in an export: digits, optionally with a `.0…` tail (spreadsheets).
_WHOLE = re.compile(r"\s*\+?(\d+)(?:\.0*)?\s*")

# A year, or a year and month, alone: not a point in time.
_PARTIAL_DATE = re.compile(r"\s*\d{4}(?:[-/.]\d{1,2})?\s*")


# A byte the export's encoding could not decode, kept by the reader as a lone surrogate
# (Python's "surrogateescape": byte 0xNN becomes U+DCNN).
_UNDECODED = re.compile("[\udc80-\udcff]")
_SHOWN = re.compile(_CONTROL.pattern[:-1] + "\udc80-\udcff]")


def undecodable(values: np.ndarray) -> np.ndarray:
    """True where a text cell holds bytes its file's encoding could not decode."""
    search = _UNDECODED.search
    if search("".join(values.tolist())) is None:  # one search for the column: the usual case
        return np.zeros(len(values), dtype=bool)
    return np.fromiter((search(v) is not None for v in values), dtype=bool, count=len(values))


def has_control_characters(values: np.ndarray) -> np.ndarray:
    """True where a text cell holds a control character other than tab, LF or CR."""
    search = _CONTROL.search
    return np.fromiter((search(v) is not None for v in values), dtype=bool, count=len(values))


def shown(value: str) -> str:
    """A cell as the quarantine report shows it: control characters and undecodable bytes
    as \\xNN (the byte itself)."""
    return _SHOWN.sub(lambda m: f"\\x{ord(m.group()) & 0xFF:02x}", value)


def whole_numbers(values: np.ndarray, maximum: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative whole numbers up to `maximum` (an empty cell is 0).

    Returns (numbers as int64, bad mask). Parsed exactly, never through float: `inf`,
    `1e400`, `NaN`, `99999999999999999999` and 40000 for a smallint are bad, not clipped.
    """
    numbers = np.zeros(len(values), dtype=np.int64)
    bad = np.zeros(len(values), dtype=bool)
    match = _WHOLE.fullmatch
    for i, value in enumerate(values.tolist()):
        if value == "":
            continue
        found = match(value)
        if found is None:
            bad[i] = True
            continue
        number = int(found.group(1))
        if number > maximum:
            bad[i] = True
        else:
            numbers[i] = number
    return numbers, bad


def partial_dates(values: np.ndarray) -> np.ndarray:
    """True where a time cell is only a year or a year and month (`2026`, `2026-10`)."""
    match = _PARTIAL_DATE.fullmatch
    return np.fromiter((match(v) is not None for v in values), dtype=bool, count=len(values))


# An ISO 8601 time with its own offset: `…T10:00:00+08:00`, `…+0800`, `…Z` (the value's
# last six characters are enough to tell; a time of day must precede it).
_OFFSET_TAIL = re.compile(r".*\dZ|.*[+-]\d{2}:?\d{2}", re.I)


def with_offset(values: np.ndarray) -> np.ndarray:
    """True where a time cell carries its own UTC offset (or `Z`)."""
    match = _OFFSET_TAIL.fullmatch
    return np.fromiter(
        (len(v) > 12 and ":" in v and match(v.rstrip()[-6:]) is not None for v in values),
        dtype=bool,
        count=len(values),
    )
