"""Validating a chunk held by pyarrow (fastcsv.ColumnChunk) into ticket records, whole
columns at a time: the columnar path of `validate_rows`, with the same result.

Every rule is first checked over whole columns (pyarrow kernels, numpy, and a value's
mapping asked once per distinct value). A row that any rule might refuse is *flagged* and
validated by `validate_rows` itself, which gives its reasons (or finds it good after all):
the messages and the quarantine cannot differ. The other rows are built here, column by
column, as `validate_rows` builds them, with their place keys (the differential test,
tests/db/test_import_paths.py, compares both paths).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from duban.config import DATETIME_FIELDS, SourceMapping
from duban.db.models import TicketStatus
from duban.ingest.cells import SMALLINT_MAX, whole_numbers
from duban.ingest.fastcsv import ColumnChunk, objects_frame
from duban.ingest.places import place_keys_of_columns, with_place_keys
from duban.ingest.rows import (
    MAX_LENGTH,
    TEXT_FIELDS,
    BadRow,
    Flags,
    TicketRefs,
    _computed_due,
    _mapped,
    _objects,
    resolved_values,
    satisfaction_values,
    status_values,
    urgency_levels,
    validate_rows,
)
from duban.ingest.times import parsed_times, plausible

# Formats read here (digits at fixed places); a mapping with any other: validate_rows.
# format -> (the value's shape, `9` an ASCII digit; where year, month, day, hour, minute,
# second start).
FORMATS: dict[str, tuple[str, tuple[int, ...]]] = {
    "%Y-%m-%d %H:%M:%S": ("9999-99-99 99:99:99", (0, 5, 8, 11, 14, 17)),
    "%Y-%m-%d %H:%M": ("9999-99-99 99:99", (0, 5, 8, 11, 14)),
    "%Y-%m-%d": ("9999-99-99", (0, 5, 8)),
    "%Y/%m/%d %H:%M:%S": ("9999/99/99 99:99:99", (0, 5, 8, 11, 14, 17)),
    "%Y/%m/%d %H:%M": ("9999/99/99 99:99", (0, 5, 8, 11, 14)),
    "%Y/%m/%d": ("9999/99/99", (0, 5, 8)),
}
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # as cells.py's _CONTROL, for RE2
# Years read here (pandas reads others too, or not: validate_rows asks it).
YEARS = (1900, 2199)
# Columns nearly all distinct: converted directly, not through their distinct values.
_DISTINCT = frozenset({"external_id", "address", "content", "caller_phone"})


def columnar_mapping(mapping: SourceMapping) -> bool:
    """Whether chunks of this mapping's exports can be validated here."""
    return all(f in FORMATS for f in mapping.datetime_formats)


