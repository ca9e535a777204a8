"""The sheets of a workbook: their format (Column, SheetSpec), opening the file, finding the
sheets and read-me labels by name, reading a sheet into rows, and checking the cells of a row.

Every fault is worded once here; the plan import raises it (ExportError), the ledger and the
checklist turn it into a finding (`WorkbookFileError.reason`, `SheetError.reason`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from duban.workbooks.cells import cell_text, date_of, header_key, month_of, parse_progress, word_key

__all__ = (
    "Column",
    "Row",
    "RowCheck",
    "Sheet",
    "SheetError",
    "SheetSpec",
    "WorkbookFileError",
    "labelled_values",
    "map_header",
    "open_workbook",
    "read_sheet",
    "titles_named",
)


@dataclass(frozen=True)
class Column:
    field: str  # the English header, lower case; also the key of the writers' dicts
    zh: str  # the Chinese header
    required: bool = True

    @property
    def label(self) -> str:
        return f"{self.zh}/{self.field}"


@dataclass(frozen=True)
class SheetSpec:
    key: str  # the English sheet name, also the key of the sheet in its workbook's code
    zh: str  # the Chinese sheet name
    columns: tuple[Column, ...]

    @property
    def label(self) -> str:
        return f"{self.zh}/{self.key}"

    def titles_in(self, titles: Iterable[str]) -> list[str]:
        """The sheet titles that name this sheet (in Chinese or English)."""
        return titles_named(titles, (self.zh, self.key))

    def only(self, fields: Iterable[str], *, required: bool) -> SheetSpec:
        """This sheet with only the columns `fields`, in this sheet's order."""
        keep = set(fields)
        columns = tuple(Column(c.field, c.zh, required) for c in self.columns if c.field in keep)
        return SheetSpec(self.key, self.zh, columns)


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    cells: dict[str, Any]  # field -> cell value, for the columns the sheet has
    raw: dict[str, str]  # header as in the file -> cell as text


@dataclass
class Sheet:
    spec: SheetSpec
    title: str  # the sheet name as in the file
    headers: dict[str, str]  # field -> header as in the file
    rows: list[Row]


