"""Reading hotline exports (CSV or XLSX) in chunks of raw strings, through a column mapping.

Nothing here interprets values: every cell comes out as a stripped string ("" when empty),
so that validation can name the exact bad value. Files of any size are streamed. Excel
workbooks are read by duban/ingest/xlsx.py; the chunk and its builder are chunks.py's.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TextIO

import numpy as np

from duban.config import SourceMapping
from duban.ingest.cells import undecodable
from duban.ingest.chunks import ChunkBuilder as _ChunkBuilder
from duban.ingest.chunks import ExportError, RawChunk
from duban.ingest.chunks import check_header as _check_header
from duban.ingest.chunks import problem as _problem
from duban.ingest.xlsx import XlsxReader, read_xlsx

__all__ = [
    "DEFAULT_CHUNK_ROWS", "ExportError", "RawChunk", "better_encoding", "decodes_cleanly",
    "read_export",
]  # fmt: skip

DEFAULT_CHUNK_ROWS = 20_000
# Tried, in order, when a file is not text in its mapping's encoding: the summary names the
# first that decodes the whole file.
SUGGESTED_ENCODINGS = ("utf-8", "gb18030")
UNBALANCED_QUOTE = "unbalanced quote: a quoted field opens in this row and does not end in it"
CUT_IN_QUOTES = "the file ends inside this quoted field (cut short?)"


def read_export(
    path: Path,
    mapping: SourceMapping,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    xlsx_reader: XlsxReader = "calamine",
) -> Iterator[RawChunk]:
    """Yield the export's rows in chunks, columns renamed to ticket fields. `xlsx_reader`:
    which reader reads a workbook (duban/ingest/xlsx.py; "openpyxl", the slow one it
    replaced, is kept to compare with)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        yield from _read_csv(path, mapping, chunk_rows)
    elif suffix in (".xlsx", ".xlsm"):
        yield from read_xlsx(path, mapping, chunk_rows, xlsx_reader)
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
