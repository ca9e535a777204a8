"""Validating a chunk of raw export rows into ticket records, column by column (vectorised).

`validate_rows` is pure: it takes the raw strings and what it needs to know of the city
(`TicketRefs`) and returns the good rows as typed columns and the bad rows with every reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from duban.config import SourceMapping, UrgencyFile
from duban.models import TicketStatus

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
DATETIME_FIELDS = (
    "received_at",
    "dispatched_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "due_at",
)
TEXT_FIELDS = ("category", "district", "street", "community", "address", "content", "caller_phone")
# Columns written to the tickets table (besides source, unit_id, problem_id, row_hash).
RECORD_FIELDS = (
    "external_id",
    *DATETIME_FIELDS,
    *TEXT_FIELDS,
    "urgency",
    "status",
    "resolved",
    "satisfaction",
    "returned_count",
    "reassigned_count",
)


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


class _Errors:
    def __init__(self, frame: pd.DataFrame, mapping: SourceMapping) -> None:
        self.frame = frame
        self.mapping = mapping
        self.by_row: dict[int, list[dict[str, str]]] = {}

    def add(self, mask: pd.Series, field_name: str, reason: str | None = None, **fmt: Any) -> None:
        """Record `reason` for every row where `mask` is true; `{value}` is the raw cell."""
        if not mask.any():
            return
        column = self.mapping.columns.get(field_name, field_name)  # type: ignore[call-overload]
        raw = self.frame.get(field_name)
        for idx in mask[mask].index:
            value = "" if raw is None else str(raw.at[idx])
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


def _parse_datetimes(values: pd.Series, mapping: SourceMapping, city_zone: ZoneInfo) -> pd.Series:
    """Parse with the mapping's formats in order (ISO 8601 last); NaT where nothing fits."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    todo = values != ""
    for fmt in [*mapping.datetime_formats, "ISO8601"]:
        if not todo.any():
            break
        parsed = pd.to_datetime(values[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        result.loc[ok[ok].index] = parsed[ok].astype("datetime64[us]")
        todo.loc[ok[ok].index] = False
    if mapping.timezone != str(city_zone) and result.notna().any():
        # Ambiguous wall times (the DST fall-back hour) are read as standard time.
        local = result.dt.tz_localize(
            mapping.timezone,
            ambiguous=np.zeros(len(result), dtype=bool),
            nonexistent="shift_forward",
        )
        result = local.dt.tz_convert(city_zone).dt.tz_localize(None).astype("datetime64[us]")
    return result


def _map_values(
    values: pd.Series, table: dict[str, Any], errors: _Errors, field_name: str
) -> pd.Series:
    mapped = values.map(table)
    unknown = (
        (values != "") & mapped.isna() & ~values.isin([k for k, v in table.items() if v is None])
    )
    expected = ", ".join(repr(k) for k in list(table)[:12])
    errors.add(unknown, field_name, "unknown value {value!r} (expected one of: " + expected + ")")
    return mapped


def _parse_counts(values: pd.Series, errors: _Errors, field_name: str) -> pd.Series:
    numbers = pd.to_numeric(values.where(values != "", "0"), errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers != numbers.round())
    errors.add(bad, field_name, "not a whole number >= 0: {value!r}")
    return numbers.where(~bad, 0).astype("int64")


def validate_rows(
    frame: pd.DataFrame, first_row: int, mapping: SourceMapping, refs: TicketRefs
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Split raw rows into good ticket records and quarantined rows with their reasons."""
    frame = frame.reset_index(drop=True)
    errors = _Errors(frame, mapping)
    n = len(frame)
    empty = pd.Series([""] * n, index=frame.index, dtype=str)

    def col(name: str) -> pd.Series:
        return frame.get(name, empty)

    out = pd.DataFrame(index=frame.index)
    out["external_id"] = col("external_id")
    errors.add(out["external_id"] == "", "external_id", "missing")

    for name in DATETIME_FIELDS:
        raw = col(name)
        parsed = _parse_datetimes(raw, mapping, refs.city_zone)
        formats = " or ".join(mapping.datetime_formats)
        errors.add(
            (raw != "") & parsed.isna(), name, "unparseable date {value!r} (format " + formats + ")"
        )
        out[name] = parsed
    errors.add(col("received_at") == "", "received_at", "missing")

    for name in TEXT_FIELDS:
        out[name] = col(name)
    if mapping.defaults.category:
        out["category"] = out["category"].where(out["category"] != "", mapping.defaults.category)
    errors.add(out["category"] == "", "category", "missing")
    for name, limit in MAX_LENGTH.items():
        too_long = out[name].str.len() > limit
        errors.add(too_long, name, f"longer than {limit} characters")

    unit_raw = col("unit")
    unit_key = unit_raw.map(lambda v: mapping.unit_aliases.get(v, v))
    out["unit_id"] = unit_key.map(refs.unit_ids)
    errors.add(unit_raw == "", "unit", "missing")
    errors.add(
        (unit_raw != "") & out["unit_id"].isna(),
        "unit",
        "unknown unit {value!r} (by " + mapping.unit_by + ")",
    )

    # Urgency: mapped value, or a level number, or the default.
    urgency_raw = col("urgency")
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
    out["urgency"] = urgency.where(urgency.isin(levels), default_level).astype("int64")

    # Status: mapped, or derived from the close time when the export has none.
    status_raw = col("status")
    mapped_status = _map_values(status_raw, dict(mapping.values.status), errors, "status")
    derived = np.where(out["closed_at"].notna(), TicketStatus.closed, TicketStatus.open)
    status = mapped_status.where(status_raw != "", pd.Series(derived, index=frame.index))
    out["status"] = status.map(lambda s: s.value if isinstance(s, TicketStatus) else s)
    closed_without_time = (out["status"] == TicketStatus.closed.value) & out["closed_at"].isna()
    errors.add(
        closed_without_time & (col("closed_at") == ""),
        "closed_at",
        "status is closed but there is no close time",
    )

    sat_raw = col("satisfaction")
    sat = _map_values(sat_raw, dict(mapping.values.satisfaction), errors, "satisfaction")
    out["satisfaction"] = sat.map(lambda s: getattr(s, "value", None) if s is not None else None)

    res_raw = col("resolved")
    if mapping.values.resolved:
        resolved = _map_values(res_raw, dict(mapping.values.resolved), errors, "resolved")
    else:
        resolved = _map_values(res_raw.str.lower(), DEFAULT_BOOLEANS, errors, "resolved")
    out["resolved"] = resolved.astype(object).where(resolved.notna(), None)

    out["returned_count"] = _parse_counts(col("returned_count"), errors, "returned_count")
    out["reassigned_count"] = _parse_counts(col("reassigned_count"), errors, "reassigned_count")

    # Order of events.
    received = out["received_at"]
    for name in ("dispatched_at", "first_response_at", "resolved_at", "closed_at"):
        before = out[name].notna() & received.notna() & (out[name] < received)
        label = name.removesuffix("_at").replace("_", " ")
        errors.add(before, name, f"{label} before received ({{value}} < received)")
    due_before = out["due_at"].notna() & received.notna() & (out["due_at"] < received)
    errors.add(due_before, "due_at", "due before received: {value!r}")

    # Due time: from the export, else from the urgency level and the working-day calendar.
    need_due = out["due_at"].isna() & received.notna()
    if need_due.any():
        pairs = pd.DataFrame(
            {"day": received[need_due].dt.normalize(), "level": out.loc[need_due, "urgency"]}
        )
        computed = {
            key: _due_for(refs, key[0].date(), int(key[1]))
            for key in pairs.drop_duplicates().itertuples(index=False, name=None)
        }
        dues = pd.Series(
            [computed[key] for key in pairs.itertuples(index=False, name=None)], index=pairs.index
        )
        failed = dues.map(lambda d: isinstance(d, Exception))
        for idx in failed[failed].index:
            errors.by_row.setdefault(idx, []).append(
                {
                    "field": "due_at",
                    "column": "(computed)",
                    "value": str(pairs.at[idx, "day"].date()),
                    "reason": str(dues.at[idx]),
                }
            )
        ok = dues[~failed]
        out.loc[ok.index, "due_at"] = pd.to_datetime(ok.astype("datetime64[us]"))

    out["problem_id"] = out["category"].map(refs.problem_by_category)

    for name in TEXT_FIELDS:  # an empty optional field is NULL, not ""
        if name != "category":
            out[name] = out[name].astype(object).where(out[name] != "", None)

    bad_index = sorted(errors.by_row)
    bad_rows = [
        BadRow(first_row + i, errors.by_row[i], {k: str(v) for k, v in frame.loc[i].items()})
        for i in bad_index
    ]
    good = out.drop(index=bad_index)
    # Within one file the last row of an id wins (an export may list a ticket twice).
    good = good.drop_duplicates(subset="external_id", keep="last")
    good["unit_id"] = good["unit_id"].astype("int64")  # unknown units were quarantined
    good["problem_id"] = good["problem_id"].astype("Int64")  # nullable: not every ticket
    return good, bad_rows
