"""What the fast Excel reader (calamine) does not say, read from the workbook's XML.

calamine gives a cell's cached value only: a formula without one, and an error cell (#N/A),
come back empty; every number comes back as a double; rows that hold only formatting are
not there at all. The old reader (openpyxl) saw all of that. So, per sheet read:

- `scan_sheet`: one streaming pass over the sheet's XML (inflated in blocks, searched with
  `bytes.find`, never parsed as a whole): the number of its last `<row>`, and the few cells
  calamine cannot tell apart from empty ones — formulas whose cached value is missing or
  blank, error cells. Only the cells around a `<f` or `t="e"` hit are looked at.
- `whole_numbers`: only for a sheet where calamine gave a number from 2**53 on: the digits
  the XML holds for each such whole number (written without a point or exponent, they are
  exact, as openpyxl read them).
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.etree import ElementTree

BLOCK_BYTES = 1 << 20
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_ROOT = re.compile(rb"<(?:(\w+):)?worksheet[\s>]")
_ROW_NUMBER = re.compile(rb'\sr\s*=\s*["\']([0-9.]+)["\']')
_CELL_ATTR = re.compile(rb'\s(r|t)\s*=\s*(?:"([^"]*)"|\'([^\']*)\')')
_COORDINATE = re.compile(r"([A-Z]+)([0-9]+)")
_FORMULA_ATTR = re.compile(rb'\s(t|si)\s*=\s*(?:"([^"]*)"|\'([^\']*)\')')
_ERROR_TYPE = re.compile(rb'\st\s*=\s*["\']e["\']')
_BIG_WHOLE = rb"-?[0-9]{16,}"
_SPACE = (b" ", b">", b"\t", b"\r", b"\n")


@dataclass(frozen=True)
class BookParts:
    date1904: bool
    sheets: dict[str, str]  # sheet name -> its XML part in the archive


@dataclass(frozen=True)
class Special:
    """A cell calamine gives as empty: an error (`text` its code, e.g. "#N/A"), or a formula
    (`text` "=" + the formula) whose cached value is missing (`cached` None) or blank."""

    kind: str  # "error" | "formula"
    text: str
    cached: str | None = None


@dataclass
class SheetScan:
    last_row: int = 0  # the number of the sheet XML's last <row> (0: none)
    cells: dict[int, dict[int, Special]] = field(default_factory=dict)  # row -> column (0-based)
    _shared: dict[str, tuple[str, str]] = field(default_factory=dict)  # si -> (formula, at)


def book_parts(archive: zipfile.ZipFile) -> BookParts:
    """The workbook's date system and the XML part of each sheet, by name."""
    book_path = "xl/workbook.xml"
    rels = ElementTree.fromstring(archive.read("_rels/.rels"))
    for rel in rels.iter(f"{_RELS}Relationship"):
        if rel.get("Type", "").endswith("/officeDocument"):
            book_path = rel.get("Target", book_path).lstrip("/")
    book = ElementTree.fromstring(archive.read(book_path))
    folder, name = posixpath.split(book_path)
    targets = {}
    book_rels = f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"
    for rel in ElementTree.fromstring(archive.read(book_rels)).iter(f"{_RELS}Relationship"):
        target = rel.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        targets[rel.get("Id")] = posixpath.normpath(path)
    props = book.find(f"{_MAIN}workbookPr")
    date1904 = props is not None and props.get("date1904", "").lower() in ("1", "true")
    sheets = {
        sheet.get("name", ""): targets.get(sheet.get(_DOC_REL), "")
        for sheet in book.iter(f"{_MAIN}sheet")
    }
    return BookParts(date1904, sheets)


def _pieces(archive: zipfile.ZipFile, member: str) -> Iterator[tuple[bytes, bytes]]:
    """The sheet's XML in pieces of whole rows, with its namespace prefix (b"" or b"x:")."""
    prefix: bytes | None = None
    buffer = b""
    with archive.open(member) as stream:
        while block := stream.read(BLOCK_BYTES):
            buffer += block
            if prefix is None:
                found = _ROOT.search(buffer)
                if found is None and len(buffer) < 1 << 16:
                    continue
                prefix = (found.group(1) + b":") if found and found.group(1) else b""
            end = b"</" + prefix + b"row>"
            cut = buffer.rfind(end)
            if cut >= 0:
                cut += len(end)
                yield buffer[:cut], prefix
                buffer = buffer[cut:]
    yield buffer, prefix or b""


def _hits(piece: bytes, needle: bytes, follow: bytes) -> Iterator[int]:
    """Where `needle` is in `piece` as a whole tag name: followed by a byte of `follow`."""
    at = piece.find(needle)
    after = len(needle)
    while at >= 0:
        if at + after < len(piece) and piece[at + after] in follow:
            yield at
        at = piece.find(needle, at + 1)


def _cell_at(piece: bytes, at: int, prefix: bytes) -> tuple[int, int] | None:
    """The bounds of the `<c …>…</c>` element around position `at`."""
    start = piece.rfind(b"<" + prefix + b"c ", 0, at + 1)
    if start < 0:
        return None
    close = b"</" + prefix + b"c>"
    end = piece.find(close, at)
    return (start, end + len(close)) if end >= 0 else None


