"""duban.workbooks: the xlsx helpers the plan workbook, the ledger and the checklist share."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from duban import workbooks as wb
from duban.ingest.plan import POLICIES, TASKS
from duban.loops.monthly.ledger import LEDGER_POLICIES, LEDGER_TASKS, LedgerError
from duban.loops.quarterly.checklist import ChecklistError


def test_cell_text_and_keys() -> None:
    assert wb.cell_text(None) == ""
    assert wb.cell_text(datetime(2026, 5, 1)) == "2026-05-01"
    assert wb.cell_text(datetime(2026, 5, 1, 8, 30)) == "2026-05-01 08:30:00"
    assert wb.cell_text(3.0) == "3"
    assert wb.cell_text("  x ") == "x"
    assert wb.header_key(" Due-Month ") == wb.header_key("due month") == "due_month"
    assert wb.word_key(" In Progress ") == "in_progress"
    assert wb.display_width("进度ab") == 6


def test_dates_months_and_progress() -> None:
    assert wb.date_of("2026年3月15日") == wb.date_of("2026/3/15 00:00") == date(2026, 3, 15)
    assert wb.date_of("2026-02-30") is None
    assert wb.month_of("2026年3月") == wb.month_of(datetime(2026, 3, 9)) == date(2026, 3, 1)
    assert wb.month_of("2026-13") is None
    assert wb.parse_progress("45%") == wb.parse_progress(45) == 0.45
    assert wb.parse_progress(True) is None
    assert wb.parse_progress(1 / 3) == 0.333333


def test_same_value_compares_progress_to_its_six_decimals() -> None:
    # a ledger written with round(progress, 6) reads back as the stored progress ...
    assert wb.same_value(1 / 3, round(1 / 3, wb.PROGRESS_DECIMALS))
    assert wb.same_value(0.45, 0.45)
    # ... and any change a cell can carry (one millionth) is a change, for every value
    for old in (0.1, 0.45, 0.999998, 0.0):
        assert not wb.same_value(old, round(old + 1e-6, wb.PROGRESS_DECIMALS))
    assert wb.same_value(date(2026, 5, 1), date(2026, 5, 1))
    assert not wb.same_value("a", "b")
    assert not wb.same_value(None, 0.0)


def test_ledger_sheets_are_the_plan_lists_every_column_required() -> None:
    assert [c.field for c in LEDGER_TASKS.columns] == [
        c.field for c in TASKS.columns if c.field != "start_month"
    ]
    assert LEDGER_POLICIES.columns == tuple(wb.Column(c.field, c.zh) for c in POLICIES.columns)
    assert all(c.required for c in LEDGER_TASKS.columns)
    assert (LEDGER_TASKS.key, LEDGER_TASKS.zh) == (TASKS.key, TASKS.zh)


def test_titles_and_labels(tmp_path: Path) -> None:
    assert TASKS.titles_in(["Tasks ", "任务清单", "other"]) == ["Tasks ", "任务清单"]
    book = Workbook()
    ws = book.active
    assert ws is not None
    for row in (["标题"], [], ["单位编码", "housing"], ["Unit", "water"]):
        ws.append(row)
    assert wb.labelled_values(ws, ("单位编码", "unit")) == ["housing", "water"]


def test_open_workbook_and_read_sheet_faults(tmp_path: Path) -> None:
    missing = tmp_path / "none.xlsx"
    with pytest.raises(wb.WorkbookFileError) as caught:
        wb.open_workbook(missing)
    assert str(caught.value) == f"{missing}: file not found"
    assert caught.value.reason == f"file not found: {missing}"
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("a")
    with pytest.raises(wb.WorkbookFileError, match=r"unsupported file type '\.csv'"):
        wb.open_workbook(csv_file)

    path = tmp_path / "t.xlsx"
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "任务清单"
    ws.append(["问题编号", "code", "任务编号"])
    ws.append(["P01", "T1", "T2"])
    book.save(path)
    opened = wb.open_workbook(path)
    try:
        with pytest.raises(wb.SheetError) as error:
            wb.read_sheet(TASKS, opened["任务清单"], path)
    finally:
        opened.close()
    assert error.value.reason.startswith("columns 'code' and '任务编号' are both 任务编号/code")
    assert str(error.value) == f"{path}: sheet '任务清单': {error.value.reason}"


def test_reject_words_the_error_and_writes_every_finding(tmp_path: Path) -> None:
    findings = [
        wb.Finding("l.xlsx", "任务清单", n, "progress", "进度", "x", "bad") for n in range(60)
    ]
    error = wb.reject(
        LedgerError, tmp_path / "l.xlsx", findings, tmp_path, kind="ledger", verdict="rejected"
    )
    assert isinstance(error, LedgerError)
    lines = str(error).splitlines()
    assert lines[0] == "l.xlsx: rejected: 60 problems found"
    assert lines[1] == "  l.xlsx, sheet '任务清单', row 0, column 进度: bad"
    assert lines[-2] == "  … and 10 more"
    assert error.report_path is not None and error.report_path.parent.name == "rejected"
    text = error.report_path.read_text(encoding="utf-8-sig").splitlines()
    assert text[0] == ",".join(wb.REPORT_COLUMNS) and len(text) == 61
    one = wb.reject(ChecklistError, tmp_path / "c.xlsx", findings[:1], None, kind="checks",
                    verdict="checklist rejected")  # fmt: skip
    assert str(one).splitlines()[0] == "c.xlsx: checklist rejected: 1 problem found"
    assert one.report_path is None and isinstance(one, wb.WorkbookError)


def test_save_deterministic(tmp_path: Path) -> None:
    def save(name: str) -> bytes:
        book = Workbook()
        ws = book.active
        assert ws is not None
        ws.append(["a", 1])
        wb.save_deterministic(book, tmp_path / name, datetime(2026, 5, 31))
        return (tmp_path / name).read_bytes()

    assert save("a.xlsx") == save("b.xlsx")
    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"2026-05-31T00:00:00Z" in z.read("docProps/core.xml")
    assert not list(tmp_path.glob("*.part"))
