"""The full list behind a capped list in a notice (附件清单): one workbook, one sheet per list,
read only — the office's daily ledger entries, the quarterly sample, the look-back findings.

A notice shows a summary and the top items; the reader who needs every row opens this. Its
rows come from the same contexts the notice is rendered from (citizen text already masked);
no cell is saved as a formula (`save_deterministic`). Its file name is Chinese (`file_name`),
sent RFC 2231-encoded (duban/notices/mailer.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from duban.workbooks.cells import display_width
from duban.workbooks.save import save_deterministic

__all__ = ("DetailSheet", "file_name", "write_detail_workbook")

# Characters no file name may hold on Windows, macOS or Linux, and control characters.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')


def file_name(*parts: str, suffix: str) -> str:
    """A file name from `parts` joined by "-", e.g. file_name("台账", "住房城乡建设委",
    "2026-10-31", suffix=".xlsx") -> "台账-住房城乡建设委-2026-10-31.xlsx": characters no file
    system takes become "_", spaces are squeezed, at most 120 characters before the suffix."""
    text = "-".join(" ".join(_UNSAFE.sub("_", p).split()) for p in parts if p)
    return text[:120].strip(" .") + suffix


@dataclass(frozen=True)
class DetailSheet:
    title: str  # the sheet's name (Chinese, at most 31 characters)
    columns: Sequence[tuple[str, str]]  # (key in each row, Chinese header)
    rows: Sequence[Mapping[str, Any]]


def write_detail_workbook(
    path: Path, sheets: Sequence[DetailSheet], stamp: datetime, *, note: str = ""
) -> Path:
    """Write the sheets to `path` (atomically, same content same bytes): a bold header row,
    frozen, filtered, columns as wide as their text (at most 60). `note`: a first sheet
    说明 with this text (what the list is, which notice it belongs to)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    first = book.active
    if note:
        first.title = "说明"
        first.append([note])
        first.column_dimensions["A"].width = 100
    else:
        book.remove(first)
    grey = PatternFill("solid", fgColor="D9D9D9")
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append([zh for _, zh in sheet.columns])
        widths = [display_width(zh) for _, zh in sheet.columns]
        for row in sheet.rows:
            values = [_cell(row.get(key)) for key, _ in sheet.columns]
            ws.append(values)
            for j, value in enumerate(values):
                widths[j] = max(widths[j], display_width(str(value)) if value is not None else 0)
        for j, width in enumerate(widths, start=1):
            head = ws.cell(row=1, column=j)
            head.font = Font(bold=True)
            head.fill = grey
            head.alignment = Alignment(vertical="center", wrap_text=True)
            ws.column_dimensions[get_column_letter(j)].width = min(60, max(8, width + 2))
        ws.freeze_panes = "A2"
        if sheet.columns:
            last = get_column_letter(len(sheet.columns))
            ws.auto_filter.ref = f"A1:{last}{len(sheet.rows) + 1}"
    save_deterministic(book, path, stamp)
    return path


def _cell(value: Any) -> Any:
    """What a cell holds: numbers and dates as they are, anything else as text; None empty."""
    if value is None or isinstance(value, int | float | datetime):
        return value
    return str(value)
