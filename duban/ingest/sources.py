"""Reading hotline exports (CSV or XLSX) in chunks of raw strings, through a column mapping.

Nothing here interprets values: every cell comes out as a stripped string ("" when empty),
so that validation can name the exact bad value. Files of any size are streamed.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from duban.config import DATETIME_FIELDS, SourceMapping
from duban.ingest.cells import undecodable

DEFAULT_CHUNK_ROWS = 20_000
# Tried, in order, when a file is not text in its mapping's encoding: the summary names the
# first that decodes the whole file.
SUGGESTED_ENCODINGS = ("utf-8", "gb18030")
# How far down an Excel sheet its header row is looked for (title rows above it).
HEADER_SEARCH_ROWS = 20
UNBALANCED_QUOTE = "unbalanced quote: a quoted field opens in this row and does not end in it"
CUT_IN_QUOTES = "the file ends inside this quoted field (cut short?)"
# Excel keeps numbers as doubles: a whole number from 2**53 on may not be the one typed.
EXACT_FLOAT_LIMIT = 2**53


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


class _Lines:
    """The physical lines of a text file, for `csv.reader`: remembers the lines each record
    took (`taken`) and can give lines back (`give_back`), to parse them again."""

    def __init__(self, handle: TextIO) -> None:
        self._lines = iter(handle)
        self._back: deque[str] = deque()
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.popleft() if self._back else next(self._lines)
        self.taken.append(line)
        return line

    def give_back(self, lines: list[str]) -> None:
        self._back.extendleft(reversed(lines))


def _encoding(mapping: SourceMapping) -> str:
    """The codec to read with (UTF-8 with or without a byte-order mark as "utf-8-sig")."""
    try:
        name = codecs.lookup(mapping.encoding).name
    except LookupError:
        raise ExportError(
            f"config/sources/{mapping.name}.yaml: encoding: unknown {mapping.encoding!r}"
        ) from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else mapping.encoding


def decodes_cleanly(path: Path, encoding: str) -> bool:
    """Whether the whole file is valid text in `encoding` (read in blocks)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with Path(path).open("rb") as handle:
            while block := handle.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(
    path: Path, mapping: SourceMapping, chunk_rows: int, resume: tuple[int, int] | None = None
) -> Iterator[RawChunk]:
    """Python's csv reader over the file's lines, leniently: every record is a row with its
    spreadsheet number (a blank line is a row too, counted and skipped); a record that is not
    the header's width, or ends the file inside quotes, becomes a row with a problem (it is
    quarantined) and reading goes on at the next line. Bytes the encoding cannot decode are
    kept (as surrogates, `errors="surrogateescape"`): validation quarantines their row and
    shows them as \\xNN.

    `resume` (byte offset of a line, its row number less one): read the header, then the
    records from that line on (the columnar reader, duban/ingest/fastcsv.py, read those
    before it: whole single-line records).
    """
    encoding = _encoding(mapping)
    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="") as handle,
        contextlib.ExitStack() as stack,
    ):
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=mapping.delimiter, strict=False)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ExportError(f"{path}: the file is empty (no header row)")
        if any(undecodable(np.array(header, dtype=object))):
            raise ExportError(_header_encoding_error(path, mapping))
        lines.taken = []
        columns = _check_header(path, header, mapping)
        position = {h.strip(): i for i, h in reversed(list(enumerate(header)))}  # the first
        fields = list(columns)
        wanted = [position[columns[f]] for f in fields]
        width = len(header)
        pick = itemgetter(*wanted)
        labels = [h.strip() for h in header]
        by_position = dict(zip(wanted, fields, strict=True))
        chunk = _ChunkBuilder(fields)
        row = 1
        shape = _Shape(mapping.delimiter, width, labels, by_position)
        single = len(wanted) == 1
        if resume is not None:
            offset, row = resume
            raw = stack.enter_context(path.open("rb"))
            raw.seek(offset)
            lines._lines = iter(
                stack.enter_context(
                    io.TextIOWrapper(
                        raw,
                        encoding="utf-8" if encoding == "utf-8-sig" else encoding,
                        errors="surrogateescape",
                        newline="",
                    )
                )
            )
        numbers, kept = chunk.rows, chunk.values  # (this loop runs for every row: no calls)
        for record in reader:
            taken = lines.taken
            lines.taken = []
            row += 1
            if not (record and (record[0].strip() or "".join(record).strip())):
                chunk.blank += 1  # a blank line, or only separators
                continue
            if len(taken) > 1 or len(record) != width or taken[0].count('"') % 2:
                record, problem = _odd_record(record, taken, lines, shape)
                if problem is not None:
                    chunk.problems[len(numbers)] = [problem]
            numbers.append(row)
            kept.append((pick(record),) if single else pick(record))
            if len(numbers) >= chunk_rows:
                yield chunk.take(raw.tell())
                numbers, kept = chunk.rows, chunk.values
        if len(chunk) or chunk.blank:
            yield chunk.take(0)


