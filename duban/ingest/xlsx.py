"""Reading an Excel export (.xlsx, .xlsm) with calamine (python-calamine, Rust): ~10x the
speed of openpyxl, the reader it replaced (kept in xlsx_openpyxl.py to compare with, and
as DUBAN_XLSX_READER=openpyxl).

The same chunks as before, row for row: every sheet whose header (found among its first
HEADER_SEARCH_ROWS rows, below any title rows and merged cells) holds the mapped columns,
or only the mapping's `sheet`; the same spreadsheet row numbers; empty rows (also rows that
carry only formatting) skipped and counted as blank; a number in a time column read as an
Excel serial date; a boolean as TRUE/FALSE; an id stored as a number from 2**53 on
quarantined; a formula without a cached value quarantined. What calamine does not say
(formulas, error cells, formatting-only rows, the exact digits of a big whole number) comes
from the sheet's XML (xlsx_xml.py), in one streaming pass per sheet read.

Cells are turned into text a column at a time, a chunk at a time: a column of text cells
(nearly all of them) costs one type check per cell.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from python_calamine import CalamineSheet, CalamineWorkbook

from duban.config import DATETIME_FIELDS, SourceMapping
from duban.ingest.chunks import ExportError, RawChunk, cell_text, problem
from duban.ingest.xlsx_openpyxl import (
    EXACT_FLOAT_LIMIT,
    FORMULA_NO_VALUE,
    HEADER_SEARCH_ROWS,
    ID_BEYOND_2_53,
    chosen_sheets,
    find_header,
    read_xlsx_openpyxl,
    serial_date,
    unread_sheets,
)
from duban.ingest.xlsx_xml import SheetScan, Special, book_parts, scan_sheet, whole_numbers

XlsxReader = Literal["calamine", "openpyxl"]
XLSX_READERS: tuple[XlsxReader, ...] = ("calamine", "openpyxl")
WINDOWS_EPOCH = datetime(1899, 12, 30)
MAC_EPOCH = datetime(1904, 1, 1)


def read_xlsx(
    path: Path, mapping: SourceMapping, chunk_rows: int, reader: XlsxReader = "calamine"
) -> Iterator[RawChunk]:
    """The workbook's rows in chunks (see the module's doc), read by `reader`."""
    if reader == "openpyxl":
        yield from read_xlsx_openpyxl(path, mapping, chunk_rows)
    elif reader == "calamine":
        yield from _read_calamine(path, mapping, chunk_rows)
    else:
        raise ValueError(f"unknown Excel reader {reader!r} (one of {', '.join(XLSX_READERS)})")


def _read_calamine(path: Path, mapping: SourceMapping, chunk_rows: int) -> Iterator[RawChunk]:
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:
        raise ExportError(f"{path}: not a readable .xlsx workbook: {exc}") from None
    with archive:
        try:
            parts = book_parts(archive)
            book = CalamineWorkbook.from_path(str(path))
        except Exception as exc:
            raise ExportError(f"{path}: not a readable .xlsx workbook: {exc}") from None
        with book:
            yield from _sheets(
                path, archive, book, parts.sheets, parts.date1904, mapping, chunk_rows
            )


def _sheets(
    path: Path,
    archive: zipfile.ZipFile,
    book: CalamineWorkbook,
    members: dict[str, str],
    date1904: bool,
    mapping: SourceMapping,
    chunk_rows: int,
) -> Iterator[RawChunk]:
    names = list(book.sheet_names)
    chosen = chosen_sheets(path, mapping, names)
    skipped: list[str] = []
    first: tuple[str, list[tuple[Any, ...]]] | None = None
    for name in chosen:
        try:
            sheet = book.get_sheet_by_name(name)
            top = sheet.to_python(skip_empty_area=False, nrows=HEADER_SEARCH_ROWS)
        except Exception as exc:
            raise ExportError(f"{path}: sheet {name!r} cannot be read: {exc}") from None
        head: list[tuple[Any, ...]] = [tuple(r) for r in top]
        found = find_header(head, mapping)
        if found is None:
            first = first or (name, head)
            skipped.append(name)
            continue
        member = members.get(name)
        scan = scan_sheet(archive, member) if member else SheetScan()
        sheet_rows = _SheetRows(sheet, name, names.index(name), archive, member, scan)
        yield from _sheet_chunks(sheet_rows, found, mapping, chunk_rows, date1904)
    yield from unread_sheets(path, mapping, chosen, skipped, first)


class _SheetRows:
    """One sheet as calamine gives it, with what its XML adds."""

    def __init__(
        self,
        sheet: CalamineSheet,
        title: str,
        index: int,
        archive: zipfile.ZipFile,
        member: str | None,
        scan: SheetScan,
    ) -> None:
        self.sheet, self.title, self.index, self.scan = sheet, title, index, scan
        self._archive, self._member = archive, member
        self._numbers: dict[tuple[int, int], str] | None = None
        # Where calamine's rows start (0-based): it leaves out empty rows and columns before.
        start: tuple[int, int] = sheet.start or (0, 0)
        self.first_row, self.first_column = start

    def whole_number(self, row: int, column: int) -> str | None:
        """The digits the XML holds for a big whole number (None: not written as one)."""
        if self._numbers is None:
            member = self._member
            self._numbers = whole_numbers(self._archive, member) if member else {}
        return self._numbers.get((row, column))


class _Pending:
    """Kept rows gathered into chunks of exactly `chunk_rows` rows, as the old reader cut
    them: blank rows count in the chunk being gathered when they are met."""

    def __init__(self, fields: list[str], sheet: _SheetRows) -> None:
        self.fields, self.sheet = fields, sheet
        self.columns: list[list[np.ndarray]] = [[] for _ in fields]
        self.rows: list[np.ndarray] = []
        self.problems: dict[int, list[dict[str, str]]] = {}
        self.count = 0
        self.blank = 0

    def add(
        self,
        columns: list[np.ndarray],
        rows: np.ndarray,
        problems: dict[int, list[dict[str, str]]],
        blank: int,
    ) -> None:
        for kept, column in zip(self.columns, columns, strict=True):
            kept.append(column)
        self.rows.append(rows)
        for at, found in problems.items():
            self.problems[self.count + at] = found
        self.count += len(rows)
        self.blank += blank

    def take(self) -> RawChunk:
        rows = np.concatenate(self.rows) if self.rows else np.array([], dtype=np.int64)
        data = {
            f: pd.Series(np.concatenate(c) if c else np.array([], dtype=object), dtype=object)
            for f, c in zip(self.fields, self.columns, strict=True)
        }
        chunk = RawChunk(
            int(rows[0]) if len(rows) else 0,
            pd.DataFrame(data, copy=False),
            self.sheet.title,
            0,
            rows=rows.astype(np.int64),
            problems=self.problems,
            blank_lines=self.blank,
            sheet_index=self.sheet.index,
        )
        self.columns, self.rows, self.problems = [[] for _ in self.fields], [], {}
        self.count = self.blank = 0
        return chunk


def _sheet_chunks(
    sheet: _SheetRows,
    found: tuple[int, list[str]],
    mapping: SourceMapping,
    chunk_rows: int,
    date1904: bool,
) -> Iterator[RawChunk]:
    at, labels = found
    columns = {str(f): c for f, c in mapping.columns.items()}
    position = {label: i for i, label in reversed(list(enumerate(labels)))}
    fields = list(columns)
    wanted = [position[columns[f]] for f in fields]
    kinds = [
        _Column(f, i, labels[i], f in DATETIME_FIELDS, f == "external_id")
        for f, i in zip(fields, wanted, strict=True)
    ]
    epoch = MAC_EPOCH if date1904 else WINDOWS_EPOCH
    pending = _Pending(fields, sheet)
    rows = islice(sheet.sheet.iter_rows(), max(0, at + 1 - sheet.first_row), None)
    number = at + 2  # the spreadsheet row number of the first data row
    while block := list(islice(rows, chunk_rows)):
        texts, blank, problems = _block(block, number, kinds, sheet, epoch)
        kept = np.flatnonzero(~blank)
        before = kept - np.arange(len(kept))  # blank rows of the block before each kept one
        numbers = np.arange(number, number + len(block), dtype=np.int64)
        done = taken_blank = 0
        while done < len(kept):
            take = kept[done : done + chunk_rows - pending.count]
            blank_here = int(before[done + len(take) - 1]) - taken_blank
            moved = _moved(problems, take)
            pending.add([t[take] for t in texts], numbers[take], moved, blank_here)
            taken_blank += blank_here
            done += len(take)
            if pending.count >= chunk_rows:
                yield pending.take()
        pending.blank += len(block) - len(kept) - taken_blank
        number += len(block)
    # Rows after calamine's last one that the XML lists (formatting only): blank, as before.
    pending.blank += max(0, sheet.scan.last_row - (number - 1))
    if pending.count or pending.blank:
        yield pending.take()


def _moved(
    problems: dict[int, list[dict[str, str]]], take: np.ndarray
) -> dict[int, list[dict[str, str]]]:
    """The problems of the rows `take` (block positions, ascending), by position in it."""
    if not problems:
        return {}
    rows = np.array(sorted(problems), dtype=np.int64)
    at = np.searchsorted(take, rows)
    inside = (at < len(take)) & (take[np.minimum(at, len(take) - 1)] == rows)
    return {int(a): problems[int(r)] for a, r in zip(at[inside], rows[inside], strict=True)}


class _Column:
    def __init__(self, field: str, index: int, label: str, dated: bool, is_id: bool) -> None:
        self.field, self.index, self.label, self.dated, self.is_id = (
            field, index, label, dated, is_id
        )  # fmt: skip


def _block(
    block: list[list[Any]], number: int, kinds: list[_Column], sheet: _SheetRows, epoch: datetime
) -> tuple[list[np.ndarray], np.ndarray, dict[int, list[dict[str, str]]]]:
    """A block of calamine rows (the first numbered `number`): each mapped column as
    stripped text (an object array), which rows are blank, and the rows' problems."""
    specials = _specials(sheet.scan, number, len(block), kinds)
    found: dict[int, list[tuple[int, dict[str, str]]]] = {}
    texts: list[np.ndarray] = []
    blank = np.ones(len(block), dtype=bool)
    cells = list(zip(*block, strict=True))  # the block's columns
    for k, kind in enumerate(kinds):
        values = list(cells[kind.index - sheet.first_column])
        for r, special in specials.get(k, {}).items():
            if special.kind == "error":
                values[r] = special.text
            else:
                blank[r] = False  # a formula: the row is not empty
                if special.cached is None:
                    values[r] = ""
                    bad = problem(kind.field, kind.label, special.text[:200], FORMULA_NO_VALUE)
                    found.setdefault(r, []).append((k, bad))
        if set(map(type, values)) != {str}:
            values = _converted(values, kind, number, sheet, epoch, found, k)
        column = np.empty(len(values), dtype=object)
        column[:] = list(map(str.strip, values))
        blank &= column == ""
        texts.append(column)
    problems = {r: [p for _, p in sorted(f, key=lambda x: x[0])] for r, f in found.items()}
    return texts, blank, problems


