"""The fast Excel reader (calamine, duban/ingest/xlsx.py) against the one it replaced
(openpyxl, xlsx_openpyxl.py): the same generated workbooks give the same chunks (rows, row
numbers, problems, blank rows, notes), the same stored tickets and the same quarantine, on
SQLite and PostgreSQL (issue 17)."""

from __future__ import annotations

import re
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openpyxl import Workbook
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from openpyxl.worksheet.formula import ArrayFormula
from sqlalchemy import Engine, select, text

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import Base, QuarantinedRow, Ticket
from duban.ingest.chunks import RawChunk
from duban.ingest.city import sync_city
from duban.ingest.sources import read_export
from duban.ingest.xlsx import XLSX_READERS
from tests.db.test_import_xlsx import values
from tests.db.test_ticket_import import COLUMNS, row, run
from tests.db.test_ticket_import import city as city  # the fixture

YELLOW = PatternFill("solid", fgColor="FFFF00")


def good_rows(prefix: str, count: int) -> list[list[Any]]:
    """Rows of every kind of good cell: times as date cells, as serial numbers in General
    cells and as text; numbers as numbers and as text; booleans; optional cells empty."""
    rows = []
    for n in range(count):
        r = row(f"{prefix}{n}", address=f"{n}号院", satisfaction="satisfied" if n % 3 else "")
        cells = values(r)
        kind = n % 5
        if kind == 0:
            cells[COLUMNS.index("received_at")] = datetime(2026, 9, 30, 8, n % 60, n % 7)
            cells[COLUMNS.index("resolved_at")] = date(2026, 10, 9)
            cells[COLUMNS.index("resolved")] = True
        elif kind == 1:
            cells[COLUMNS.index("received_at")] = 46295.5 + n / 1440  # a serial date
            cells[COLUMNS.index("urgency")] = 2
            cells[COLUMNS.index("resolved")] = False
        elif kind == 2:  # every optional cell empty
            cells = values({c: r[c] for c in ("external_id", "received_at", "category", "unit")})
        elif kind == 3:
            cells[COLUMNS.index("external_id")] = 202610190000 + n  # an id as a whole number
            cells[COLUMNS.index("returned_count")] = 1
            cells[COLUMNS.index("reassigned_count")] = 0.0
            cells[COLUMNS.index("address")] = f"  {n}号  "  # padded text
        else:
            cells[COLUMNS.index("dispatched_at")] = datetime(2026, 9, 30, 12, 0, 0, 600_000)
            cells[COLUMNS.index("first_response_at")] = "2026-09-30 13:00"
            cells[COLUMNS.index("urgency")] = "2"
        rows.append(cells)
    return rows


def bad_rows(prefix: str, negative: bool) -> list[list[Any]]:
    """A row of each kind an Excel export can get wrong (and validation after it).
    `negative`: with a negative number in a time column (validation cannot import it yet:
    "-3.5" overflows the due-time calendar, also from a CSV export)."""
    return [
        values(row(f"{prefix}big"), external_id=12345678901234567890.0),  # beyond 2**53
        # from 2**53 on, written as whole numbers (no point, no exponent): exact, kept
        values(row(f"{prefix}whole"), external_id=2**53 + 1, address=2**53 + 2),
        values(row(f"{prefix}f1"), returned_count="=1+1"),  # a formula, no cached value
        values(row(f"{prefix}f2"), category="=A1&B1", urgency="=2"),  # two in one row
        values(row(f"{prefix}na"), received_at="#N/A"),  # an error cell
        values(row(f"{prefix}div"), address="#DIV/0!"),  # an error cell in a text column
        values(row(f"{prefix}t"), received_at=time(12, 30)),  # a time without a date
        values(row(f"{prefix}td"), received_at=timedelta(hours=30)),  # a duration
        *([values(row(f"{prefix}neg"), received_at=-3.5)] if negative else []),  # no date
        values(row(f"{prefix}far"), received_at=3e6),  # beyond 9999-12-31
        values(row(f"{prefix}s"), received_at="2026年9月30日"),  # text no format reads
        values(row(f"{prefix}u"), unit="no-such-unit", urgency=9),  # a bad unit and level
        values(row(f"{prefix}b"), resolved=True, urgency=2.5),
        [None] * (len(COLUMNS) - 1) + ["=0"],  # only a formula: not blank
        ["   ", None, " "] + [None] * (len(COLUMNS) - 3),  # blanks only: blank
    ]