@dataclass(frozen=True)
class _Shape:
    """What a CSV export's rows look like: for telling a faulty record what is wrong."""

    delimiter: str
    width: int  # fields in the header
    labels: list[str]  # the header's labels
    fields: dict[int, str]  # position -> the ticket field it maps to


def _odd_record(
    record: list[str], lines: list[str], source: _Lines, shape: _Shape
) -> tuple[list[str], dict[str, str] | None]:
    """A record over several lines, of the wrong width, or with a quote left open: the row
    to keep (as wide as the header) and what is wrong with it, if anything.

    A stray quote's run over other rows (`_stray_run`) or to the end of the file: its first
    line alone is the row (quarantined) and the other lines are given back to be read again.
    """
    width = shape.width
    problem = None
    odd = sum(line.count('"') for line in lines) % 2 == 1  # a quote never closed
    if len(lines) > 1 and (odd or _stray_run(lines, shape.delimiter, width)):
        source.give_back(lines[1:])
        record = next(csv.reader(lines[:1], delimiter=shape.delimiter, strict=False))
        problem = _problem("(row)", "", lines[0].rstrip("\r\n")[:200], UNBALANCED_QUOTE)
    elif odd:  # the last record: the file ends inside its quoted field
        at = len(record) - 1
        name = shape.fields.get(at, "(row)")
        problem = _problem(name, shape.labels[at], record[at][:200], CUT_IN_QUOTES)
    elif len(record) > width and not "".join(record[width:]).strip():
        record = record[:width]  # empty fields beyond the header (trailing separators)
    elif len(record) != width:
        extra = shape.delimiter.join(record[width:])[:200]
        what = "extra field(s) at the end" if len(record) > width else "field(s) missing"
        reason = f"{len(record)} fields, the header has {width}: {what}"
        problem = _problem("(row)", "", extra, reason)
    if len(record) < width:
        record = record + [""] * (width - len(record))
    return record, problem


def _stray_run(lines: list[str], delimiter: str, width: int) -> bool:
    """Whether a record over several lines is a stray quote's run over other rows rather
    than a quoted field with line breaks: its later lines look like whole rows (a row's
    number of separators), or the quote that ends the run is followed by text — a quote
    that ends a field is followed by a separator or the line's end; this one opened a field
    of a later row."""
    last = lines[-1]
    at = last.find('"')
    while at >= 0 and last.startswith('""', at):  # an escaped quote inside the field
        at = last.find('"', at + 2)
    if at >= 0 and last[at + 1 : at + 2] not in ("", "\r", "\n", delimiter):
        return True
    return len(lines) > 2 and max(line.count(delimiter) for line in lines[1:]) >= width - 1


def _problem(field: str, column: str, value: str, reason: str) -> dict[str, str]:
    return {"field": field, "column": column, "value": value, "reason": reason}


def better_encoding(path: Path, encoding: str) -> str | None:
    """The first of SUGGESTED_ENCODINGS (other than `encoding`) that decodes the whole file."""
    for other in SUGGESTED_ENCODINGS:
        if codecs.lookup(other).name != codecs.lookup(encoding).name and decodes_cleanly(
            path, other
        ):
            return other
    return None


