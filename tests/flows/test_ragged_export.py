"""Empty cells, end to end (issue 14, item 1): an export in which every optional column has
empty cells in some rows, imported through the shipped `duban` mapping, then every loop run
over it (daily, weekly, monthly with approval, quarterly twice with the inspectors'
checklist — empty 核验说明 cells — imported between the runs, look-back, annual) on SQLite
and PostgreSQL. No run may crash, and no archived notice, workbook or CSV, no .eml and no
delivered mail or attachment may show `nan`, `NaN` or `None`: a missing value is shown as
nothing or （未填写）."""

from __future__ import annotations

import csv
import email
import io
import re
from datetime import date, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from duban.config import TICKET_FIELDS
from duban.db import session_scope
from duban.db.models import Ticket
from duban.ingest.tickets import import_tickets
from duban.loops.lookback.findings import build_request
from duban.loops.quarterly.checklist import import_checks
from duban.settings import get_settings
from flows.annual import annual_evaluation
from flows.daily import daily_report
from flows.lookback import lookback
from flows.monthly import approve_monthly, monthly_bulletin
from flows.quarterly import quarterly_spot_check
from flows.weekly import weekly_analysis

FIELDS = list(TICKET_FIELDS)  # the shipped `duban` mapping names its columns as the fields
REQUIRED = {"external_id", "received_at", "category", "unit", "status", "closed_at"}
OPTIONAL = [f for f in FIELDS if f not in REQUIRED]
UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "hrss"]
CATEGORIES = ["噪声扰民", "房产证办理", "拖欠工资"]
WORD = re.compile(r"(?<![A-Za-z])(?:nan|NaN|None)(?![A-Za-z])")
FMT = "%Y-%m-%d %H:%M:%S"


def ragged_rows() -> list[dict[str, str]]:
    """48 tickets from July to early November 2026; optional field j is empty in every row
    i with (i + j) % 4 == 0, and every optional cell of each seventh row is empty."""
    rows = []
    for i in range(48):
        received = datetime(2026, 7, 1, 9) + timedelta(days=2.6 * i)
        closed = i % 3 != 0 and received < datetime(2026, 10, 25)
        place = i % 5  # the same place (and category) again: look-back recurrences
        row = {
            "external_id": f"R{i:03d}",
            "received_at": received.strftime(FMT),
            "dispatched_at": (received + timedelta(hours=1)).strftime(FMT),
            "first_response_at": (received + timedelta(hours=3)).strftime(FMT),
            "resolved_at": (received + timedelta(days=1)).strftime(FMT) if closed else "",
            "closed_at": (received + timedelta(days=2)).strftime(FMT) if closed else "",
            "due_at": (received + timedelta(days=6)).strftime(FMT),
            "category": CATEGORIES[place % 3],
            "district": "东城区",
            "street": "建国门街道",
            "community": "建国门社区",
            "address": f"建国门内大街{place}号",
            "content": f"市民反映问题{i}，请回电13812345678",
            "caller_phone": "13812345678",
            "unit": UNITS[i % len(UNITS)],
            "urgency": "3",
            "status": "closed" if closed else "open",
            "resolved": "1" if closed else "",
            "satisfaction": "满意" if closed else "",
            "returned_count": "0",
            "reassigned_count": "1",
        }
        for j, name in enumerate(OPTIONAL):
            if (i + j) % 4 == 0 or i % 7 == 0:
                row[name] = ""
        rows.append(row)
    return rows