def workbook(path: Path, *, mac: bool = False, negative: bool = True) -> Path:
    """Several sheets: instructions, a title row over the header, a header over two rows,
    blank and formatting-only rows inside and after the data, good and bad rows."""
    book = Workbook()
    if mac:
        book.epoch = CALENDAR_MAC_1904
    notes = book.active
    assert notes is not None
    notes.title = "说明"
    notes.append(["本表为12345热线工单导出"])
    first = book.create_sheet("十月上")
    first.append(["2026年10月工单明细"])
    first.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMNS))
    first.append([])  # an empty row between the title and the header
    first.append(COLUMNS)
    for n, cells in enumerate(good_rows("A", 23) + bad_rows("A", negative)):
        first.append(cells)
        if n % 9 == 4:
            first.append([])  # a blank row
            first.append([None, None, None, "not mapped"])  # text in an unmapped column
    for number in range(first.max_row + 3, first.max_row + 40):  # formatting only
        first.cell(row=number, column=2).fill = YELLOW
    second = book.create_sheet("十月下")
    second.append(["external_id", "工单信息"] + [None] * (len(COLUMNS) - 2))
    second.merge_cells("A1:A2")
    second.merge_cells(start_row=1, start_column=2, end_row=1, end_column=len(COLUMNS))
    second.append([None, *COLUMNS[1:]])
    for cells in good_rows("B", 9) + bad_rows("B", negative):
        second.append(cells)
    second.cell(row=6, column=5).fill = YELLOW  # inside the data: nothing changes
    book.create_sheet("汇总").append(["合计", 3])
    book.create_sheet("空表")
    book.save(path)
    return path


def chunks(path: Path, city: CityConfig, reader: str, chunk_rows: int) -> list[RawChunk]:
    return list(read_export(path, city.source("duban"), chunk_rows, reader))  # type: ignore[arg-type]


def same_chunk(old: RawChunk, new: RawChunk) -> None:
    assert (new.sheet, new.sheet_index, new.first_row) == (
        old.sheet,
        old.sheet_index,
        old.first_row,
    )
    assert new.row_numbers().tolist() == old.row_numbers().tolist()
    assert list(new.frame.columns) == list(old.frame.columns)
    assert new.frame.to_dict("list") == old.frame.to_dict("list")
    assert all(isinstance(v, str) for v in np.ravel(new.frame.to_numpy()))
    assert new.problems == old.problems
    assert (new.blank_lines, new.notes) == (old.blank_lines, old.notes)


@pytest.mark.parametrize("chunk_rows", [3, 4, 20_000])
@pytest.mark.parametrize("mac", [False, True])
def test_both_readers_give_the_same_chunks(
    city_config: CityConfig, tmp_path: Path, chunk_rows: int, mac: bool
) -> None:
    path = workbook(tmp_path / "export.xlsx", mac=mac)
    old = chunks(path, city_config, "openpyxl", chunk_rows)
    new = chunks(path, city_config, "calamine", chunk_rows)
    assert len(new) == len(old)
    for o, n in zip(old, new, strict=True):
        same_chunk(o, n)
    # The workbook holds what it is meant to: each kind of cell the readers see differently.
    problems = [p for c in new for found in c.problems.values() for p in found]
    reasons = {p["reason"].split(":")[0] for p in problems}
    assert reasons == {
        "a formula without a cached value (save the workbook in Excel)",
        "an id Excel stored as a number beyond 2**53",
    }
    assert sum(c.blank_lines for c in new) > 40
    texts = {v for c in new for v in np.ravel(c.frame.to_numpy())}
    assert {"#N/A", "#DIV/0!", "12:30:00", "1 day, 6:00:00", "TRUE", "FALSE"} <= texts
    assert "2026-09-30 12:00:00" in texts and "202610190003" in texts
    assert "9007199254740992" in texts  # an id of 16 digits, not quarantined