def _header_encoding_error(path: Path, mapping: SourceMapping) -> str:
    text = f"{path}: row 1 (the header) is not {mapping.encoding} text"
    other = better_encoding(path, mapping.encoding)
    if other:
        return (
            f"{text}; the file reads cleanly as {other}: set `encoding: {other}` in "
            f"config/sources/{mapping.name}.yaml"
        )
    return f"{text}; set `encoding` in config/sources/{mapping.name}.yaml (e.g. gb18030)"


class _ChunkBuilder:
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
            _frame(self.values, self.fields),
            self.sheet,
            bytes_read,
            rows=np.array(self.rows, dtype=np.int64),
            problems=self.problems,
            blank_lines=self.blank,
            sheet_index=self.sheet_index,
        )
        self.rows, self.values, self.problems, self.blank = [], [], {}, 0
        return chunk


def _cell_text(value: Any) -> str:
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


def _serial_date(value: Any, epoch: datetime) -> str | None:
    """An Excel serial date (a number in a General cell of a time column) as text."""
    from openpyxl.utils.datetime import from_excel

    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (1 <= value < 2_958_466) or not math.isfinite(value):  # up to 9999-12-31
        return None
    moment = from_excel(value, epoch=epoch)
    return _cell_text(moment) if isinstance(moment, datetime) else None


def _header_labels(rows: list[tuple[Any, ...]], at: int) -> list[str]:
    """Row `at` as header labels; an empty cell takes the nearest label above it (a header
    cell merged down over two rows keeps its text in the upper one)."""
    labels = [_cell_text(v).strip() for v in rows[at]]
    for i, label in enumerate(labels):
        above = at - 1
        while not label and above >= 0:
            cells = rows[above]
            label = _cell_text(cells[i]).strip() if i < len(cells) else ""
            above -= 1
        labels[i] = label
    return labels


def _find_header(
    rows: list[tuple[Any, ...]], mapping: SourceMapping
) -> tuple[int, list[str]] | None:
    """The first row (0-based) among the first ones that holds every mapped column."""
    wanted = set(mapping.columns.values())
    for at in range(len(rows)):
        labels = _header_labels(rows, at)
        if wanted <= set(labels):
            return at, labels
    return None