def write_export(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(ragged_rows())
    return path


def fill_checklist(path: Path, target: Path, day: date) -> Path:
    """Every item passes with an empty note, but the first fails with one."""
    book = load_workbook(path)
    ws = book["抽查清单"]
    header = {c.value: c.column for c in ws[1]}
    for r in range(2, ws.max_row + 1):
        failed = r == 2
        ws.cell(r, header["核验结果"]).value = "不通过" if failed else "通过"
        ws.cell(r, header["核验说明"]).value = "现场核实：问题仍未解决" if failed else None
        ws.cell(r, header["核验日期"]).value = day.isoformat()
    book.save(target)
    return target


def shown_words(tmp_path: Path, smtp: Any) -> dict[str, list[str]]:
    """Every `nan`/`NaN`/`None` word in the archived notices, workbooks and CSV files, the
    .eml files and the mail (text parts and attachments)."""
    found: dict[str, list[str]] = {}

    def check(where: str, text: str) -> None:
        hits = WORD.findall(text)
        if hits:
            found[where] = hits

    for path in sorted(tmp_path.rglob("*")):
        if path.suffix in (".html", ".txt", ".csv") and "import-reports" not in path.parts:
            check(str(path.relative_to(tmp_path)), path.read_text(encoding="utf-8-sig"))
        elif path.suffix == ".xlsx":
            check(str(path.relative_to(tmp_path)), _workbook_text(path.read_bytes()))
        elif path.suffix == ".eml":
            for i, text in enumerate(_texts(email.message_from_bytes(path.read_bytes()))):
                check(f"{path.relative_to(tmp_path)}#{i}", text)
    for n, received in enumerate(smtp.messages):
        for i, text in enumerate(_texts(received.message)):
            check(f"mail {n} to {received.rcpt_tos}#{i}", text)
    return found


def _texts(message: Message) -> list[str]:
    texts = [str(message.get("Subject", ""))]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        name = part.get_filename() or ""
        if name.endswith(".xlsx"):
            texts.append(_workbook_text(payload))
        elif name.endswith(".csv"):
            texts.append(payload.decode("utf-8-sig"))
        elif part.get_content_maintype() == "text":
            texts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return texts


def _workbook_text(data: bytes) -> str:
    """Every cell of every sheet, one per line (the values a reader sees)."""
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return "\n".join(
            str(value)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    finally:
        book.close()


def test_every_loop_runs_over_an_export_with_empty_optional_cells(
    city: dict[str, Any], tmp_path: Path
) -> None:
    engine, config, smtp = city["engine"], city["config"], city["smtp"]
    export = write_export(tmp_path / "ragged.csv")
    summary = import_tickets(engine, config, export, "duban", tmp_path / "import-reports")
    assert summary.quarantined == 0 and summary.inserted == 48
    with session_scope(engine) as session:
        tickets = session.scalars(select(Ticket)).all()
        for name in ("district", "street", "community", "address", "content", "caller_phone"):
            values = [getattr(t, name) for t in tickets]
            assert None in values and all(v is None or (isinstance(v, str) and v) for v in values)

    assert daily_report(day=date(2026, 11, 9))["notices"] > 0
    weekly_analysis(week="2026-W45")
    assert monthly_bulletin(month="2026-10")["status"] == "draft"
    assert approve_monthly("2026-10", "张主任")["status"] == "approved"

    first = quarterly_spot_check(quarter="2026-Q3")
    assert first["drawn"] > 1
    [checklist] = city["reports"].rglob("抽查核验清单-2026-Q3.xlsx")
    today = datetime.now(get_settings().zone).date()  # the sample is drawn today
    filled = fill_checklist(checklist, tmp_path / "returned.xlsx", today)
    checks = import_checks(engine, config, filled, tmp_path / "import-reports", today=today)
    assert checks.failed == 1 and checks.passed == first["drawn"] - 1
    assert quarterly_spot_check(quarter="2026-Q3", dry_run=True)["failed"] == 1
    assert quarterly_spot_check(quarter="2026-Q3")["failed"] == 1

    request = build_request(closed_from=date(2026, 7, 1), closed_to=date(2026, 9, 30))
    lookback(request)
    annual_evaluation(year=2026)

    assert len(smtp.messages) > 10
    daily_text = (city["reports"] / "daily" / "2026-11-09" / "dc-jianguomen-unit.txt").read_text()
    assert "：（未填写）" in daily_text  # an empty content after its label
    assert shown_words(tmp_path, smtp) == {}
