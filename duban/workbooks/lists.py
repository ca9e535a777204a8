"""The fill-in list sheet that goes out and comes back (the ledger's 任务清单 and 政策清单, the
checklist's 抽查清单), and the read-me sheet before it.

A list sheet has one header row: grey over the columns that identify a row (never to be
edited), yellow over those to fill in, whose cells are pale yellow; thin borders, top-aligned
cells, drop-downs and date checks (`validate`), frozen identifying columns, a filter, and
landscape printing with the header on every page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from duban.workbooks.cells import display_width
from duban.workbooks.sheets import Column

__all__ = ("ListLayout", "ListSheet", "write_readme")


@dataclass(frozen=True)
class ListLayout:
    fill_in: tuple[str, ...]  # the fields the recipient fills in
    wrap: tuple[str, ...]  # the fields whose cells wrap their text
    formats: Mapping[str, str] = field(default_factory=dict)  # field -> number format
    limits: Mapping[str, int] = field(default_factory=dict)  # field -> widest column (else 24)


class ListSheet:
    """A list sheet being written: `append` its rows, then `style` it, `validate` columns and
    `finish` it."""

    def __init__(self, book: Any, title: str, columns: Sequence[Column], layout: ListLayout):
        self.columns = list(columns)
        self.layout = layout
        self.ws = book.create_sheet(title)
        headers = [c.zh for c in self.columns]
        self.ws.append(headers)
        self.widths = [display_width(h) for h in headers]
        self.last = 1  # the last row written

    def append(self, values: list[Any]) -> None:
        self.ws.append(values)
        self.last += 1
        for j, value in enumerate(values):
            if value is not None:
                text = value.isoformat() if isinstance(value, date) else str(value)
                self.widths[j] = max(self.widths[j], display_width(text))

    def style(self) -> None:
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
        from openpyxl.utils import get_column_letter

        layout = self.layout
        grey = PatternFill("solid", fgColor="D9D9D9")
        yellow = PatternFill("solid", fgColor="FFE699")
        pale = PatternFill("solid", fgColor="FFF9E5")
        thin = Side(style="thin", color="BFBFBF")
        border = Border(left=thin, right=thin, top=thin, bottom=thin)
        for j, col in enumerate(self.columns, start=1):
            head = self.ws.cell(row=1, column=j)
            head.font = Font(bold=True)
            head.fill = yellow if col.field in layout.fill_in else grey
            head.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            head.border = border
            for cell in self.cells(col.field):
                cell.border = border
                cell.alignment = Alignment(vertical="top", wrap_text=col.field in layout.wrap)
                if col.field in layout.fill_in:
                    cell.fill = pale
                if col.field in layout.formats:
                    cell.number_format = layout.formats[col.field]
            limit = layout.limits.get(col.field, 24)
            width = min(limit, max(9, self.widths[j - 1] + 2))
            self.ws.column_dimensions[get_column_letter(j)].width = width

    def cells(self, name: str) -> list[Any]:
        """The cells of column `name` below the header."""
        j = self.position(name)
        rows = self.ws.iter_rows(min_row=2, max_row=self.last, min_col=j, max_col=j)
        return [cell for (cell,) in rows]

    def position(self, name: str) -> int:
        return [c.field for c in self.columns].index(name) + 1

    def validate(self, name: str, rule: Any) -> None:
        """Apply the DataValidation `rule` to the cells of column `name` (at least row 2)."""
        from openpyxl.utils import get_column_letter

        letter = get_column_letter(self.position(name))
        rule.add(f"{letter}2:{letter}{max(self.last, 2)}")
        self.ws.add_data_validation(rule)

    def finish(self, freeze: str, *, fit_width: bool) -> None:
        """Freeze the panes above and left of `freeze`, filter, print landscape (one page
        wide when `fit_width`) with the header row on every page."""
        from openpyxl.utils import get_column_letter

        ws = self.ws
        ws.freeze_panes = freeze
        ws.auto_filter.ref = f"A1:{get_column_letter(len(self.columns))}{self.last}"
        ws.page_setup.orientation = "landscape"
        if fit_width:
            ws.page_setup.fitToWidth = 1
            ws.page_setup.fitToHeight = 0
            ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_rows = "1:1"


def write_readme(ws: Any, lines: list[list[Any]], heading_row: int) -> None:
    """The read-me sheet: `lines` (label in A, text in B), its title (row 1) large and bold,
    the heading of the instructions (`heading_row`) bold."""
    from openpyxl.styles import Font

    for line in lines:
        ws.append(line)
    ws["A1"].font = Font(bold=True, size=14)
    ws[f"A{heading_row}"].font = Font(bold=True)
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 100
