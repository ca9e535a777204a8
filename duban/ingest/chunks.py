"""What every export reader gives: chunks of raw strings (RawChunk), and the pieces the
readers share to build them (the header check, a row's problem, the chunk builder).

Nothing here interprets values: every cell comes out as a stripped string ("" when empty),
so that validation can name the exact bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duban.config import SourceMapping


class ExportError(ValueError):
    """The file as a whole cannot be read (missing, wrong format, missing columns)."""


@dataclass(frozen=True)
class RawChunk:
    first_row: int  # spreadsheet row number of the chunk's first data row (the header is row 1)
    frame: pd.DataFrame  # columns: the mapped ticket fields, values: stripped str (object dtype)
    sheet: str | None = None
    bytes_read: int = 0  # for progress: how far into the file this chunk ends
    # The spreadsheet row number of each row of `frame` (blank rows skipped leave gaps);
    # None: consecutive from `first_row`.
    rows: np.ndarray | None = None
    # What the reader found wrong with a row (by position in `frame`): {field, column,
    # value, reason}, as validation's findings; the row is quarantined.
    problems: dict[int, list[dict[str, str]]] = field(default_factory=dict)
    blank_lines: int = 0  # blank rows skipped since the previous chunk (each a row number)
    notes: tuple[str, ...] = ()  # for the summary (e.g. sheets without the mapped header)
    sheet_index: int = 0  # the sheet's position in its workbook (0: the first, or a CSV file)

    def row_numbers(self) -> np.ndarray:
        if self.rows is not None:
            return self.rows
        return np.arange(self.first_row, self.first_row + len(self.frame), dtype=np.int64)


def check_header(path: Path, header: list[str], mapping: SourceMapping) -> dict[str, str]:
    """Map ticket field -> export column, or raise naming every column the file lacks."""
    present = {h.strip() for h in header}
    missing = {f: c for f, c in mapping.columns.items() if c not in present}
    if missing:
        listed = ", ".join(f"{c!r} (for {f})" for f, c in missing.items())
        shown = ", ".join(repr(h) for h in header[:30])
        raise ExportError(
            f"{path}: the file lacks columns that source {mapping.name!r} maps: {listed}. "
            f"Its header has: {shown}"
        )
    return {str(field): column for field, column in mapping.columns.items()}


def problem(field: str, column: str, value: str, reason: str) -> dict[str, str]:
    return {"field": field, "column": column, "value": value, "reason": reason}


class ChunkBuilder:
    """Rows of mapped values gathered into a RawChunk."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.rows: list[int] = []
        self.values: list[tuple[str, ...]] = []
        self.problems: dict[int, list[dict[str, str]]] = {}
        self.blank = 0
        self.sheet: str | None = None
        self.sheet_index = 0

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: int, values: Any, problem: dict[str, str] | None = None) -> None:
        if problem is not None:
            self.problems[len(self.rows)] = [problem]
        self.rows.append(row)
        self.values.append(values)

    def take(self, bytes_read: int) -> RawChunk:
        first = self.rows[0] if self.rows else 0
        chunk = RawChunk(
            first,
            frame(self.values, self.fields),
            self.sheet,
            bytes_read,
            rows=np.array(self.rows, dtype=np.int64),
            problems=self.problems,
            blank_lines=self.blank,
            sheet_index=self.sheet_index,
        )
        self.rows, self.values, self.problems, self.blank = [], [], {}, 0
        return chunk


def frame(rows: list[tuple[str, ...]], fields: list[str]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    return pd.DataFrame(
        {field: stripped(values) for field, values in zip(fields, columns, strict=True)},
        copy=False,
    )


def stripped(values: Any) -> pd.Series:
    """Cells as a Series of plain `str` objects (object dtype), stripped, "" for empty.

    A list comprehension over the cells is several times faster than `.str.strip()`, and
    an object Series skips pandas' string-dtype inference: this runs for every cell.
    """
    cells = np.empty(len(values), dtype=object)
    try:
        cells[:] = list(map(str.strip, values))
    except TypeError:  # a cell that is not text (the parsers give text; be safe)
        cells[:] = [cell_text(v).strip() for v in values]
    return pd.Series(cells, dtype=object, copy=False)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "TRUE" if value else "FALSE"  # as Excel shows a boolean cell
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return datetime.combine(value, time()).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
