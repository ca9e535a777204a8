"""The Excel reader Duban had before duban/ingest/xlsx.py: openpyxl in read-only mode, the
slowest reader there is (~10x slower than calamine). Kept to compare with (the differential
test) and as a way out (DUBAN_XLSX_READER=openpyxl) should the fast reader misread a workbook.

`serial_date`, `header_labels` and `find_header` are shared with the fast reader.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any

from duban.config import DATETIME_FIELDS, SourceMapping
from duban.ingest.chunks import (
    ChunkBuilder,
    ExportError,
    RawChunk,
    cell_text,
    check_header,
    frame,
    problem,
)

# How far down an Excel sheet its header row is looked for (title rows above it).
HEADER_SEARCH_ROWS = 20
# Excel keeps numbers as doubles: a whole number from 2**53 on may not be the one typed.
EXACT_FLOAT_LIMIT = 2**53
FORMULA_NO_VALUE = "a formula without a cached value (save the workbook in Excel)"
ID_BEYOND_2_53 = (
    "an id Excel stored as a number beyond 2**53: its last digits are lost "
    "(format the column as text)"
)


def serial_date(value: Any, epoch: datetime) -> str | None:
    """An Excel serial date (a number in a General cell of a time column) as text."""
    from openpyxl.utils.datetime import from_excel

    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (1 <= value < 2_958_466) or not math.isfinite(value):  # up to 9999-12-31
        return None
    moment = from_excel(value, epoch=epoch)
    return cell_text(moment) if isinstance(moment, datetime) else None


def header_labels(rows: list[tuple[Any, ...]], at: int) -> list[str]:
    """Row `at` as header labels; an empty cell takes the nearest label above it (a header
    cell merged down over two rows keeps its text in the upper one)."""
    labels = [cell_text(v).strip() for v in rows[at]]
    for i, label in enumerate(labels):
        above = at - 1
        while not label and above >= 0:
            cells = rows[above]
            label = cell_text(cells[i]).strip() if i < len(cells) else ""
            above -= 1
        labels[i] = label
    return labels


def find_header(
    rows: list[tuple[Any, ...]], mapping: SourceMapping
) -> tuple[int, list[str]] | None:
    """The first row (0-based) among the first ones that holds every mapped column."""
    wanted = set(mapping.columns.values())
    for at in range(len(rows)):
        labels = header_labels(rows, at)
        if wanted <= set(labels):
            return at, labels
    return None


def read_xlsx_openpyxl(path: Path, mapping: SourceMapping, chunk_rows: int) -> Iterator[RawChunk]:
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
        chosen = chosen_sheets(path, mapping, book.sheetnames)
        skipped: list[str] = []
        first: tuple[str, list[tuple[Any, ...]]] | None = None
        for name in chosen:
            sheet = book[name]
            rows = sheet.iter_rows(values_only=True)
            head = [tuple(r) for _, r in zip(range(HEADER_SEARCH_ROWS), rows, strict=False)]
            found = find_header(head, mapping)
            if found is None:
                first = first or (name, head)
                skipped.append(name)
                continue
            written = formulas[name] if _has_formulas(sheet) else None
            yield from _sheet_chunks(sheet, written, found, mapping, chunk_rows, book.epoch)
        yield from unread_sheets(path, mapping, chosen, skipped, first)
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
    chunk = ChunkBuilder(fields)
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
            text = serial_date(v, epoch) if i in dated else None
            if text is None:
                text = cell_text(v)
            if v is None and i < len(written) and _is_formula(written[i]):
                problems.append(problem(f, labels[i], str(written[i])[:200],
                    FORMULA_NO_VALUE))  # fmt: skip
            elif i == id_at and isinstance(v, float) and abs(v) >= EXACT_FLOAT_LIMIT:
                problems.append(problem(f, labels[i], repr(v),
                    ID_BEYOND_2_53))  # fmt: skip
            texts.append(text)
        chunk.add(row, tuple(texts))
        if problems:
            chunk.problems[len(chunk) - 1] = problems
        if len(chunk) >= chunk_rows:
            yield chunk.take(0)
    if len(chunk) or chunk.blank:
        yield chunk.take(0)


# A formula element in a worksheet's XML (`<f>`, `<f t="shared" …/>`, with a prefix or not).
FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")


def _has_formulas(sheet: Any) -> bool:
    """Whether a read-only sheet holds any formula (its XML scanned, not parsed)."""
    try:
        stream = sheet.parent._archive.open(sheet._worksheet_path)
    except (AttributeError, KeyError):  # not the openpyxl this was written for: assume so
        return True
    tail = b""
    with stream:
        while block := stream.read(1 << 20):
            if FORMULA_TAG.search(tail + block):
                return True
            tail = block[-16:]
    return False


def _is_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


def chosen_sheets(path: Path, mapping: SourceMapping, names: list[str]) -> list[str]:
    """The sheets to read: the mapping's `sheet` (which must exist), else every one."""
    if mapping.sheet is not None and mapping.sheet not in names:
        raise ExportError(
            f"{path}: no sheet {mapping.sheet!r} (config/sources/{mapping.name}.yaml: "
            f"sheet); the workbook has: {', '.join(repr(n) for n in names)}"
        )
    return [mapping.sheet] if mapping.sheet is not None else list(names)


def unread_sheets(
    path: Path,
    mapping: SourceMapping,
    chosen: list[str],
    skipped: list[str],
    first: tuple[str, list[tuple[Any, ...]]] | None,
) -> Iterator[RawChunk]:
    """After the sheets: when none had the mapped header, the first one's header error
    (check_header's, on its most likely header row); else a note naming those skipped."""
    if first is not None and len(skipped) == len(chosen):
        name, head = first
        wanted = set(mapping.columns.values())
        best = max(
            range(len(head)),
            default=None,
            key=lambda at: len(wanted & set(header_labels(head, at))),
        )
        if best is None or not any(header_labels(head, best)):
            raise ExportError(f"{path}: sheet {name!r} is empty (no header row)")
        check_header(Path(f"{path} (sheet {name!r})"), header_labels(head, best), mapping)
    if skipped:
        note = f"sheets without the mapped header, not read: {', '.join(skipped)}"
        yield RawChunk(0, frame([], list(mapping.columns)), None, notes=(note,))
