"""A CSV export read in chunks by pyarrow's CSV reader, for the columnar import.

A block of lines is parsed here only when the lenient reader (`sources._read_csv`) would
read it the same way: every line one record of the header's width; no blank line; quotes
only around whole fields (doubled inside); no lone CR; text valid in the mapping's encoding
(a control character in a cell is validation's to refuse). The first block that is not
such, and everything after it, is read by the lenient reader (from that block's first line
on), so that a faulty row is quarantined exactly as before. Cells are stripped as
`str.strip` strips them.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from duban.config import SourceMapping
from duban.ingest.sources import RawChunk, _check_header, _encoding, _read_csv

# What str.strip() strips (str.isspace), for pyarrow's utf8_trim.
WHITESPACE = (  # (tests/unit/test_fastcsv.py checks it against str.isspace)
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Encodings whose bytes for \n, \r, the quote and ASCII separators never occur inside a
# multi-byte character: lines can be cut on bytes.
_LINE_SAFE = frozenset({"utf-8", "gb18030", "gbk", "gb2312"})
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_CONTROL = bytes(b for b in range(256) if _CONTROL.fullmatch(bytes([b])) is None)
_LONGEST_LINE = 1 << 20  # a longer line (e.g. a CR-only file): the lenient reader
_READ_BYTES = 16 << 20
# Cells that may begin or end with what str.strip() strips, by their first two bytes and
# their last two (ASCII white space: by one; a few other cells are trimmed too, harmlessly).
_FIRST = np.zeros(1 << 16, dtype=bool)
_LAST = np.zeros(1 << 16, dtype=bool)
for _ch in WHITESPACE:
    _utf8 = _ch.encode()
    if len(_utf8) == 1:
        _FIRST[_utf8[0] << 8 : (_utf8[0] + 1) << 8] = True
        _LAST[_utf8[0] :: 256] = True
    else:
        _FIRST[int.from_bytes(_utf8[:2], "big")] = True
        _LAST[int.from_bytes(_utf8[-2:], "big")] = True


@dataclass
class ColumnChunk:
    """A chunk as RawChunk gives it, its cells held by pyarrow (`columns`): stripped text,
    never null. `frame` (object columns, as the lenient reader's) is built when asked."""

    first_row: int
    columns: dict[str, pa.Array]
    bytes_read: int = 0
    control: bool = False  # a cell may hold a control character
    sheet: str | None = None
    rows: np.ndarray | None = None
    problems: dict[int, list[dict[str, str]]] = field(default_factory=dict)
    blank_lines: int = 0
    notes: tuple[str, ...] = ()
    sheet_index: int = 0

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def row_numbers(self) -> np.ndarray:
        return np.arange(self.first_row, self.first_row + len(self), dtype=np.int64)

    @cached_property
    def frame(self) -> pd.DataFrame:
        return objects_frame(self.columns)


def objects_frame(columns: dict[str, pa.Array], rows: Any = None) -> pd.DataFrame:
    """Columns (optionally only `rows`, positions) as an object DataFrame of str."""
    out = {}
    for name, values in columns.items():
        taken = values if rows is None else values.take(pa.array(rows, type=pa.int64()))
        out[name] = pd.Series(taken.to_numpy(zero_copy_only=False), dtype=object, copy=False)
    return pd.DataFrame(out, copy=False)


def _codec(mapping: SourceMapping) -> str:
    """The codec of the data rows (a byte-order mark can only open the header's line)."""
    name = codecs.lookup(_encoding(mapping)).name
    return "utf-8" if name == "utf-8-sig" else name


def _line_pattern(delimiter: str) -> re.Pattern[bytes]:
    d = re.escape(delimiter.encode())
    cell = rb'(?:[^"' + d + rb'\r\n]*|"(?:[^"\r\n]|"")*")'
    return re.compile(cell + rb"(?:" + d + cell + rb")*\r?\n?")


class _Block:
    """What parses a block of lines: the header's shape and the mapping."""

    def __init__(self, width: int, wanted: dict[str, int], mapping: SourceMapping) -> None:
        self.width = width
        self.wanted = wanted  # field -> position in the record
        self.codec = _codec(mapping)
        self.delimiter = mapping.delimiter
        self.line = _line_pattern(mapping.delimiter)
        names = [f"c{i}" for i in range(width)]
        positions = sorted(set(wanted.values()))
        self.read = pacsv.ReadOptions(column_names=names, use_threads=True)
        self.parse = pacsv.ParseOptions(
            delimiter=mapping.delimiter,
            quote_char='"',
            double_quote=True,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
        )
        self.convert = pacsv.ConvertOptions(
            include_columns=[names[i] for i in positions],
            column_types={names[i]: pa.string() for i in positions},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def _quoted_well(self, data: bytes) -> bool:
        """Whether every line with a quote quotes whole fields only."""
        fullmatch = self.line.fullmatch
        at = data.find(b'"')
        while at >= 0:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end + 1
            if fullmatch(data, start, end) is None:
                return False
            at = data.find(b'"', end)
        return True

    def columns(
        self, data: bytes, count: int, ends: np.ndarray | None = None
    ) -> tuple[dict[str, pa.Array], bool] | None:
        """The mapped cells of a block of `count` lines, stripped, and whether the block holds
        a control character; None when the lenient reader must read it. `ends`: where its
        lines end (every b"\\n" of `data`), when known."""
        if self.codec != "utf-8":  # strictly (UTF-8: pyarrow checks the mapped columns)
            try:
                data = data.decode(self.codec).encode("utf-8")
                ends = None  # (its lines end elsewhere now)
            except UnicodeDecodeError:
                return None  # the lenient reader keeps undecodable bytes, to quarantine them
        if data.startswith(b"\xef\xbb\xbf"):
            return None  # (pyarrow would drop a byte-order mark here; Python keeps it)
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            return None  # a lone CR (a line end to Python's reader)
        if data.startswith((b"\n", b"\r\n")) or _blank_line(data, ends):
            return None  # a blank line
        if b'"' in data and not self._quoted_well(data):
            return None
        try:
            table = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=self.read,
                parse_options=self.parse,
                convert_options=self.convert,
            )
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return None  # a record of another width, text not UTF-8
        if table.num_rows != count:
            return None
        stripped = {i: _stripped(table.column(f"c{i}")) for i in set(self.wanted.values())}
        filled = None  # a row whose mapped cells are all empty may be blank (skipped)
        for values in stripped.values():
            some = pc.greater(pc.binary_length(values), 0)
            filled = some if filled is None else pc.or_(filled, some)
        if filled is not None and not pc.all(filled).as_py():
            return None
        return {name: stripped[i] for name, i in self.wanted.items()}, bool(
            data.translate(None, _NOT_CONTROL)  # a control character: validation flags it
        )


def _blank_line(data: bytes, ends: np.ndarray | None) -> bool:
    """Whether a line after the first of `data` is empty (b"\\n\\n" or b"\\n\\r\\n")."""
    if ends is None:
        return b"\n\n" in data or b"\n\r\n" in data
    gaps = np.diff(ends)
    if (gaps == 1).any():
        return True
    two = ends[1:][gaps == 2]
    return bool(len(two)) and bool((np.frombuffer(data, np.uint8)[two - 1] == 13).any())


def _stripped(column: pa.ChunkedArray) -> pa.Array:
    """The cells as `str.strip` leaves them: pyarrow trims those that begin or end with
    white space (most do not)."""
    values = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    edged = _edged(values)
    if not edged.any():
        return values
    if edged.mean() > 0.25:
        return pc.utf8_trim(values, characters=WHITESPACE)
    trimmed = pc.utf8_trim(values.filter(edged), characters=WHITESPACE)
    return pc.replace_with_mask(values, pa.array(edged), trimmed)


def _edged(values: pa.Array) -> np.ndarray:
    """Which cells may begin or end with a character `str.strip` strips (read from pyarrow's
    buffers: the first two and the last two bytes of each cell)."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
    offsets = offsets[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    if buffer is None or not len(buffer):
        return np.zeros(len(values), dtype=bool)
    data = np.frombuffer(buffer, dtype=np.uint8)
    padded = np.concatenate([np.zeros(1, np.uint8), data, np.zeros(2, np.uint8)])
    start, end = offsets[:-1] + 1, offsets[1:] + 1  # (in `padded`)
    first = (padded[start].astype(np.int64) << 8) | padded[start + 1]
    last = (padded[end - 2].astype(np.int64) << 8) | padded[end - 1]
    return (end > start) & (_FIRST[first] | _LAST[last])


def read_columns(
    path: Path, mapping: SourceMapping, chunk_rows: int
) -> Iterator[RawChunk | ColumnChunk]:
    """The export's rows in chunks of `chunk_rows`, as the lenient reader cuts them."""
    path = Path(path)
    if _codec(mapping) not in _LINE_SAFE:
        yield from _read_csv(path, mapping, chunk_rows)
        return
    with path.open("rb") as raw:
        block = _header_block(raw, path, mapping)
        if block is None:
            yield from _read_csv(path, mapping, chunk_rows)
            return
        lines = _LineBlocks(raw)
        row = 1
        while True:
            start = lines.offset
            data, count = lines.take(chunk_rows)
            if count < 0:  # a line too long to be a row (e.g. CR line ends)
                yield from _read_csv(path, mapping, chunk_rows, resume=(start, row))
                return
            if not count:
                return
            parsed = block.columns(data, count, lines.taken_ends)
            if parsed is None:
                yield from _read_csv(path, mapping, chunk_rows, resume=(start, row))
                return
            yield ColumnChunk(row + 1, parsed[0], lines.offset, control=parsed[1])
            row += count


class _LineBlocks:
    """A file's lines, `count` at a time, as one bytes object (cut on b"\\n" with numpy)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.offset = raw.tell()  # of the next line
        self.buffer = b""
        self.start = 0  # of the next line in the buffer
        self.ends = np.empty(0, dtype=np.int64)  # where the buffer's lines end (from start)
        self.taken_ends = self.ends  # where the lines of the block taken last end in it

    def take(self, count: int) -> tuple[bytes, int]:
        """(the next `count` lines or those left, how many); -1 lines: one is too long."""
        while len(self.ends) < count:
            left = len(self.buffer) - self.start
            if left - (int(self.ends[-1]) + 1 if len(self.ends) else 0) > _LONGEST_LINE:
                return b"", -1
            more = self.raw.read(_READ_BYTES)
            if not more:
                break
            found = np.flatnonzero(np.frombuffer(more, dtype=np.uint8) == 10) + left
            self.buffer = self.buffer[self.start :] + more
            self.start = 0
            self.ends = np.concatenate([self.ends, found])
        taken = min(len(self.ends), count)
        left = len(self.buffer) - self.start
        cut = int(self.ends[taken - 1]) + 1 if len(self.ends) >= count else left
        data = self.buffer[self.start : self.start + cut]
        self.taken_ends = self.ends[:taken]
        self.start += cut
        self.ends = self.ends[taken:] - cut
        self.offset += cut
        return data, taken + (1 if data and not data.endswith(b"\n") else 0)


def _header_block(raw: BinaryIO, path: Path, mapping: SourceMapping) -> _Block | None:
    """The header, read as the lenient reader reads it; None when that reader must read
    the whole file (a header it would read otherwise, or report)."""
    line = raw.readline(_LONGEST_LINE)
    body = line.rstrip(b"\n").removesuffix(b"\r")
    if not body.strip() or b'"' in body or b"\r" in body or _CONTROL.search(body):
        return None
    try:
        text = body.decode(_encoding(mapping))
    except UnicodeDecodeError:
        return None
    header = next(csv.reader([text], delimiter=mapping.delimiter, strict=False))
    if len(header) < 2 or not any(h.strip() for h in header):
        return None
    columns = _check_header(path, header, mapping)
    position = {h.strip(): i for i, h in reversed(list(enumerate(header)))}  # the first
    return _Block(len(header), {f: position[c] for f, c in columns.items()}, mapping)
