"""Reading hotline exports (CSV or XLSX) in chunks of raw strings, through a column mapping.

Nothing here interprets values: every cell comes out as a stripped string ("" when empty),
so that validation can name the exact bad value. Files of any size are streamed.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from duban.config import SourceMapping

DEFAULT_CHUNK_ROWS = 20_000


class ExportError(ValueError):
    """The file as a whole cannot be read (missing, wrong format, missing columns)."""


@dataclass(frozen=True)
class RawChunk:
    first_row: int  # spreadsheet row number of the chunk's first data row (the header is row 1)
    frame: pd.DataFrame  # columns: the mapped ticket fields, values: stripped str (object dtype)
    sheet: str | None = None
    bytes_read: int = 0  # for progress: how far into the file this chunk ends


def _check_header(path: Path, header: list[str], mapping: SourceMapping) -> dict[str, str]:
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


def _stripped(values: Any) -> pd.Series:
    """Cells as a Series of plain `str` objects (object dtype), stripped, "" for empty.

    A list comprehension over the cells is several times faster than `.str.strip()`, and
    an object Series skips pandas' string-dtype inference: this runs for every cell.
    """
    cells = np.empty(len(values), dtype=object)
    try:
        cells[:] = list(map(str.strip, values))
    except TypeError:  # a cell that is not text (the parsers give text; be safe)
        cells[:] = [_cell_text(v).strip() for v in values]
    return pd.Series(cells, dtype=object, copy=False)


def _to_fields(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    stripped: dict[str, pd.Series] = {}
    for col in set(columns.values()):
        stripped[col] = _stripped(frame[col].to_numpy(dtype=object))
    return pd.DataFrame({field: stripped[col] for field, col in columns.items()}, copy=False)


def read_export(
    path: Path, mapping: SourceMapping, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[RawChunk]:
    """Yield the export's rows in chunks, columns renamed to ticket fields."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        yield from _read_csv(path, mapping, chunk_rows)
    elif suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path, mapping, chunk_rows)
    else:
        raise ExportError(f"{path}: unsupported file type {suffix!r} (use .csv or .xlsx)")


def _read_csv(path: Path, mapping: SourceMapping, chunk_rows: int) -> Iterator[RawChunk]:
    with path.open("rb") as handle:
        header = _csv_header(path, handle, mapping)
        columns = _check_header(path, header, mapping)
        handle.seek(0)
        encoding = mapping.encoding
        if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
            # The C parser decodes UTF-8 itself; "utf-8-sig" would route every byte through
            # Python's incremental decoder. Skip the byte-order mark here instead.
            if handle.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
                handle.seek(0)
            encoding = "utf-8"
        reader = pd.read_csv(
            handle,
            sep=mapping.delimiter,
            encoding=encoding,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            usecols=sorted(set(columns.values())),
            chunksize=chunk_rows,
            skipinitialspace=False,
            on_bad_lines="error",
        )
        row = 2
        try:
            for frame in reader:
                yield RawChunk(row, _to_fields(frame, columns), None, handle.tell())
                row += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ExportError(f"{path}: cannot parse CSV near row {row}: {exc}") from None


def _csv_header(path: Path, handle: BinaryIO, mapping: SourceMapping) -> list[str]:
    first = handle.readline()
    try:
        text = first.decode(mapping.encoding)
    except UnicodeDecodeError:
        raise ExportError(
            f"{path}: row 1: not {mapping.encoding} text; set `encoding` in "
            f"config/sources/{mapping.name}.yaml (e.g. gb18030)"
        ) from None
    except LookupError:
        raise ExportError(
            f"config/sources/{mapping.name}.yaml: encoding: unknown {mapping.encoding!r}"
        ) from None
    if not text.strip():
        raise ExportError(f"{path}: the file is empty (no header row)")
    return next(csv.reader([text], delimiter=mapping.delimiter))


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return datetime.combine(value, time()).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(path: Path, mapping: SourceMapping, chunk_rows: int) -> Iterator[RawChunk]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise ExportError(f"{path}: not a readable .xlsx workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [_cell_text(v) for v in next(rows, ())]
        if not any(header):
            raise ExportError(f"{path}: sheet {sheet.title!r} is empty (no header row)")
        columns = _check_header(path, header, mapping)
        position = {h.strip(): i for i, h in enumerate(header)}
        wanted = {field: position[col] for field, col in columns.items()}
        buffer: list[list[str]] = []
        row = 2
        for values in rows:
            buffer.append(
                [_cell_text(values[i]) if i < len(values) else "" for i in wanted.values()]
            )
            if len(buffer) >= chunk_rows:
                yield RawChunk(row, _frame(buffer, list(wanted)), sheet.title)
                row += len(buffer)
                buffer = []
        if buffer:
            yield RawChunk(row, _frame(buffer, list(wanted)), sheet.title)
    finally:
        book.close()


def _frame(rows: list[list[str]], fields: list[str]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    return pd.DataFrame(
        {field: _stripped(values) for field, values in zip(fields, columns, strict=True)},
        copy=False,
    )