def validate_columns(
    chunk: ColumnChunk, mapping: SourceMapping, refs: TicketRefs
) -> tuple[pd.DataFrame, list[BadRow]]:
    """`validate_rows(chunk.frame, chunk.row_numbers(), mapping, refs)`, by columns."""
    numbers = chunk.row_numbers()
    if not columnar_mapping(mapping):
        return validate_rows(chunk.frame, numbers, mapping, refs, chunk.problems)
    n = len(chunk)
    check = _Check(chunk.columns, n)
    out: dict[str, Any] = {}
    flag = check.flag

    ids = check.text("external_id")
    flag(pc.equal(pc.binary_length(ids), 0))
    if chunk.control:  # (cells cells.py's has_control_characters refuses)
        for name in ("external_id", *TEXT_FIELDS, "unit"):
            flag(pc.match_substring_regex(check.text(name), CONTROL))

    local: dict[str, np.ndarray] = {}
    unparseable: dict[str, np.ndarray] = {}
    for name in DATETIME_FIELDS:
        local[name], unread = _times(check.text(name), mapping.datetime_formats)
        unparseable[name] = unread
        flag(unread)
    flag(pc.equal(pc.binary_length(check.text("received_at")), 0))
    times = parsed_times(local, unparseable, mapping, refs.city_zone)
    for name in DATETIME_FIELDS:
        out[name] = times.stored[name]
    for before in times.before_receipt.values():
        flag(before)

    category = check.text("category")
    if mapping.defaults.category:
        category = pc.if_else(
            pc.equal(pc.binary_length(category), 0), mapping.defaults.category, category
        )
    flag(pc.equal(pc.binary_length(category), 0))
    for name, limit in MAX_LENGTH.items():
        values = category if name == "category" else check.text(name)
        flag(pc.greater(pc.utf8_length(values), limit))
    category_codes, categories = _distinct(category)

    unit_codes, units = check.distinct("unit")
    unit_key = units
    if mapping.unit_aliases:
        aliased = _mapped(units, mapping.unit_aliases).astype(object)
        unit_key = aliased.where(aliased.notna(), units)
    unit_ids = _mapped(unit_key, refs.unit_ids)
    flag(((units == "") | unit_ids.isna()).to_numpy()[unit_codes])

    urgency = check.per_value("urgency", lambda v, f: urgency_levels(v, mapping, refs, f))
    if mapping.deadline == "catalogue":
        listed = _mapped(categories, refs.urgency.catalogue).to_numpy(dtype=object)
        listed = listed[category_codes]
        urgency = np.where(pd.isna(listed), urgency, listed)
    out["urgency"] = np.asarray(urgency).astype(np.int64)

    status_raw_codes, status_raw = check.distinct("status")
    mapped = check.per_value("status", lambda v, f: status_values(v, mapping, f))
    given = (status_raw != "").to_numpy()[status_raw_codes]
    derived = np.where(
        np.isnat(out["closed_at"]), TicketStatus.open.value, TicketStatus.closed.value
    ).astype(object)
    status = np.where(given, mapped, derived)
    closed_empty = pc.equal(pc.binary_length(check.text("closed_at")), 0)
    flag((status == TicketStatus.closed.value) & np.isnat(out["closed_at"]) & _bools(closed_empty))
    out["status"] = status
    out["satisfaction"] = check.per_value(
        "satisfaction", lambda v, f: satisfaction_values(v, mapping, f)
    )
    out["resolved"] = check.per_value("resolved", lambda v, f: resolved_values(v, mapping, f))
    for name in ("returned_count", "reassigned_count"):
        out[name] = check.per_value(name, _counts)

    need_due = np.isnat(out["due_at"]) & ~np.isnat(out["received_at"])
    if mapping.deadline == "export_only":
        need_due[:] = False
    if need_due.any():
        rows = np.flatnonzero(need_due)
        due, _, _ = _computed_due(refs, out["received_at"][rows], out["urgency"][rows])
        due_at = out["due_at"].copy()
        due_at[rows] = due
        out["due_at"] = due_at
        failed = np.zeros(n, dtype=bool)
        failed[rows] = np.isnat(due)
        flag(failed)  # the calendar does not know the year: validate_rows says so

    keep = ~check.flagged
    rows_kept = np.flatnonzero(keep)
    columns: dict[str, Any] = {"external_id": _text_objects(ids, "external_id", rows_kept)}
    for name in DATETIME_FIELDS:
        columns[name] = out[name][rows_kept]
    for name in TEXT_FIELDS:
        if name == "category":  # (its distinct values are known)
            objects = categories.to_numpy()[category_codes[rows_kept]]
        else:
            objects = _text_objects(check.text(name), name, rows_kept)
        if name != "category":
            objects[objects == ""] = None
        columns[name] = objects
    columns["unit_id"] = unit_ids.to_numpy()[unit_codes[rows_kept]].astype(np.int64)
    for name in ("urgency", "status", "satisfaction", "resolved"):
        columns[name] = out[name][rows_kept]
    for name in ("returned_count", "reassigned_count"):
        columns[name] = out[name][rows_kept].astype(np.int64)
    problem = _mapped(categories, refs.problem_by_category).astype("Int64")
    columns["problem_id"] = problem.array.take(category_codes[rows_kept])
    good = pd.DataFrame(
        {k: pd.Series(v, dtype=getattr(v, "dtype", None), copy=False) for k, v in columns.items()},
        copy=False,
    )
    good.index = pd.Index(rows_kept)
    keys = place_keys_of_columns(
        check.text("district"), check.text("street"), check.text("address"), rows_kept
    )
    good["place_key"] = pd.Series(keys, index=good.index, dtype=object, copy=False)

    flagged = np.flatnonzero(check.flagged)
    if len(flagged):
        frame = objects_frame(chunk.columns, flagged)
        more, bad = validate_rows(frame, numbers[flagged], mapping, refs)
        more.index = pd.Index(flagged[more.index.to_numpy()])
        more = with_place_keys(more, plain=True)
        good = pd.concat([good, more]).sort_index(kind="stable") if len(more) else good
    else:
        bad = []
    # Within one file the last row of an id wins (an export may list a ticket twice).
    good = good[~_objects(good["external_id"].to_numpy()).duplicated(keep="last").to_numpy()]
    good["problem_id"] = good["problem_id"].astype("Int64")
    good["unit_id"] = good["unit_id"].astype("int64")
    return good, bad