class WorkbookFileError(Exception):
    """The file is no workbook to read. str(): "<path>: <fault>"; `reason`: the fault as a
    finding of the file says it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SheetError(Exception):
    """A sheet whose header row cannot be read. str(): "<path>: sheet '<title>': <faults>";
    `reason`: the faults alone."""

    def __init__(self, path: Path, title: str, reason: str) -> None:
        super().__init__(f"{path}: sheet {title!r}: {reason}")
        self.reason = reason


def open_workbook(path: Path) -> Any:
    """The workbook at `path`, opened read-only with cached values; WorkbookFileError when
    it is missing, not .xlsx or unreadable. The caller closes it."""
    from openpyxl import load_workbook

    if not path.is_file():
        raise WorkbookFileError(f"{path}: file not found", f"file not found: {path}")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        reason = f"unsupported file type {path.suffix!r} (use .xlsx)"
        raise WorkbookFileError(f"{path}: {reason}", reason)
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        reason = f"not a readable .xlsx workbook: {exc}"
        raise WorkbookFileError(f"{path}: {reason}", reason) from None


def titles_named(titles: Iterable[str], names: Iterable[str]) -> list[str]:
    """The titles that are one of `names` (compared as header keys)."""
    keys = {header_key(n) for n in names}
    return [t for t in titles if header_key(t) in keys]


def labelled_values(ws: Any, labels: Iterable[str]) -> list[str]:
    """The values next to the labels `labels` (column A -> B) in the first 30 rows of a
    read-me sheet, in order."""
    keys = {header_key(label) for label in labels}
    return [
        cell_text(row[1]) if len(row) > 1 else ""
        for row in ws.iter_rows(min_row=1, max_row=30, max_col=2, values_only=True)
        if row and header_key(cell_text(row[0])) in keys
    ]


def map_header(path: Path, spec: SheetSpec, title: str, header: list[str]) -> dict[str, int]:
    """Field -> column position, or SheetError naming every missing or doubled column."""
    by_name: dict[str, Column] = {}
    for col in spec.columns:
        by_name[header_key(col.zh)] = col
        by_name[header_key(col.field)] = col
    positions: dict[str, int] = {}
    problems: list[str] = []
    for i, text in enumerate(header):
        found = by_name.get(header_key(text)) if text else None
        if found is None:
            continue
        if found.field in positions:
            first = header[positions[found.field]]
            problems.append(f"columns {first!r} and {text!r} are both {found.label}")
            continue
        positions[found.field] = i
    missing = [c.label for c in spec.columns if c.required and c.field not in positions]
    if missing:
        shown = ", ".join(repr(h) for h in header if h) or "nothing (no header row)"
        problems.append(f"missing columns {', '.join(missing)}; its header row has {shown}")
    if problems:
        raise SheetError(path, title, "; ".join(problems))
    return positions


def read_sheet(spec: SheetSpec, ws: Any, path: Path) -> Sheet:
    """The rows of worksheet `ws` (header in row 1) as `spec` names them; empty rows are
    skipped. SheetError when the header row lacks a required column or doubles one."""
    ws.reset_dimensions()  # some writers store wrong dimensions: read what is there
    rows = ws.iter_rows(values_only=True)
    first = next(rows, ())
    header = [cell_text(v) for v in first]
    positions = map_header(path, spec, ws.title, header)
    raw_names = [h or f"(column {i + 1})" for i, h in enumerate(header)]
    out: list[Row] = []
    for number, values in enumerate(rows, start=2):
        texts = [cell_text(v) for v in values]
        if not any(texts):
            continue  # an empty row: skipped silently
        raw = {
            (raw_names[i] if i < len(raw_names) else f"(column {i + 1})"): t
            for i, t in enumerate(texts)
            if t
        }
        cells = {f: (values[i] if i < len(values) else None) for f, i in positions.items()}
        out.append(Row(number, cells, raw))
    headers = {f: header[i] for f, i in positions.items()}
    return Sheet(spec, ws.title, headers, out)


class RowCheck:
    """Parses the cells of one row, collecting every finding in `errors` (field, column,
    value, reason: the form of QuarantinedRow.errors)."""

    def __init__(self, sheet: Sheet, row: Row) -> None:
        self.sheet = sheet
        self.row = row
        self.errors: list[dict[str, str]] = []

    def has(self, name: str) -> bool:
        return name in self.sheet.headers

    def raw(self, name: str) -> Any:
        return self.row.cells.get(name)

    def text_of(self, name: str) -> str:
        return cell_text(self.raw(name))

    def add(self, name: str, reason: str) -> None:
        self.errors.append(
            {
                "field": name,
                "column": self.sheet.headers.get(name, name),
                "value": self.text_of(name),
                "reason": reason,
            }
        )

    def text(self, name: str, *, required: bool, max_length: int | None = None) -> str | None:
        value = self.text_of(name)
        if not value:
            if required:
                self.add(name, "missing")
            return None
        if max_length is not None and len(value) > max_length:
            self.add(name, f"longer than {max_length} characters")
            return None
        return value

    def month(self, name: str, *, required: bool) -> date | None:
        if not self.text_of(name):
            if required:
                self.add(name, "missing")
            return None
        month = month_of(self.raw(name))
        if month is None:
            self.add(name, f"not a month: {self.text_of(name)!r} (use e.g. 2026-03 or 2026年3月)")
        return month

    def date(self, name: str) -> date | None:
        if not self.text_of(name):
            return None
        day = date_of(self.raw(name))
        if day is None:
            self.add(name, f"not a date: {self.text_of(name)!r} (use e.g. 2026-03-15)")
        return day

    def word(self, name: str, table: Mapping[str, Any]) -> Any:
        """The entry of `table` for the word in cell `name` (None when it has none)."""
        return table.get(word_key(self.raw(name)))

    def progress(self) -> float | None:
        if not self.text_of("progress"):
            return None
        number = parse_progress(self.raw("progress"))
        if number is None:
            self.add("progress", "not a number (use e.g. 0.45, 45% or 45)")
        elif not 0 <= number <= 1:
            shown = self.text_of("progress")
            self.add("progress", f"{shown!r} means {number:.0%}: outside 0%..100%")
            return None
        return number
