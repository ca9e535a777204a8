"""`duban metrics`: the rates frame (duban/queries/metrics.py `metrics_frame`) written as CSV
or JSON that Excel users can open. Definitions: docs/metrics.md."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any, TextIO

import pandas as pd

from duban.rules.formulas import csv_safe

FORMATS = ("csv", "json")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def write_metrics(frame: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """`frame` as CSV (UTF-8 with a BOM, for Excel; empty cells for missing rates) or JSON (a
    list of objects, null for missing rates). Rates stay fractions (0.953, not 95.3)."""
    if fmt == "csv":
        out.write("\ufeff")
        safe = frame.map(csv_safe)  # no cell of data runs as a formula
        safe.to_csv(out, index=False, na_rep="", lineterminator="\n")
    elif fmt == "json":
        rows = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        json.dump(rows, out, ensure_ascii=False, indent=2, allow_nan=False)
        out.write("\n")
    else:
        raise ValueError(f"--format: must be one of {', '.join(FORMATS)} (got {fmt!r})")
