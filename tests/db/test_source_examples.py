"""The two examples of docs/sources.md are real mappings: the NYC one is the shipped file, and
the Chinese one reads an Excel export with Chinese headers and the same rows as a GB18030
CSV into the same tickets (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import Engine, select

from duban.config import SourceMapping, load_config
from duban.db import session_scope
from duban.db.models import QuarantinedRow, Ticket, TicketStatus, Unit
from duban.ingest.city import sync_city
from duban.ingest.tickets import import_tickets

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "sources.md"


def doc_examples() -> dict[str, dict[str, object]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    return {str(b["name"]): b for b in blocks if isinstance(b, dict) and "name" in b}


def test_the_nyc_example_is_the_shipped_mapping() -> None:
    shipped = yaml.safe_load((REPO / "config/sources/nyc311.yaml").read_text(encoding="utf-8"))
    assert doc_examples()["nyc311"] == shipped
    SourceMapping.model_validate(shipped)


HEADER = ["工单编号", "受理时间", "派单时间", "首次响应时间", "办结日期", "办理时限", "诉求类别",
          "所属区", "街道（乡镇）", "社区（村）", "诉求地址", "诉求内容", "来电号码", "承办单位",
          "紧急程度", "工单状态", "是否解决", "满意度", "退单次数", "改派次数"]  # fmt: skip
ROWS = [
    # closed on the day received (a date), by an old spelling of the unit, not called back
    ["BJ1", "2026-09-30 10:00:00", "2026-09-30 10:20:00", "", "2026-09-30", "", "噪声扰民",
     "朝阳区", "建外街道", "", "", "夜间施工", "", "朝阳区建外街道办事处", "紧急", "已办结",
     "已解决", "未回访", "0", "0"],
    # no category: defaults.category; due on a date
    ["BJ2", "2026-09-30 11:00:00", "", "", "", "2026-10-09", "", "东城区", "建国门街道", "",
     "", "路灯不亮", "", "建国门街道", "一般", "办理中", "", "", "", ""],
    # closed the day before it was received: quarantined
    ["BJ3", "2026-09-30 12:00:00", "", "", "2026-09-29", "", "噪声扰民", "东城区", "", "", "",
     "", "", "建国门街道", "一般", "已办结", "", "满意", "1", "0"],
]  # fmt: skip


def write_xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for r in ROWS:
        cells: list[object] = list(r)
        if r[4]:
            cells[4] = datetime.fromisoformat(r[4])  # a real date cell, as Excel exports it
        sheet.append(cells)
    book.save(path)
    return path


def write_gb18030(path: Path) -> Path:
    with path.open("w", newline="", encoding="gb18030") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return path


def test_the_chinese_example_reads_excel_and_gb18030_alike(
    engine: Engine, config_dir: Path, tmp_path: Path
) -> None:
    mapping = doc_examples()["bj12345"]
    (config_dir / "sources" / "bj12345.yaml").write_text(
        yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8"
    )
    config = load_config(config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    first = import_tickets(engine, config, write_xlsx(tmp_path / "导出.xlsx"), "bj12345", tmp_path)
    assert (first.read, first.inserted, first.quarantined) == (3, 2, 1)
    csv_path = write_gb18030(tmp_path / "导出.csv")
    assert "受理时间".encode("gb18030") in csv_path.read_bytes()  # not UTF-8
    second = import_tickets(engine, config, csv_path, "bj12345", tmp_path)
    assert (second.read, second.unchanged, second.quarantined) == (3, 2, 1)
    with session_scope(engine) as session:
        tickets = {t.external_id: t for t in session.scalars(select(Ticket))}
        units = {u.name: u.id for u in session.scalars(select(Unit))}
        [bad] = session.scalars(
            select(QuarantinedRow).where(QuarantinedRow.file_name.endswith(".csv"))
        ).all()
    end = pd.Timedelta(hours=23, minutes=59, seconds=59)
    one = tickets["BJ1"]
    assert one.closed_at == (pd.Timestamp("2026-09-30") + end).to_pydatetime()
    assert one.status is TicketStatus.closed and one.urgency == 1
    assert one.unit_id == units["建外街道"]
    assert one.satisfaction is None and one.resolved is True
    two = tickets["BJ2"]
    assert two.category == "其他" and two.status is TicketStatus.in_progress
    assert two.due_at == (pd.Timestamp("2026-10-09") + end).to_pydatetime()
    assert two.resolved is None and two.satisfaction is None  # missing, not "no"
    assert bad.row_number == 4
    assert (bad.errors[0]["field"], bad.errors[0]["column"]) == ("closed_at", "办结日期")