def _read_xlsx(path: Path, mapping: SourceMapping, chunk_rows: int) -> Iterator[RawChunk]:
    """Every sheet whose header (found among its first HEADER_SEARCH_ROWS rows, below any
    title rows) holds the mapped columns — or only the mapping's `sheet`. Empty rows (also
    formatted ones) are skipped and counted as blank; a number in a time column is an Excel
    serial date; a boolean reads TRUE/FALSE; an id Excel stored as a number from 2**53 on is
    quarantined (its last digits are lost); a formula without a cached value is quarantined
    as such."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
        # The formulas themselves, read alongside a sheet that has any: where a formula has
        # no cached value (a workbook no spreadsheet program has saved), its cell is None.
        formulas = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:
        raise ExportError(f"{path}: not a readable .xlsx workbook: {exc}") from None
    try:
        names = book.sheetnames
        if mapping.sheet is not None and mapping.sheet not in names:
            raise ExportError(
                f"{path}: no sheet {mapping.sheet!r} (config/sources/{mapping.name}.yaml: "
                f"sheet); the workbook has: {', '.join(repr(n) for n in names)}"
            )
        chosen = [mapping.sheet] if mapping.sheet is not None else names
        skipped: list[str] = []
        first: tuple[str, list[tuple[Any, ...]]] | None = None
        for name in chosen:
            sheet = book[name]
            rows = sheet.iter_rows(values_only=True)
            head = [tuple(r) for _, r in zip(range(HEADER_SEARCH_ROWS), rows, strict=False)]
            found = _find_header(head, mapping)
            if found is None:
                first = first or (name, head)
                skipped.append(name)
                continue
            written = formulas[name] if _has_formulas(sheet) else None
            yield from _sheet_chunks(sheet, written, found, mapping, chunk_rows, book.epoch)
        if first is not None and len(skipped) == len(chosen):
            name, head = first
            wanted = set(mapping.columns.values())
            best = max(
                range(len(head)),
                default=None,
                key=lambda at: len(wanted & set(_header_labels(head, at))),
            )
            if best is None or not any(_header_labels(head, best)):
                raise ExportError(f"{path}: sheet {name!r} is empty (no header row)")
            _check_header(Path(f"{path} (sheet {name!r})"), _header_labels(head, best), mapping)
        if skipped:
            note = f"sheets without the mapped header, not read: {', '.join(skipped)}"
            yield RawChunk(0, _frame([], list(mapping.columns)), None, notes=(note,))
    finally:
        book.close()
        formulas.close()


def _sheet_chunks(
    sheet: Any,
    formula_sheet: Any | None,
    found: tuple[int, list[str]],
    mapping: SourceMapping,
    chunk_rows: int,
    epoch: datetime,
) -> Iterator[RawChunk]:
    at, labels = found
    columns = {str(f): c for f, c in mapping.columns.items()}
    position = {label: i for i, label in reversed(list(enumerate(labels)))}
    fields = list(columns)
    wanted = [position[columns[f]] for f in fields]
    dated = {i for f, i in zip(fields, wanted, strict=True) if f in DATETIME_FIELDS}
    id_at = position[columns["external_id"]]
    chunk = _ChunkBuilder(fields)
    chunk.sheet = sheet.title
    chunk.sheet_index = sheet.parent.sheetnames.index(sheet.title)
    values_rows = sheet.iter_rows(min_row=at + 2, values_only=True)
    formula_rows: Iterator[tuple[Any, ...]] = (
        formula_sheet.iter_rows(min_row=at + 2, values_only=True)
        if formula_sheet is not None
        else repeat(())
    )
    for row, (values, written) in enumerate(
        zip(values_rows, formula_rows, strict=False), start=at + 2
    ):
        cells = [values[i] if i < len(values) else None for i in wanted]
        empty = all(v is None or (isinstance(v, str) and not v.strip()) for v in cells)
        if empty and not any(_is_formula(written[i]) for i in wanted if i < len(written)):
            chunk.blank += 1  # also a row Excel keeps only for its formatting
            continue
        problems: list[dict[str, str]] = []
        texts: list[str] = []
        for f, i, v in zip(fields, wanted, cells, strict=True):
            text = _serial_date(v, epoch) if i in dated else None
            if text is None:
                text = _cell_text(v)
            if v is None and i < len(written) and _is_formula(written[i]):
                problems.append(_problem(f, labels[i], str(written[i])[:200],
                    "a formula without a cached value (save the workbook in Excel)"))  # fmt: skip
            elif i == id_at and isinstance(v, float) and abs(v) >= EXACT_FLOAT_LIMIT:
                problems.append(_problem(f, labels[i], repr(v),
                    "an id Excel stored as a number beyond 2**53: its last digits are lost "
                    "(format the column as text)"))  # fmt: skip
            texts.append(text)
        chunk.add(row, tuple(texts))
        if problems:
            chunk.problems[len(chunk) - 1] = problems
        if len(chunk) >= chunk_rows:
            yield chunk.take(0)
    if len(chunk) or chunk.blank:
        yield chunk.take(0)


# A formula element in a worksheet's XML (`<f>`, `<f t="shared" …/>`, with a prefix or not).
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")


def _has_formulas(sheet: Any) -> bool:
    """Whether a read-only sheet holds any formula (its XML scanned, not parsed)."""
    try:
        stream = sheet.parent._archive.open(sheet._worksheet_path)
    except (AttributeError, KeyError):  # not the openpyxl this was written for: assume so
        return True
    tail = b""
    with stream:
        while block := stream.read(1 << 20):
            if _FORMULA_TAG.search(tail + block):
                return True
            tail = block[-16:]
    return False


def _is_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


def _frame(rows: list[tuple[str, ...]], fields: list[str]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    return pd.DataFrame(
        {field: _stripped(values) for field, values in zip(fields, columns, strict=True)},
        copy=False,
    )
