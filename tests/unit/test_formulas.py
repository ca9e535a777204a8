"""No cell that came from data runs as a formula (OWASP's CSV-injection rule), in any workbook
or CSV file Duban writes."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from duban.cli.metrics import write_metrics
from duban.rules.formulas import csv_safe, looks_like_formula
from duban.workbooks import Finding, save_deterministic, write_report

ATTACKS = ["=NOW()", '=HYPERLINK("http://evil.example","点此")', "+1+2", "-2+3", "@SUM(A1)",
           "\t=1", "\r=1", "=cmd|' /C calc'!A0"]  # fmt: skip
HARMLESS = ["-5", "+3.5", "-1e3", "12%", "市民反映=噪声", "", "正常文字", "2026-10-01"]


@pytest.mark.parametrize("text", ATTACKS)
def test_formula_like_text_is_neutralised(text: str) -> None:
    assert looks_like_formula(text)
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("value", [*HARMLESS, None, 5, -5.0])
def test_numbers_and_plain_text_are_left_alone(value: object) -> None:
    assert not looks_like_formula(value)
    assert csv_safe(value) == value


def test_a_saved_workbook_has_no_formula_from_data(tmp_path: Path) -> None:
    book = Workbook()
    ws = book.active
    ws.append(["编号", "内容"])
    for i, text in enumerate(ATTACKS):
        ws.append([f"T{i}", text])
    path = tmp_path / "out.xlsx"
    save_deterministic(book, path, datetime(2026, 10, 1))
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet  # no formula element at all
    back = load_workbook(path).active
    assert [back.cell(i + 2, 2).value for i in range(len(ATTACKS))] == ATTACKS  # kept exactly
    assert all(back.cell(i + 2, 2).data_type == "s" for i in range(len(ATTACKS)))


def test_csv_reports_and_metrics_have_no_formula_from_data(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    write_report(report, [Finding("x.xlsx", "清单", 3, "title", "标题", "=NOW()", "bad")])
    with report.open(encoding="utf-8-sig", newline="") as handle:
        [header, row] = list(csv.reader(handle))
    assert row[header.index("value")] == "'=NOW()"

    out = io.StringIO()
    write_metrics(pd.DataFrame({"unit": ["=HYPERLINK(1)"], "tickets": [3], "rate": [-0.5]}),
                  "csv", out)  # fmt: skip
    lines = out.getvalue().lstrip("\ufeff").splitlines()
    assert lines[1] == "'=HYPERLINK(1),3,-0.5"
