"""Validating a chunk of raw export rows into ticket records, column by column (vectorised).

`validate_rows` is pure: it takes the raw strings and what it needs to know of the city
(`TicketRefs`) and returns the good rows as typed columns and the bad rows with every reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from duban.config import DATETIME_FIELDS, TICKET_FIELDS, SourceMapping, UrgencyFile
from duban.db.models import TicketStatus
from duban.ingest.cells import (
    SMALLINT_MAX,
    has_control_characters,
    partial_dates,
    shown,
    undecodable,
    whole_numbers,
)
from duban.ingest.times import export_times

# Column widths of the tickets table: longer values are refused, not cut.
MAX_LENGTH = {
    "external_id": 64,
    "category": 100,
    "district": 100,
    "street": 100,
    "community": 100,
    "address": 300,
    "caller_phone": 40,
}
TEXT_FIELDS = ("category", "district", "street", "community", "address", "content", "caller_phone")
# Columns written to the tickets table (besides source, unit_id, problem_id, row_hash): every
# field of an export but the unit, in that order.
RECORD_FIELDS = tuple(f for f in TICKET_FIELDS if f != "unit")


_EPOCH = date(1970, 1, 1)
DEFAULT_BOOLEANS: dict[str, Any] = {"1": True, "0": False, "true": True, "false": False}


class Calendar(Protocol):
    def due_at(self, received: datetime, working_days: int) -> datetime: ...


@dataclass
class TicketRefs:
    """What validation needs to know of the city."""

    unit_ids: dict[str, int]  # export value (code, name or alias, per the mapping) -> unit id
    problem_by_category: dict[str, int]
    urgency: UrgencyFile
    calendar: Calendar
    city_zone: ZoneInfo
    due_cache: dict[tuple[date, int], datetime | ValueError] = field(default_factory=dict)


@dataclass
class BadRow:
    row_number: int
    errors: list[dict[str, str]]  # {field, column, value, reason}
    raw: dict[str, str]
    undecodable: bool = False  # a cell holds bytes the file's encoding does not decode


class _Errors:
    def __init__(self, frame: pd.DataFrame, mapping: SourceMapping) -> None:
        self.frame = frame
        self.mapping = mapping
        self.by_row: dict[int, list[dict[str, str]]] = {}

    def add(
        self, mask: pd.Series | np.ndarray, field_name: str, reason: str | None = None, **fmt: Any
    ) -> None:
        """Record `reason` for every row where `mask` is true; `{value}` is the raw cell."""
        flags = np.asarray(mask, dtype=bool)
        if not flags.any():
            return
        column = self.mapping.columns.get(field_name, field_name)  # type: ignore[call-overload]
        raw = self.frame.get(field_name)
        for idx in np.flatnonzero(flags).tolist():
            value = "" if raw is None else shown(str(raw.iat[idx]))
            text = (reason or "invalid value").format(value=value, **fmt)
            self.by_row.setdefault(idx, []).append(
                {"field": field_name, "column": column, "value": value, "reason": text}
            )


def _due_for(refs: TicketRefs, day: date, level: int) -> datetime | ValueError:
    """The due time for a ticket received on `day` at `level`, or the calendar's error."""
    key = (day, level)
    if key not in refs.due_cache:
        try:
            limit = refs.urgency.limit(level).working_days
            refs.due_cache[key] = refs.calendar.due_at(
                datetime.combine(day, datetime.min.time()), limit
            )
        except ValueError as exc:  # the calendar does not know the year
            refs.due_cache[key] = exc
    return refs.due_cache[key]


