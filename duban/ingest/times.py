"""The time columns of an export: parsed in the export's zone, date-only columns given their
declared time of day, ordered against the receipt, converted to the city's zone (vectorised).

A column the mapping lists under `date_only` carries a date, written bare (`2017-12-27`) or
as midnight (`12/27/2017 12:00:00 AM`). Such a value is compared with the receipt by date
(closed on the day received is fine, the day before is not) and stored at the time of day
the mapping declares: `start` 00:00:00, `end` 23:59:59 (the second the calendar's due times
use). A `start` value on the day of receipt is stored at the receipt time, never before it.
A value with another time of day is a real time and kept as it is: exports mix both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from duban.config import DATETIME_FIELDS, SourceMapping
from duban.ingest.cells import with_offset

END_OF_DAY = np.timedelta64(24 * 3600 - 1, "s")
ORDERED_AFTER_RECEIPT = ("dispatched_at", "first_response_at", "resolved_at", "closed_at", "due_at")


@dataclass
class ExportTimes:
    """The time columns of a chunk: stored values (city zone) and the checks on them."""

    stored: dict[str, np.ndarray]  # field -> datetime64[us], naive in the city's zone
    unparseable: dict[str, np.ndarray]  # field -> bool: a value no format reads
    before_receipt: dict[str, np.ndarray]  # field -> bool: earlier than received_at


# The times an export can mean: pandas reads "-3.5" as the year -3 and numpy knows the
# year 0, which neither Python's dates nor the calendar do (one such cell stopped a whole
# import); a time outside these years is unparseable, and quarantines its row alone.
EARLIEST = np.datetime64("1900-01-01T00:00:00", "us")
LATEST = np.datetime64("2200-01-01T00:00:00", "us")


def plausible(moments: np.ndarray) -> np.ndarray:
    """Where `moments` (datetime64[us]) fall in the years an export can mean."""
    return (moments >= EARLIEST) & (moments < LATEST)


def parse_datetimes(
    values: np.ndarray, mapping: SourceMapping, export_zone: str | None = None
) -> np.ndarray:
    """Parse with the mapping's formats in order (ISO 8601 last), as written (the export's
    wall time); NaT where nothing fits.

    A value with its own offset (`+08:00`, `Z`) is converted, row by row, to the export's
    wall time (`export_zone`), so a chunk may mix offsets and naive values.
    """
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[us]")
    todo = values != ""
    if export_zone is not None:
        aware = with_offset(values) & todo
        zone = ZoneInfo(export_zone)
        for i in np.flatnonzero(aware).tolist():
            text = str(values[i]).strip().replace(" ", "T", 1).replace(" ", "")
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                continue  # left NaT: unparseable
            if moment.tzinfo is not None:
                local = moment.astimezone(zone).replace(tzinfo=None)
                if EARLIEST <= np.datetime64(local, "us") < LATEST:
                    result[i] = np.datetime64(local, "us")
        todo &= ~aware
    for fmt in [*mapping.datetime_formats, "ISO8601"]:
        if not todo.any():
            break
        where = np.flatnonzero(todo)
        subset = values if len(where) == len(values) else values[where]
        parsed = pd.to_datetime(subset, format=fmt, errors="coerce")
        parsed_us = np.asarray(parsed.as_unit("us").to_numpy(), dtype="datetime64[us]")
        ok = plausible(parsed_us)
        result[where[ok]] = parsed_us[ok]
        todo[where[ok]] = False
    return result


def to_city_zone(local: np.ndarray, export_zone: str, city_zone: ZoneInfo) -> np.ndarray:
    """Wall times of `export_zone` as naive wall times of the city's zone."""
    if export_zone == str(city_zone) or np.isnat(local).all():
        return local
    # Ambiguous wall times (the DST fall-back hour) are read as standard time.
    zoned = pd.Series(local).dt.tz_localize(
        export_zone, ambiguous=np.zeros(len(local), dtype=bool), nonexistent="shift_forward"
    )
    converted = zoned.dt.tz_convert(city_zone).dt.tz_localize(None).astype("datetime64[us]")
    return converted.to_numpy()


def _day(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[D]")


def export_times(
    column: Callable[[str], np.ndarray], mapping: SourceMapping, city_zone: ZoneInfo
) -> ExportTimes:
    """Every time field of a chunk; `column(field)` gives its raw strings ("" when empty)."""
    local: dict[str, np.ndarray] = {}
    unparseable: dict[str, np.ndarray] = {}
    export_zone = mapping.zone(str(city_zone))
    for name in DATETIME_FIELDS:
        values = column(name)
        local[name] = parse_datetimes(values, mapping, export_zone)
        unparseable[name] = (values != "") & np.isnat(local[name])
    return parsed_times(local, unparseable, mapping, city_zone)


def parsed_times(
    local: dict[str, np.ndarray],
    unparseable: dict[str, np.ndarray],
    mapping: SourceMapping,
    city_zone: ZoneInfo,
) -> ExportTimes:
    """The time fields parsed (`local`: the export's wall times, NaT where empty or
    unparseable): date-only values placed in their day, ordered against the receipt,
    converted to the city's zone."""
    export_zone = mapping.zone(str(city_zone))
    local = dict(local)
    # Date-only values: those at midnight in a column declared date-only.
    dates = {
        name: np.where(local[name] == _day(local[name]), _day(local[name]), np.datetime64("NaT"))
        for name in mapping.date_only
    }
    received = local["received_at"].copy()
    received_day = _day(received)
    no_date = np.zeros(len(received), dtype=bool)
    received_is_date = ~np.isnat(dates["received_at"]) if "received_at" in dates else no_date
    before: dict[str, np.ndarray] = {}
    for name in ORDERED_AFTER_RECEIPT:
        # A date compares with a date: the day received is not "before" it.
        by_date = received_is_date | (~np.isnat(dates[name]) if name in dates else no_date)
        before[name] = np.where(by_date, _day(local[name]) < received_day, local[name] < received)
    for name, part in mapping.date_only.items():
        day = dates[name]
        has = ~np.isnat(day)
        values = local[name].copy()
        if part == "end":
            values[has] = day[has].astype("datetime64[us]") + END_OF_DAY
        elif name != "received_at":
            # Closed "on the day received" at its start would precede the receipt.
            raise_to = has & (day == received_day) & (values < received)
            values[raise_to] = received[raise_to]
        local[name] = values
    stored = {name: to_city_zone(local[name], export_zone, city_zone) for name in DATETIME_FIELDS}
    return ExportTimes(stored, unparseable, before)