class _Check:
    """A chunk's columns and the rows flagged so far."""

    def __init__(self, columns: dict[str, pa.Array], n: int) -> None:
        self.columns = columns
        self.flagged = np.zeros(n, dtype=bool)
        self.empty = pa.array([""] * n, type=pa.string()) if n else pa.array([], pa.string())
        self._distinct: dict[str, tuple[np.ndarray, pd.Series]] = {}

    def flag(self, mask: Any) -> None:
        self.flagged |= _bools(mask)

    def text(self, name: str) -> pa.Array:
        return self.columns.get(name, self.empty)

    def distinct(self, name: str) -> tuple[np.ndarray, pd.Series]:
        """Each row's code and the column's distinct values (object Series of str)."""
        if name not in self._distinct:
            self._distinct[name] = _distinct(self.text(name))
        return self._distinct[name]

    def per_value(self, name: str, rule: Any) -> np.ndarray:
        """`rule(values, flags)` asked for the column's distinct values, spread to rows;
        the rows of a value it flags are flagged."""
        codes, values = self.distinct(name)
        flags = Flags(len(values))
        result = np.asarray(rule(values, flags))
        self.flag(flags.mask[codes])
        return result[codes]


def _bools(mask: Any) -> np.ndarray:
    if isinstance(mask, pa.Array | pa.ChunkedArray):
        return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(mask, dtype=bool)


def _distinct(values: pa.Array) -> tuple[np.ndarray, pd.Series]:
    encoded = pc.dictionary_encode(values)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    uniques = encoded.dictionary.to_numpy(zero_copy_only=False)
    return codes, _objects(uniques)


def _text_objects(values: pa.Array, name: str, rows: np.ndarray) -> np.ndarray:
    """The text cells of `rows` (positions) as an object array of str (Python strings made
    for those rows only)."""
    if name in _DISTINCT:
        if len(rows) < len(values):
            values = values.take(pa.array(rows, pa.int64()))
            return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)[rows]
    codes, uniques = _distinct(values)
    return uniques.to_numpy()[codes[rows]]


def _counts(values: pd.Series, flags: Flags) -> np.ndarray:
    numbers, bad = whole_numbers(values.to_numpy(dtype=object), SMALLINT_MAX)
    flags.add(bad, "")
    return numbers


def _times(values: pa.Array, formats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Wall times of the cells in the mapping's formats (NaT where empty), and the cells not
    read here (another shape, an impossible date): validate_rows reads those."""
    n = len(values)
    result = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    todo = _bools(pc.greater(pc.binary_length(values), 0))
    for fmt in formats:
        if not todo.any():
            break
        shape, at = FORMATS[fmt]
        cells = _fixed_width(values, len(shape), todo)
        if cells is None:
            continue
        where, data = cells
        shaped = _shaped(data, shape)
        moments, ok = _digits(data, at)
        ok &= shaped & plausible(moments)
        result[where[ok]] = moments[ok]
        todo[where[ok]] = False
    return result, todo


def _fixed_width(
    values: pa.Array, width: int, todo: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The cells of `todo` that are `width` bytes long: their positions and their bytes (a
    matrix, a row per cell), read from pyarrow's buffers."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
    offsets = offsets[values.offset : values.offset + len(values) + 1]
    where = np.flatnonzero(todo & (np.diff(offsets) == width))
    if not len(where):
        return None
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    at = offsets[where][:, None] + np.arange(width)
    return where, data[at]


def _shaped(data: np.ndarray, shape: str) -> np.ndarray:
    """Which rows of `data` (bytes) are of the shape: `9` an ASCII digit, else that byte."""
    ok = np.ones(len(data), dtype=bool)
    for column, expected in enumerate(shape):
        if expected == "9":
            ok &= (data[:, column] >= ord("0")) & (data[:, column] <= ord("9"))
        else:
            ok &= data[:, column] == ord(expected)
    return ok


def _digits(data: np.ndarray, at: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Cells of one shape (bytes, a row each): their times, and which are real dates and
    times (where they are digits at all: `_shaped`)."""
    d = data.astype(np.int64) - ord("0")
    rows = len(data)

    def number(i: int, size: int = 2) -> np.ndarray:
        total = np.zeros(rows, dtype=np.int64)
        for k in range(size):
            total = total * 10 + d[:, i + k]
        return total

    year, month, day = number(at[0], 4), number(at[1]), number(at[2])
    parts = [number(i) for i in at[3:]] + [np.zeros(rows, dtype=np.int64)] * (6 - len(at))
    hour, minute, second = parts
    ok = (year >= YEARS[0]) & (year <= YEARS[1]) & (month >= 1) & (month <= 12)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59) & (day >= 1)
    months = (np.where(ok, year, 2000) - 1970) * 12 + np.where(ok, month, 1) - 1
    first = months.astype("datetime64[M]").astype("datetime64[D]")
    length = (months + 1).astype("datetime64[M]").astype("datetime64[D]") - first
    ok &= day <= length.astype(np.int64)
    seconds = (first.astype(np.int64) + day - 1) * 86400 + hour * 3600 + minute * 60 + second
    moments = (seconds * 1_000_000).astype("datetime64[us]")
    return moments, ok
