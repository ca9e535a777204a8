"""How clock events arrive, on SQLite and PostgreSQL (docs/clock.md): the import never
erases a decision, the export's clock columns and an event export, `duban decide`, the
decisions workbook read back all-or-nothing; nothing is applied twice."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from duban.cli import main
from duban.clock import record_events
from duban.clock.exports import import_events
from duban.config import CityConfig, load_config
from duban.db import session_scope
from duban.db.models import AuditRecord, Ticket, TicketStatus
from duban.db.models import ClockEvent as EventRow
from duban.ingest.tickets import import_tickets
from duban.settings import get_settings
from duban.workbooks.decisions import (
    SHEET,
    import_decisions_workbook,
    write_decisions_workbook,
)
from tests.db import test_clock_store
from tests.db.test_clock_store import (
    NOW,
    event,
    event_count,
    extension,
    ticket_row,
    tickets,
)
from tests.db.test_ticket_import import write_csv

city = test_clock_store.city  # the fixture


def reimport(engine: Engine, config: CityConfig, tmp_path: Path, rows: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    export = write_csv(tmp_path / "again.csv", rows)
    return import_tickets(engine, config, export, "duban", tmp_path / "reports")


def test_the_import_never_erases_a_decision(
    engine: Engine,
    city: CityConfig,
    tmp_path: Path,
) -> None:
    record_events(engine, extension(), as_of=NOW, all_or_nothing=True, config=city)
    redo = event("T2", "redo", "redo", datetime(2026, 10, 11, 9, 0), actor="callback")
    record_events(engine, [redo], as_of=NOW, all_or_nothing=True, config=city)
    kept = tickets(engine)
    # The centre's export still shows T1's old deadline (and a changed field) and T2 closed
    # before its redo.
    rows = [
        ticket_row("T1", category="噪声"),
        ticket_row("T2", status="closed", closed_at="2026-10-10 12:00:00"),
    ]
    summary = reimport(engine, city, tmp_path, rows)
    assert summary.updated == 2 and summary.clock_disagreements == 3
    after = tickets(engine)
    assert after["T1"].due_at == kept["T1"].due_at > after["T1"].base_due_at
    assert after["T2"].status == TicketStatus.reopened and after["T2"].closed_at is None
    assert after["T2"].due_at == kept["T2"].due_at
    assert summary.report_path and "decisions in force" in Path(summary.report_path).read_text(
        encoding="utf-8-sig"
    )
    assert "disagreements" in summary.line()
    again = reimport(engine, city, tmp_path, rows)  # the same stale export: nothing again
    assert again.updated == 0 and again.clock_disagreements == 0


def clock_source(config_dir: Path) -> CityConfig:
    path = config_dir / "sources" / "duban.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["clock_columns"] = {"extended_due": "延期后时限", "evaluated": "是否纳入考核"}
    data["events"] = {
        "columns": {"ticket": "工单编号", "kind": "事件", "at": "时间", "new_due": "新时限",
                    "working_days": "天数", "request": "申请"},
        "kinds": {"延期申请": "extension_requested", "延期批准": "extension_approved",
                  "挂起": "suspended", "恢复": "resumed"},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(config_dir)


CLOCK_COLUMNS = {
    "extended_due": "延期后时限",
    "extensions": "延期次数",
    "suspended_days": "挂起工作日",
    "evaluated": "是否纳入考核",
    "callback": "回访结果",
    "callback_at": "回访时间",
}


def write_clock_export(path: Path, rows: list[dict[str, str]]) -> Path:
    header = [*ticket_row("x"), *CLOCK_COLUMNS.values()]
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for extra in rows:
            writer.writerow({**ticket_row(extra["external_id"]), **extra})
    return path


def test_the_export_clock_columns_become_events_once(
    engine: Engine,
    city: CityConfig,
    config_dir: Path,
    tmp_path: Path,
) -> None:
    clock_source(config_dir)
    mapping_path = config_dir / "sources" / "duban.yaml"
    mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    mapping["columns"] = {k: v for k, v in mapping["columns"].items() if k in ticket_row("x")}
    mapping["clock_columns"] = CLOCK_COLUMNS
    mapping["values"]["status"]["挂起"] = "in_progress"
    mapping_path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    config = load_config(config_dir)
    cal = config.calendar
    base = tickets(engine)["T1"].base_due_at
    plus = {
        n: datetime.combine(cal.add_working_days(base.date(), n), base.time()) for n in (1, 2, 3)
    }
    rows = [
        {"external_id": "T1", "延期后时限": f"{plus[2]:%Y-%m-%d %H:%M:%S}", "延期次数": "1"},
        {"external_id": "T2", "是否纳入考核": "否", "status": "挂起"},
        {"external_id": "T3", "挂起工作日": "2"},
        {"external_id": "C1", "status": "closed", "closed_at": "2026-10-10 12:00:00",
         "回访结果": "不满意", "回访时间": "2026-10-12 10:00:00"},
    ]  # fmt: skip
    path = write_clock_export(tmp_path / "clock.csv", rows)
    first = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert first.clock_recorded == 6 and first.clock_refused == 0  # T3: suspended + resumed
    t = tickets(engine)
    assert t["T1"].due_at == plus[2] and t["T1"].extension_count == 1
    assert t["T2"].evaluated is False and t["T2"].suspended_since is not None
    t3_base = t["T3"].base_due_at
    assert t["T3"].due_at == datetime.combine(
        cal.add_working_days(t3_base.date(), 2), t3_base.time()
    )
    assert t["C1"].redo_count == 1 and t["C1"].ladder_round == 2
    again = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert again.clock_recorded == 0 and event_count(engine) == 6  # export:<column>:<value>
    # The next export: T1 extended further (its own count says 2), T2 no longer suspended.
    rows[0] |= {"延期后时限": f"{plus[3]:%Y-%m-%d %H:%M:%S}", "延期次数": "2"}
    rows[1]["status"] = "in_progress"
    path = write_clock_export(tmp_path / "clock.csv", rows)
    later = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert later.clock_recorded == 2
    t = tickets(engine)
    # one more extension, from plus[2] to plus[3]: the first one stays
    assert t["T1"].due_at == plus[3] and t["T1"].extension_count == 2
    assert t["T2"].suspended_since is None
    assert later.clock_disagreements == 0
    # A corrected deadline with the same count supersedes; a count with no deadline for the
    # missing extension is reported, nothing derived.
    rows[0] |= {"延期后时限": f"{plus[1]:%Y-%m-%d %H:%M:%S}", "延期次数": "3"}
    path = write_clock_export(tmp_path / "clock.csv", rows)
    last = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    t = tickets(engine)
    assert t["T1"].due_at == plus[1] and t["T1"].extension_count == 1
    assert last.clock_disagreements == 1  # the export counts 3 extensions, the clock 1
    assert "not derived" in Path(str(last.report_path)).read_text(encoding="utf-8-sig")


def redo_events(engine: Engine) -> list[tuple[str, str, datetime, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Ticket.external_id, EventRow.key, EventRow.at, EventRow.payload)
            .join(Ticket, Ticket.id == EventRow.item_id)
            .where(EventRow.kind == "redo")
            .order_by(Ticket.external_id, EventRow.key)
        )
        return [(str(e), str(k), a, dict(p or {})) for e, k, a, p in rows]


def test_the_export_redo_count_derives_the_redos_the_clock_misses(
    engine: Engine,
    city: CityConfig,
    config_dir: Path,
    tmp_path: Path,
) -> None:
    """T1 (open) was redone twice by the centre, C1 (closed) twice, once after the
    dissatisfied call-back in the file; T2 once, which the office recorded already, and T3
    redone by the office though the export counts none."""
    mapping_path = config_dir / "sources" / "duban.yaml"
    mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    kept = [*ticket_row("x"), "closed_at"]
    mapping["columns"] = {k: v for k, v in mapping["columns"].items() if k in kept}
    mapping["clock_columns"] = {**CLOCK_COLUMNS, "redo_count": "重办次数"}
    mapping_path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    config = load_config(config_dir)
    office = [event("T2", "r-1", "redo", datetime(2026, 10, 10, 9), actor="callback"),
              event("T3", "r-1", "redo", datetime(2026, 10, 10, 9), actor="callback")]  # fmt: skip
    record_events(engine, office, as_of=NOW, all_or_nothing=True, config=config)
    rows = [
        {"external_id": "T1", "重办次数": "2"},
        {"external_id": "T2", "重办次数": "1"},
        {"external_id": "T3", "重办次数": "0"},
        {"external_id": "C1", "status": "closed", "closed_at": "2026-10-10 12:00:00",
         "回访结果": "不满意", "回访时间": "2026-10-09 15:00:00", "重办次数": "2"},
    ]  # fmt: skip
    path = tmp_path / "redo.csv"
    header = [*kept, *CLOCK_COLUMNS.values(), "重办次数"]
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for extra in rows:
            writer.writerow({**ticket_row(extra["external_id"]), **extra})
    first = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert first.clock_recorded == 4 and first.clock_refused == 0
    events = redo_events(engine)
    keys = [(e, k) for e, k, _, _ in events]
    assert keys == [
        ("C1", "export:callback:2026-10-09T15:00:00"), ("C1", "export:redo_count:2"),
        ("T1", "export:redo_count:1"), ("T1", "export:redo_count:2"),
        ("T2", "r-1"), ("T3", "r-1"),
    ]  # fmt: skip
    [c1_derived] = [e for e in events if e[:2] == ("C1", "export:redo_count:2")]
    assert c1_derived[2] == datetime(2026, 10, 10, 12)  # placed at the close
    assert "time unknown" in c1_derived[3]["value"]
    t = tickets(engine)
    assert (t["T1"].redo_count, t["T1"].ladder_round) == (2, 3)
    assert t["C1"].redo_count == 2 and t["C1"].status == TicketStatus.closed  # not reopened
    assert t["T2"].redo_count == 1 and t["T3"].redo_count == 1  # the office's redo stays
    # T3: the export counts 0 redos, the clock 1 (and so its deadlines differ): reported
    report = Path(str(first.report_path)).read_text(encoding="utf-8-sig")
    assert first.clock_disagreements == 2 and first.quarantined == 0
    assert "duban:T3" in report and "the export says 0, the decisions in force 1: kept" in report

    before = tickets(engine)
    again = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert again.clock_recorded == 0 and redo_events(engine) == events
    after = tickets(engine)
    for ref in ("T1", "T2", "T3", "C1"):
        assert (after[ref].redo_count, after[ref].due_at) == (
            before[ref].redo_count, before[ref].due_at,
        )  # fmt: skip


def test_an_event_export(
    engine: Engine,
    city: CityConfig,
    config_dir: Path,
    tmp_path: Path,
) -> None:
    config = clock_source(config_dir)
    path = tmp_path / "events.csv"
    rows = [
        ["工单编号", "事件", "时间", "新时限", "天数", "申请"],
        ["T1", "挂起", "2026-10-12 09:00:00", "", "", ""],
        ["T1", "恢复", "2026-10-14 09:00:00", "", "", ""],
        ["T2", "恢复", "2026-10-14 09:00:00", "", "", ""],  # without a suspension: refused
        ["T3", "延期", "yesterday", "", "", ""],  # malformed: refused with its row
    ]
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(rows)
    as_of = datetime(2026, 10, 15)
    before = tickets(engine)["T1"].due_at
    result = import_events(engine, config, path, "duban", as_of=as_of)
    assert len(result.recorded) == 2
    assert sorted(r.origin_ref or "" for r in result.refused) == [
        "events.csv row 4",
        "events.csv row 5",
    ]
    assert tickets(engine)["T1"].due_at == datetime.combine(
        config.calendar.add_working_days(before.date(), 2), before.time()
    )
    again = import_events(engine, config, path, "duban", as_of=as_of)
    assert not again.recorded and len(again.already) == 2 and event_count(engine) == 2


def test_decide_on_the_command_line(
    engine: Engine,
    city: CityConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":  # the CLI's own engine, in this test's schema
        with engine.connect() as conn:
            url += f"?options=-csearch_path%3D{conn.exec_driver_sql('SHOW search_path').scalar()}"
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(city.root))
    monkeypatch.setenv("DUBAN_REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    at = ["--at", "2026-10-12 08:00"]
    assert main(["decide", "request_extension", "T1", *at, "--actor", "unit"]) == 0
    assert main(["decide", "approve_extension", "T1", "--at", "2026-10-12 08:30"]) == 1
    assert "name the request" in capsys.readouterr().err
    request = "office:request_extension:2026-10-12T08:00:00"
    ok = ["decide", "approve_extension", "T1", "--at", "2026-10-12 08:30", "--request", request]
    assert main([*ok, "--days", "2", "--reason", "待材料"]) == 0
    assert main([*ok, "--days", "2"]) == 0  # the same decision again: already recorded
    assert "already recorded 1" in capsys.readouterr().out
    assert tickets(engine)["T1"].extension_count == 1
    assert main(["decide", "resume", "T1"]) == 1
    assert "resume without a suspension" in capsys.readouterr().err
    assert main(["decide", "suspend", "C1"]) == 1  # closed
    assert event_count(engine) == 2
    out = tmp_path / "decisions.xlsx"
    assert main(["decide", "workbook", "export", "--out", str(out)]) == 0
    assert "0 pending requests" in capsys.readouterr().out  # req decided: none pending
    assert main(["decide", "workbook", "import", str(out)]) == 0
    assert "recorded 0" in capsys.readouterr().out


def test_the_decisions_workbook_round_trip(
    engine: Engine,
    city: CityConfig,
    tmp_path: Path,
) -> None:
    requests = [
        event("T1", "req1", "extension_requested", datetime(2026, 10, 12, 8), actor="unit"),
        event("T2", "ap1", "appeal_filed", datetime(2026, 10, 12, 8), actor="unit", reason="重复"),
    ]
    record_events(engine, requests, as_of=NOW, all_or_nothing=True, config=city)
    path, count = write_decisions_workbook(engine, city, tmp_path / "out", as_of=NOW)
    assert count == 2
    book = load_workbook(path)
    ws = book[SHEET]
    assert [ws.cell(r, 3).value for r in (2, 3)] == ["req1", "ap1"]
    ws.cell(2, 8, "批准")
    ws.cell(2, 9, "二")  # malformed: the whole workbook is refused, the cell named
    ws.cell(3, 8, "批准")
    ws.cell(3, 11, '=HYPERLINK("x")')
    book.save(path)
    refused = import_decisions_workbook(engine, city, path, now=NOW)
    assert not refused.ok and event_count(engine) == 2
    assert refused.refused[0].origin_ref == f"{path.name} {SHEET}!2 延期工作日 Working days"
    ws.cell(2, 9, 2)
    book.save(path)
    done = import_decisions_workbook(engine, city, path, now=NOW)
    assert done.ok and len(done.recorded) == 2, done.refused
    t = tickets(engine)
    assert t["T1"].extension_count == 1 and t["T2"].evaluated is False
    with session_scope(engine) as session:
        audits = session.scalar(select(func.count()).select_from(AuditRecord))
    assert audits == 2
    again = import_decisions_workbook(engine, city, path, now=NOW)
    assert again.ok and not again.recorded and len(again.already) == 2
    assert event_count(engine) == 4