def _position(coordinate: str) -> tuple[int, int] | None:
    """ "AB12" -> (12, 27): the row number and the 0-based column."""
    found = _COORDINATE.fullmatch(coordinate)
    if found is None:
        return None
    column = 0
    for letter in found.group(1):
        column = column * 26 + ord(letter) - 64
    return int(found.group(2)), column - 1


def _element(cell: bytes, prefix: bytes, tag: bytes) -> tuple[bytes, bytes | None] | None:
    """A child element of the cell: (its attributes, its text or None when empty)."""
    found = re.search(
        b"<" + re.escape(prefix + tag) + rb"(\s[^>]*?)?(?:/>|>(.*?)</" + re.escape(prefix + tag)
        + b">)",
        cell,
        re.S,
    )  # fmt: skip
    if found is None:
        return None
    return found.group(1) or b"", found.group(2)


def _text(raw: bytes | None) -> str | None:
    return html.unescape(raw.decode("utf-8")) if raw else None


def _formula(scan: SheetScan, attrs: bytes, text: str | None, coordinate: str) -> str:
    """The formula as openpyxl gives it: "=" + its text; a shared formula's dependent cell
    (no text) is the shared one translated to the cell."""
    kinds = {m.group(1): (m.group(2) or m.group(3)) for m in _FORMULA_ATTR.finditer(attrs)}
    formula = "=" + (text or "")
    if kinds.get(b"t") == b"shared":
        si = (kinds.get(b"si") or b"").decode()
        if si in scan._shared:
            from openpyxl.formula.translate import Translator

            master, origin = scan._shared[si]
            return str(Translator(master, origin=origin).translate_formula(coordinate))
        if text:
            scan._shared[si] = (formula, coordinate)
    return formula


def _note_cell(scan: SheetScan, cell: bytes, prefix: bytes) -> None:
    head = cell[: cell.find(b">") + 1]
    attrs = {m.group(1): (m.group(2) or m.group(3) or b"") for m in _CELL_ATTR.finditer(head)}
    place = _position(attrs.get(b"r", b"").decode())
    if place is None:
        return
    value = _element(cell, prefix, b"v")
    cached = _text(value[1]) if value is not None else None
    written = _element(cell, prefix, b"f")
    special = None
    if written is not None:
        formula = _formula(scan, written[0], _text(written[1]), attrs[b"r"].decode())
        if cached is None or not cached.strip():
            special = Special("formula", formula, cached)
    if special is None and attrs.get(b"t") == b"e" and cached is not None:
        special = Special("error", cached)
    if special is not None:
        row, column = place
        scan.cells.setdefault(row, {})[column] = special


def scan_sheet(archive: zipfile.ZipFile, member: str) -> SheetScan:
    """The sheet's last row number and its special cells (see the module's doc)."""
    scan = SheetScan()
    for piece, prefix in _pieces(archive, member):
        row_tag = b"<" + prefix + b"row"
        last = piece.rfind(row_tag)
        while last >= 0 and piece[last + len(row_tag) : last + len(row_tag) + 1] not in _SPACE:
            last = piece.rfind(row_tag, 0, last)  # e.g. <rowBreaks>
        if last >= 0:
            number = _ROW_NUMBER.search(piece, last, piece.find(b">", last))
            if number is not None:
                scan.last_row = int(float(number.group(1)))
            else:  # rows without numbers: counted, as openpyxl does
                scan.last_row += sum(1 for _ in _hits(piece, row_tag, b" >\t\r\n"))
        seen: set[int] = set()
        hits = list(_hits(piece, b"<" + prefix + b"f", b" >/\t\r\n"))
        if b'"e"' in piece or b"'e'" in piece:  # a cheap test first: error cells are rare
            hits = sorted(hits + [m.start() for m in _ERROR_TYPE.finditer(piece)])
        for at in hits:
            bounds = _cell_at(piece, at, prefix)
            if bounds is None or bounds[0] in seen:
                continue
            seen.add(bounds[0])
            _note_cell(scan, piece[bounds[0] : bounds[1]], prefix)
    return scan


def whole_numbers(archive: zipfile.ZipFile, member: str) -> dict[tuple[int, int], str]:
    """(row number, 0-based column) -> the digits of each whole number of 16 digits or more
    that the sheet's XML holds as a number (a cell's `<v>`, no point, no exponent)."""
    found: dict[tuple[int, int], str] = {}
    for piece, prefix in _pieces(archive, member):
        value = re.compile(
            b"<" + re.escape(prefix) + b"v>(" + _BIG_WHOLE + b")</" + re.escape(prefix) + b"v>"
        )
        for hit in value.finditer(piece):
            bounds = _cell_at(piece, hit.start(), prefix)
            if bounds is None:
                continue
            head = piece[bounds[0] : piece.find(b">", bounds[0]) + 1]
            attrs = {
                m.group(1): (m.group(2) or m.group(3) or b"") for m in _CELL_ATTR.finditer(head)
            }
            place = _position(attrs.get(b"r", b"").decode())
            if place is not None and attrs.get(b"t", b"n") == b"n":
                found[place] = hit.group(1).decode()
    return found