def _computed_due(
    refs: TicketRefs, received: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[ValueError | None]]:
    """Due times for (received time, urgency level) pairs, vectorised.

    The calendar is asked once per distinct (day, level) — a chunk holds few — and the
    answers are spread back by index. Returns the due time per row (NaT where the calendar
    failed), the index of each row's (day, level) pair, and per pair the calendar's error.
    """
    days = received.astype("datetime64[D]").astype(np.int64)
    key = days * 16 + levels.astype(np.int64)  # levels are small positive ints
    codes, uniques = pd.factorize(key, sort=False)
    due = np.empty(len(uniques), dtype="datetime64[us]")
    failures: list[ValueError | None] = []
    for i, k in enumerate(uniques.tolist()):
        day = _EPOCH + timedelta(days=k // 16)
        answer = _due_for(refs, day, k % 16)
        if isinstance(answer, Exception):
            due[i] = np.datetime64("NaT")
            failures.append(answer)
        else:
            due[i] = np.datetime64(answer, "us")
            failures.append(None)
    return due[codes], codes, failures


def _mapped(values: pd.Series, table: Mapping[str, Any]) -> pd.Series:
    """`values.map(table)` (the same values and dtype) without letting pandas infer a string
    dtype from the raw cells: with pyarrow installed that would encode them as UTF-8, and a
    cell with bytes its file's encoding cannot decode (kept as surrogates) cannot be."""
    mapper = pd.Series(table) if table else pd.Series([], dtype=object)
    position = {key: i for i, key in enumerate(table)}
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    found = np.array([position.get(u, -1) for u in uniques.tolist()], dtype=np.intp)
    indexer = np.append(found, -1)[codes]  # (a code of -1, a missing cell: found[-1] = -1)
    taken = pd.api.extensions.take(mapper.array, indexer, allow_fill=True)
    return pd.Series(taken, index=values.index, copy=False)


def _map_values(
    values: pd.Series, table: dict[str, Any], errors: _Errors, field_name: str
) -> pd.Series:
    mapped = _mapped(values, table)
    unknown = (
        (values != "") & mapped.isna() & ~values.isin([k for k, v in table.items() if v is None])
    )
    expected = ", ".join(repr(k) for k in list(table)[:12])
    errors.add(unknown, field_name, "unknown value {value!r} (expected one of: " + expected + ")")
    return mapped


class Flags:
    """An `_Errors` that only marks the flagged positions (for the columnar path, which
    asks validate_rows for the reasons of the rows it flags)."""

    def __init__(self, n: int) -> None:
        self.mask = np.zeros(n, dtype=bool)

    def add(self, mask: Any, field_name: str, reason: str | None = None, **fmt: Any) -> None:
        self.mask |= np.asarray(mask, dtype=bool)


def urgency_levels(
    urgency_raw: pd.Series, mapping: SourceMapping, refs: TicketRefs, errors: Any
) -> pd.Series:
    """The urgency level of each cell: mapped value, or a level number, or the default
    (before the catalogue's level by category)."""
    default_level = mapping.defaults.urgency or refs.urgency.default_level
    if mapping.values.urgency:
        urgency = _map_values(urgency_raw, mapping.values.urgency, errors, "urgency")
    else:
        urgency = pd.to_numeric(urgency_raw.where(urgency_raw != ""), errors="coerce")
        errors.add((urgency_raw != "") & urgency.isna(), "urgency", "not a level number: {value!r}")
    urgency = urgency.where(urgency_raw != "", default_level)
    levels = {lv.level for lv in refs.urgency.levels}
    unknown_level = urgency.notna() & ~urgency.isin(levels)
    errors.add(unknown_level, "urgency", f"unknown urgency level (config has {sorted(levels)})")
    urgency = urgency.where(urgency.isin(levels), default_level)
    return urgency


def status_values(status_raw: pd.Series, mapping: SourceMapping, errors: Any) -> np.ndarray:
    """The mapped status of each cell (NaN where unmapped: derived or quarantined)."""
    status_table = {k: v.value for k, v in mapping.values.status.items()}
    _map_values(status_raw, dict(mapping.values.status), errors, "status")
    return _mapped(status_raw, status_table).to_numpy(dtype=object)


def satisfaction_values(sat_raw: pd.Series, mapping: SourceMapping, errors: Any) -> np.ndarray:
    """The satisfaction of each cell (None: none given, or the mapping says none)."""
    _map_values(sat_raw, dict(mapping.values.satisfaction), errors, "satisfaction")
    sat_table = {
        k: (v.value if v is not None else None) for k, v in mapping.values.satisfaction.items()
    }
    satisfaction = _mapped(sat_raw, sat_table).to_numpy(dtype=object, copy=True)
    satisfaction[pd.isna(satisfaction)] = None
    return satisfaction


def resolved_values(res_raw: pd.Series, mapping: SourceMapping, errors: Any) -> np.ndarray:
    """Whether each cell says resolved (None: not given)."""
    if mapping.values.resolved:
        # An Excel boolean cell (TRUE, FALSE: sources.py) is one whatever the mapping lists.
        table = {"TRUE": True, "FALSE": False, **mapping.values.resolved}
        resolved = _map_values(res_raw, table, errors, "resolved")
    else:
        lowered = _objects([v.lower() for v in res_raw.to_numpy()])
        resolved = _map_values(lowered, DEFAULT_BOOLEANS, errors, "resolved")
    values = resolved.to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = None
    return values


def _parse_counts(values: pd.Series, errors: _Errors, field_name: str) -> pd.Series:
    """A count column (smallint in the tickets table): exact, in range, else quarantined."""
    numbers, bad = whole_numbers(values.to_numpy(dtype=object), SMALLINT_MAX)
    errors.add(bad, field_name, f"not a whole number from 0 to {SMALLINT_MAX}: {{value!r}}")
    return pd.Series(numbers, copy=False)


def _objects(values: Any) -> pd.Series:
    """An object Series without pandas' string inference (and its cost)."""
    return pd.Series(np.asarray(values, dtype=object), dtype=object, copy=False)


def _strings(series: pd.Series) -> pd.Series:
    """A raw column as an object Series of str ("" for missing), index 0..n-1."""
    values = series.to_numpy(dtype=object)
    if series.dtype != object or series.hasnans:
        values = np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)
    return _objects(values)