def stored(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The stored tickets and quarantined rows, without ids and times of the run."""
    skip = {"id", "import_run_id", "created_at", "updated_at", "imported_at", "last_seen_at"}
    columns = [c for c in Ticket.__table__.columns if c.name not in skip]
    with session_scope(engine) as session:
        rows = session.execute(select(*columns).order_by(Ticket.external_id)).all()
        bad = session.execute(
            select(QuarantinedRow.sheet, QuarantinedRow.row_number, QuarantinedRow.errors,
                   QuarantinedRow.raw).order_by(QuarantinedRow.sheet, QuarantinedRow.row_number)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows], [tuple(r) for r in bad]


def emptied(engine: Engine, city: CityConfig) -> None:
    """An empty database again, its ids counting from 1 (the row hash holds the unit's)."""
    tables = [f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
            if conn.execute(
                text("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")
            ).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))
    with session_scope(engine) as session:
        sync_city(session, city)


def test_both_readers_store_the_same_rows_and_quarantine(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "export.xlsx", negative=False)
    results = {}
    for reader in XLSX_READERS:
        emptied(engine, city)
        summary = run(engine, city, path, tmp_path / reader, xlsx_reader=reader, chunk_rows=7)
        report = Path(summary.report_path).read_text(encoding="utf-8-sig")
        counts = (summary.read, summary.inserted, summary.quarantined, summary.blank_lines)
        results[reader] = (counts, summary.notes, report, stored(engine))
    assert results["calamine"] == results["openpyxl"]
    (read, inserted, quarantined, blank), notes, report, (tickets, bad) = results["calamine"]
    assert read >= inserted + quarantined and blank > 40 and len(tickets) == inserted
    assert inserted > 20 and quarantined >= 2 * 13 and len(bad) >= quarantined
    assert notes == ["sheets without the mapped header, not read: 说明, 汇总, 空表"]
    assert "formula without a cached value" in report and "2**53" in report


def rewritten(path: Path, target: Path, change: dict[bytes, bytes]) -> Path:
    """A copy of the workbook with its first sheet's XML edited (what openpyxl cannot
    write: shared formulas, a wrong dimension)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                for pattern, replacement in change.items():
                    data, count = re.subn(pattern, replacement, data)
                    assert count, pattern
            copy.writestr(item, data)
    return target


def simple_book(path: Path, count: int) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    for n in range(count):
        sheet.append(values(row(f"X{n}")))
    book.save(path)
    return path


def test_shared_formulas_without_values_are_named_alike(
    city_config: CityConfig, tmp_path: Path
) -> None:
    column = get_column_letter(COLUMNS.index("returned_count") + 1)
    plain = simple_book(tmp_path / "plain.xlsx", 3)
    shared = {  # a shared formula over rows 2-4: its first cell holds it, the others refer
        b'</row><row r="3"': f'<c r="{column}2"><f t="shared" ref="{column}2:{column}4" si="0">B2+1</f></c></row><row r="3"'.encode(),  # noqa: E501
        b'</row><row r="4"': f'<c r="{column}3"><f t="shared" si="0"/></c></row><row r="4"'.encode(),  # noqa: E501
    }  # fmt: skip
    path = rewritten(plain, tmp_path / "shared.xlsx", shared)
    old = chunks(path, city_config, "openpyxl", 100)
    new = chunks(path, city_config, "calamine", 100)
    for o, n in zip(old, new, strict=True):
        same_chunk(o, n)
    assert [p[0]["value"] for p in new[0].problems.values()] == ["=B2+1", "=B3+1"]


def array_formula_export(path: Path) -> Path:
    """One ticket whose returned_count is an array formula without a cached value."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    sheet.append(values(row("X1")))
    cell = sheet.cell(row=2, column=COLUMNS.index("returned_count") + 1)
    cell.value = ArrayFormula(cell.coordinate, "=SUM(1,2)")
    book.save(path)
    return path


def test_where_calamine_reads_what_openpyxl_did_not(
    city_config: CityConfig, tmp_path: Path
) -> None:
    """An array formula without a cached value is quarantined (openpyxl read it as empty);
    rows beyond a wrong <dimension> are read (openpyxl's read-only mode dropped them)."""
    array_formula_export(tmp_path / "array.xlsx")
    [old] = chunks(tmp_path / "array.xlsx", city_config, "openpyxl", 100)
    [new] = chunks(tmp_path / "array.xlsx", city_config, "calamine", 100)
    assert old.problems == {}
    assert new.problems[0][0]["value"] == "=SUM(1,2)"
    plain = simple_book(tmp_path / "plain.xlsx", 4)
    path = rewritten(plain, tmp_path / "dim.xlsx", {rb'<dimension ref="[^"]*"/>': b'<dimension ref="A1:U2"/>'})  # fmt: skip  # noqa: E501
    [old] = chunks(path, city_config, "openpyxl", 100)
    [new] = chunks(path, city_config, "calamine", 100)
    assert old.frame["external_id"].tolist() == ["X0"]
    assert new.frame["external_id"].tolist() == ["X0", "X1", "X2", "X3"]
