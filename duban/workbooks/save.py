"""Saving a workbook deterministically: the same content gives the same bytes."""

from __future__ import annotations

import zipfile
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from duban.rules.formulas import looks_like_formula

__all__ = ("neutralise_formulas", "save_deterministic")

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def neutralise_formulas(book: Any) -> int:
    """Make every cell whose text would run as a formula (duban/rules/formulas.py) a text
    cell, its value unchanged: Duban writes no formula of its own, so any is from data.
    Returns how many cells were changed."""
    changed = 0
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if looks_like_formula(cell.value):
                    cell.data_type = "s"
                    changed += 1
    return changed


def save_deterministic(book: Any, path: Path, stamp: datetime) -> None:
    """Save with `stamp` as the document's time and fixed zip times: same content, same bytes.
    No cell of data is saved as a formula (`neutralise_formulas`)."""
    from openpyxl.xml.functions import tostring

    neutralise_formulas(book)
    book.properties.creator = "Duban"
    book.properties.created = stamp
    buffer = BytesIO()
    book.save(buffer)  # stamps docProps/core.xml with the time of saving: replaced below
    book.properties.modified = stamp
    core = tostring(book.properties.to_tree())
    out = BytesIO()
    with (
        zipfile.ZipFile(BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = core if info.filename == "docProps/core.xml" else source.read(info)
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(out.getvalue())
    partial.replace(path)