def _lengths(values: np.ndarray) -> np.ndarray:
    return np.fromiter(map(len, values), dtype=np.int64, count=len(values))


def validate_rows(
    frame: pd.DataFrame,
    rows: int | np.ndarray,
    mapping: SourceMapping,
    refs: TicketRefs,
    problems: dict[int, list[dict[str, str]]] | None = None,
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Split raw rows into good ticket records and quarantined rows with their reasons.

    `rows`: the spreadsheet row number of each row (or of the first, the rest following);
    `problems`: what the reader found wrong with rows (by position), quarantined with them.
    Column by column on numpy arrays: no Python work per row except for the bad rows.
    """
    frame = frame.reset_index(drop=True)
    errors = _Errors(frame, mapping)
    n = len(frame)
    numbers = (
        np.arange(rows, rows + n, dtype=np.int64) if isinstance(rows, int) else np.asarray(rows)
    )
    for idx, found in (problems or {}).items():
        errors.by_row.setdefault(idx, []).extend(found)
    empty = _objects([""] * n)
    raw = {str(name): _strings(frame[name]) for name in frame.columns}
    garbled = np.zeros(n, dtype=bool)
    for name, values in raw.items():
        bad_bytes = undecodable(values.to_numpy())
        garbled |= bad_bytes
        errors.add(
            bad_bytes,
            name,
            f"not {mapping.encoding} text: the bytes it cannot decode shown as \\xNN",
        )

    def col(name: str) -> pd.Series:
        return raw.get(name, empty)

    out: dict[str, Any] = {}
    out["external_id"] = col("external_id").to_numpy()
    errors.add(out["external_id"] == "", "external_id", "missing")

    formats = " or ".join(mapping.datetime_formats)
    times = export_times(lambda name: col(name).to_numpy(), mapping, refs.city_zone)
    for name in DATETIME_FIELDS:
        errors.add(
            times.unparseable[name], name, "unparseable date {value!r} (format " + formats + ")"
        )
        out[name] = times.stored[name]
    errors.add(col("received_at").to_numpy() == "", "received_at", "missing")
    errors.add(
        partial_dates(col("received_at").to_numpy()),
        "received_at",
        "not a point in time (year or month only): {value!r}",
    )

    for name in TEXT_FIELDS:
        out[name] = col(name).to_numpy()
    for name in ("external_id", *TEXT_FIELDS, "unit"):
        errors.add(
            has_control_characters(col(name).to_numpy()),
            name,
            "control character in text (shown as \\xNN in the value)",
        )
    if mapping.defaults.category:
        category = out["category"].copy()
        category[category == ""] = mapping.defaults.category
        out["category"] = category
    errors.add(out["category"] == "", "category", "missing")
    for name, limit in MAX_LENGTH.items():
        errors.add(_lengths(out[name]) > limit, name, f"longer than {limit} characters")

    unit_raw = col("unit")
    unit_key = unit_raw
    if mapping.unit_aliases:
        aliased = _mapped(unit_raw, mapping.unit_aliases).astype(object)
        unit_key = aliased.where(aliased.notna(), unit_raw)
    unit_id = _mapped(unit_key, refs.unit_ids)
    errors.add(unit_raw == "", "unit", "missing")
    errors.add(
        (unit_raw != "") & unit_id.isna(),
        "unit",
        "unknown unit {value!r} (by " + mapping.unit_by + ")",
    )

    # Urgency: mapped value, or a level number, or the default.
    urgency = urgency_levels(col("urgency"), mapping, refs, errors)
    if mapping.deadline == "catalogue":  # the dispatch catalogue's level for its category
        listed = _mapped(_objects(out["category"]), refs.urgency.catalogue)
        urgency = listed.where(listed.notna(), urgency)
    out["urgency"] = urgency.to_numpy(dtype=np.int64)

    # Status: mapped, or derived from the close time when the export has none.
    status_raw = col("status")
    mapped_values = status_values(status_raw, mapping, errors)
    derived = np.where(
        np.isnat(out["closed_at"]), TicketStatus.open.value, TicketStatus.closed.value
    ).astype(object)
    status = np.where(status_raw.to_numpy() != "", mapped_values, derived)
    out["status"] = status
    closed_without_time = (status == TicketStatus.closed.value) & np.isnat(out["closed_at"])
    errors.add(
        closed_without_time & (col("closed_at").to_numpy() == ""),
        "closed_at",
        "status is closed but there is no close time",
    )

    out["satisfaction"] = satisfaction_values(col("satisfaction"), mapping, errors)
    out["resolved"] = resolved_values(col("resolved"), mapping, errors)

    returned = _parse_counts(col("returned_count"), errors, "returned_count")
    out["returned_count"] = returned.to_numpy()
    reassigned = _parse_counts(col("reassigned_count"), errors, "reassigned_count")
    out["reassigned_count"] = reassigned.to_numpy()

    # Order of events (NaT compares false, so a missing time is never "before"); a date-only
    # column by date (duban/ingest/times.py).
    received = out["received_at"]
    for name in ("dispatched_at", "first_response_at", "resolved_at", "closed_at"):
        label = name.removesuffix("_at").replace("_", " ")
        before = times.before_receipt[name]
        errors.add(before, name, f"{label} before received ({{value}} < received)")
    errors.add(times.before_receipt["due_at"], "due_at", "due before received: {value!r}")

    # Due time: from the export, else from the urgency level and the working-day calendar —
    # or none at all (无办理时限) when the mapping takes the export's deadline only.
    need_due = np.isnat(out["due_at"]) & ~np.isnat(received)
    if mapping.deadline == "export_only":
        need_due[:] = False
    if need_due.any():
        rows = np.flatnonzero(need_due)
        due, codes, failures = _computed_due(refs, received[rows], out["urgency"][rows])
        due_at = out["due_at"].copy()
        due_at[rows] = due
        out["due_at"] = due_at
        failed = np.isnat(due)
        if failed.any():
            days = received[rows].astype("datetime64[D]")
            for i in np.flatnonzero(failed).tolist():
                errors.by_row.setdefault(int(rows[i]), []).append(
                    {
                        "field": "due_at",
                        "column": "(computed)",
                        "value": str(days[i]),
                        "reason": str(failures[codes[i]]),
                    }
                )

    problem_id = _mapped(_objects(out["category"]), refs.problem_by_category)

    for name in TEXT_FIELDS:  # an empty optional field is NULL, not ""
        if name != "category":
            values = out[name].copy()
            values[values == ""] = None
            out[name] = values

    bad_index = sorted(errors.by_row)
    cells = {str(k): frame[k].to_numpy(dtype=object) for k in frame.columns}  # not .loc per row
    bad_rows = [
        BadRow(
            int(numbers[i]),
            errors.by_row[i],
            {k: shown(str(v[i])) for k, v in cells.items()},
            bool(garbled[i]),
        )
        for i in bad_index
    ]
    keep = np.ones(n, dtype=bool)
    keep[bad_index] = False
    # Within one file the last row of an id wins (an export may list a ticket twice).
    keep &= ~_objects(out["external_id"]).where(keep).duplicated(keep="last").to_numpy()
    rows_kept = np.flatnonzero(keep)
    out["unit_id"] = unit_id.to_numpy()
    out["problem_id"] = problem_id.to_numpy()
    columns: dict[str, Any] = {}
    for name in ("external_id", *DATETIME_FIELDS, *TEXT_FIELDS, "unit_id",
                 "urgency", "status", "satisfaction", "resolved", "returned_count",
                 "reassigned_count", "problem_id"):  # fmt: skip
        kept = out[name][rows_kept]
        columns[name] = pd.Series(kept, dtype=kept.dtype, copy=False)
    good = pd.DataFrame(columns, copy=False)
    good.index = pd.Index(rows_kept)
    good["unit_id"] = good["unit_id"].astype("int64")  # unknown units were quarantined
    good["problem_id"] = good["problem_id"].astype("Int64")  # nullable: not every ticket
    return good, bad_rows