def _specials(
    scan: SheetScan, number: int, count: int, kinds: list[_Column]
) -> dict[int, dict[int, Special]]:
    """The block's special cells in mapped columns: column position -> block row -> cell."""
    out: dict[int, dict[int, Special]] = {}
    if not scan.cells:
        return out
    by_index = {kind.index: k for k, kind in enumerate(kinds)}
    for row in range(number, number + count):
        for column, special in scan.cells.get(row, {}).items():
            if column in by_index:
                out.setdefault(by_index[column], {})[row - number] = special
    return out


def _converted(
    values: list[Any],
    kind: _Column,
    number: int,
    sheet: _SheetRows,
    epoch: datetime,
    found: dict[int, list[tuple[int, dict[str, str]]]],
    k: int,
) -> list[str]:
    """A column's cells as text, as `cell_text` and `serial_date` give them (the cells
    calamine gives most, text, date cells and small whole numbers, without a call)."""

    def other(r: int, v: Any) -> str:
        if type(v) is float and abs(v) >= EXACT_FLOAT_LIMIT:
            digits = sheet.whole_number(number + r, kind.index)
            if digits is not None:
                v = int(digits)  # written as a whole number: exact, as openpyxl read it
            elif kind.is_id:
                bad = problem(kind.field, kind.label, repr(v), ID_BEYOND_2_53)
                found.setdefault(r, []).append((k, bad))
        text = serial_date(v, epoch) if kind.dated else None
        return text if text is not None else cell_text(v)

    plain_numbers = not kind.dated  # a time column's number is a serial date
    limit = EXACT_FLOAT_LIMIT
    return [
        v
        if (t := type(v)) is str
        else v.isoformat(" ", "seconds")
        if t is datetime and v.year >= 1000
        else str(int(v))
        if t is float and plain_numbers and -limit < v < limit and v.is_integer()
        else other(r, v)
        for r, v in enumerate(values)
    ]
