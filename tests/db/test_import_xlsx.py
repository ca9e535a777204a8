"""Excel exports (issue 15, item 10): every sheet with the mapped header, the header found
below title rows and merged cells, serial dates, booleans, ids as text, empty formatted rows
ignored, formulas without a cached value named (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook
from openpyxl.styles import PatternFill
from sqlalchemy import Engine, select

from duban.config import CityConfig, load_config
from duban.db import session_scope
from duban.db.models import QuarantinedRow
from duban.ingest.sources import ExportError
from tests.db.test_ticket_import import COLUMNS, row, run, tickets
from tests.db.test_ticket_import import city as city  # the fixture


def values(r: dict[str, str], **cells: Any) -> list[Any]:
    out: list[Any] = [r.get(c, "") or None for c in COLUMNS]
    for name, value in cells.items():
        out[COLUMNS.index(name)] = value
    return out


def new_book(title: str = "Sheet") -> tuple[Workbook, Any]:
    """A workbook and its first sheet, titled."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    return book, sheet


def two_sheets(path: Path, rows: dict[str, list[list[Any]]]) -> Workbook:
    """A workbook of two sheets (titled by `rows`' keys), each the header and its rows."""
    first_title, second_title = rows
    book, first = new_book(first_title)
    second = book.create_sheet(second_title)
    for sheet in (first, second):
        sheet.append(COLUMNS)
        for cells in rows[sheet.title]:
            sheet.append(cells)
    book.save(path)
    return book


def quarantined(engine: Engine) -> dict[tuple[str | None, int], list[dict[str, str]]]:
    with session_scope(engine) as session:
        return {(q.sheet, q.row_number): q.errors for q in session.scalars(select(QuarantinedRow))}


def test_every_sheet_with_the_header_is_read_below_title_rows(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    book, notes = new_book("说明")  # an instructions sheet first
    notes.append(["本表为12345热线工单导出，请勿修改表头"])
    first = book.create_sheet("十月上")
    first.append(["2026年10月工单明细"])  # a merged title row above the header
    first.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMNS))
    first.append(COLUMNS)
    first.append(values(row("S1")))
    first.append(values(row("S2")))
    second = book.create_sheet("十月下")
    # A header over two rows: `external_id` merged down over both, the others below a group.
    second.append(["external_id", "工单信息"] + [None] * (len(COLUMNS) - 2))
    second.merge_cells("A1:A2")
    second.merge_cells(start_row=1, start_column=2, end_row=1, end_column=len(COLUMNS))
    second.append([None, *COLUMNS[1:]])
    second.append(values(row("S3")))
    book.create_sheet("汇总").append(["合计", 3])
    path = tmp_path / "sheets.xlsx"
    book.save(path)

    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (3, 3, 0)
    assert set(tickets(engine)) == {"S1", "S2", "S3"}
    assert "sheets without the mapped header, not read: 说明, 汇总" in summary.line()


def test_cells_excel_writes_its_own_way(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    book, sheet = new_book()
    sheet.append(COLUMNS)
    sheet.append(values(row("V1"), received_at=46295.5, resolved=True))  # 2026-09-30 12:00
    sheet.append(values(row("ignored"), external_id=202610190001))  # an exact whole number
    sheet.append(values(row("V3"), external_id=12345678901234567890.0))  # beyond 2**53
    sheet.append(values(row("V4"), returned_count="=1+1"))  # no cached value (openpyxl)
    sheet.append(values(row("V5"), resolved=False, urgency=2))
    for number in range(7, 300):  # empty rows that carry only a format
        sheet.cell(row=number, column=3).fill = PatternFill("solid", fgColor="FFFF00")
    path = tmp_path / "cells.xlsx"
    book.save(path)

    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (5, 3, 2)
    assert summary.blank_lines == 293
    stored = tickets(engine)
    assert set(stored) == {"V1", "202610190001", "V5"}
    assert stored["V1"].received_at == datetime(2026, 9, 30, 12, 0)
    assert stored["V1"].resolved is True and stored["V5"].resolved is False
    bad = quarantined(engine)
    assert sorted(bad) == [("Sheet", 4), ("Sheet", 5)]
    assert bad[("Sheet", 4)][0]["field"] == "external_id"
    assert "2**53" in bad[("Sheet", 4)][0]["reason"]
    assert bad[("Sheet", 5)][0]["field"] == "returned_count"
    assert "formula without a cached value" in bad[("Sheet", 5)][0]["reason"]
    assert bad[("Sheet", 5)][0]["value"] == "=1+1"


@pytest.fixture
def one_sheet(city: CityConfig, config_dir: Path) -> CityConfig:
    path = config_dir / "sources" / "duban.yaml"
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    mapping["sheet"] = "十月下"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return load_config(config_dir)


def test_the_mapping_may_name_the_sheet(
    engine: Engine, one_sheet: CityConfig, tmp_path: Path
) -> None:
    path = tmp_path / "named.xlsx"
    book = two_sheets(path, {"十月上": [values(row("T1"))], "十月下": [values(row("T2"))]})
    summary = run(engine, one_sheet, path, tmp_path)
    assert (summary.read, summary.inserted) == (1, 1)
    assert set(tickets(engine)) == {"T2"}
    book.remove(book["十月下"])
    book.save(path)
    with pytest.raises(ExportError, match="no sheet '十月下'"):
        run(engine, one_sheet, path, tmp_path)


def test_a_workbook_without_the_header_names_the_missing_columns(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    book, sheet = new_book()
    sheet.append([c for c in COLUMNS if c != "unit"])
    path = tmp_path / "nounit.xlsx"
    book.save(path)
    with pytest.raises(ExportError, match=r"'unit' \(for unit\)"):
        run(engine, city, path, tmp_path)


def test_bad_rows_of_two_sheets_at_the_same_row_are_both_recorded(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = tmp_path / "two.xlsx"
    two_sheets(
        path,
        {
            title: [values(row(f"{p}1")), values(row(f"{p}2", received_at="2026"))]  # row 3: bad
            for title, p in (("甲", "A"), ("乙", "B"))
        },
    )
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (4, 2, 2)
    assert sorted(quarantined(engine)) == [("乙", 3), ("甲", 3)]
    again = run(engine, city, path, tmp_path)
    assert (again.quarantined, again.unchanged) == (2, 2)
    assert len(quarantined(engine)) == 2  # recorded once each
