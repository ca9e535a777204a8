"""`duban import plan` on SQLite and PostgreSQL: the one-plan-three-lists workbook upserted by
(problem, code), every change audited, bad rows quarantined, re-import a no-op."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Engine, func, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import (
    AuditRecord,
    ImportRun,
    PlanItemStatus,
    PlanTask,
    Policy,
    Problem,
    QuarantinedRow,
    Responsibility,
    Unit,
)
from duban.ingest.city import sync_city
from duban.ingest.plan import PlanImportSummary, import_plan, write_plan_workbook
from duban.ingest.sources import ExportError


@pytest.fixture
def city(engine: Engine, city_config: CityConfig) -> CityConfig:
    with session_scope(engine) as session:
        sync_city(session, city_config)
    return city_config


def tasks() -> list[dict[str, Any]]:
    return [
        {
            "problem": "P01",
            "code": "P01-T01",
            "title": "制定房产证办证专项工作方案",
            "owner": "housing",
            "start_month": "2026-01",
            "due_month": "2026-02",
            "status": "已完成",
            "completed_on": "2026-02-20",
            "evidence": "方案印发稿",
        },
        {
            "problem": "P01",
            "code": "P01-T02",
            "title": "开展历史遗留项目底数摸排",
            "owner": "东城区",  # by name
            "start_month": "2026-02",
            "due_month": "2026-06",
            "status": "推进中",
            "progress": 0.45,
        },
        {
            "problem": "P01",
            "code": "P01-T03",
            "title": "总结工作成效，形成长效机制",
            "owner": "housing",
            "due_month": "2026-12",
        },
        {
            "problem": "P02",
            "code": "P02-T01",
            "title": "建立欠薪线索台账",
            "owner": "hrss",
            "start_month": "2026-01",
            "due_month": "2026-03",
            "status": "in_progress",
            "progress": "60%",
        },
    ]


def duties() -> list[dict[str, Any]]:
    return [
        {"problem": "P01", "code": "P01-R01", "unit": "dc", "duty": "负责辖区内项目摸排"},
        {"problem": "P01", "code": "P01-R02", "unit": "朝阳区", "duty": "负责辖区内项目摸排"},
        {"problem": "P02", "code": "P02-R01", "unit": "commerce", "duty": "负责商贸企业欠薪排查"},
    ]


def policies() -> list[dict[str, Any]]:
    return [
        {
            "problem": "P01",
            "code": "P01-Z01",
            "title": "房产证办理工作指引（试行）",
            "owner": "housing",
            "due_month": "2026-05",
            "status": "已出台",
            "issued_on": "2026-04-28",
            "evidence": "京建发〔2026〕12号",
        },
        {
            "problem": "P02",
            "code": "P02-Z01",
            "title": "关于推进欠薪治理的若干措施",
            "owner": "hrss",
            "due_month": "2026-09",
            "status": "起草中",
        },
    ]


def plans() -> list[dict[str, Any]]:
    return [
        {"problem": "P01", "plan": "一、分类施策解决历史遗留问题；二、优化办证流程。"},
        {"problem": "P02", "plan": "一、建立欠薪线索快速处置机制。"},
    ]


def write(path: Path, **lists: list[dict[str, Any]] | None) -> Path:
    write_plan_workbook(
        path,
        lists.get("tasks") or [],
        lists.get("responsibilities") or [],
        lists.get("policies") or [],
        lists.get("plans"),
    )
    return path


def good_workbook(tmp_path: Path, name: str = "plan.xlsx") -> Path:
    return write(
        tmp_path / name,
        tasks=tasks(),
        responsibilities=duties(),
        policies=policies(),
        plans=plans(),
    )


def run(engine: Engine, config: CityConfig, path: Path, tmp_path: Path) -> PlanImportSummary:
    return import_plan(engine, config, path, tmp_path / "reports")


def units(engine: Engine) -> dict[int, str]:
    with session_scope(engine) as session:
        return {i: c for i, c in session.execute(select(Unit.id, Unit.code)).tuples()}


def by_code(engine: Engine, model: Any) -> dict[str, Any]:
    with session_scope(engine) as session:
        return {o.code: o for o in session.scalars(select(model))}


def audit(engine: Engine) -> list[AuditRecord]:
    with session_scope(engine) as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))


def count(engine: Engine, model: Any) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def counts(summary: PlanImportSummary, sheet: str) -> tuple[int, int, int, int, int]:
    c = summary.sheet(sheet)
    return (c.read, c.inserted, c.updated, c.unchanged, c.quarantined)


def test_good_workbook_imports_all_three_lists_and_the_plan(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    summary = run(engine, city, good_workbook(tmp_path), tmp_path)

    assert counts(summary, "tasks") == (4, 4, 0, 0, 0)
    assert counts(summary, "responsibilities") == (3, 3, 0, 0, 0)
    assert counts(summary, "policies") == (2, 2, 0, 0, 0)
    assert counts(summary, "plan") == (2, 0, 2, 0, 0)
    assert summary.report_path is None
    assert summary.line().startswith(
        "plan.xlsx: tasks 4 read (4 inserted, 0 updated, 0 unchanged, 0 quarantined); "
        "responsibilities 3 read (3 inserted"
    )

    code_of = units(engine)
    t = by_code(engine, PlanTask)
    assert set(t) == {"P01-T01", "P01-T02", "P01-T03", "P02-T01"}
    done = t["P01-T01"]
    assert done.title == "制定房产证办证专项工作方案"
    assert code_of[done.owner_unit_id] == "housing"
    assert (done.start_month, done.due_month) == (date(2026, 1, 1), date(2026, 2, 1))
    assert done.status is PlanItemStatus.done
    assert done.progress == 1.0  # done without a progress cell
    assert done.completed_on == date(2026, 2, 20)
    assert done.evidence == "方案印发稿"
    assert code_of[t["P01-T02"].owner_unit_id] == "dc"  # the unit given by its name
    assert t["P01-T02"].status is PlanItemStatus.in_progress
    assert t["P01-T02"].progress == pytest.approx(0.45)
    default = t["P01-T03"]
    assert (default.status, default.progress, default.start_month) == (
        PlanItemStatus.planned,
        0.0,
        None,
    )
    assert (default.completed_on, default.evidence) == (None, None)
    assert t["P02-T01"].progress == pytest.approx(0.6)

    r = by_code(engine, Responsibility)
    assert {c: (code_of[x.unit_id], x.duty) for c, x in r.items()} == {
        "P01-R01": ("dc", "负责辖区内项目摸排"),
        "P01-R02": ("cy", "负责辖区内项目摸排"),
        "P02-R01": ("commerce", "负责商贸企业欠薪排查"),
    }

    p = by_code(engine, Policy)
    issued = p["P01-Z01"]
    assert (issued.status, issued.issued_on, issued.due_month) == (
        PlanItemStatus.done,
        date(2026, 4, 28),
        date(2026, 5, 1),
    )
    assert issued.evidence == "京建发〔2026〕12号"
    assert p["P02-Z01"].status is PlanItemStatus.in_progress
    assert p["P02-Z01"].issued_on is None

    problems = by_code(engine, Problem)
    assert problems["P01"].plan == "一、分类施策解决历史遗留问题；二、优化办证流程。"
    assert problems["P02"].plan == "一、建立欠薪线索快速处置机制。"

    with session_scope(engine) as session:
        run_row = session.scalars(select(ImportRun)).one()
        assert (run_row.kind, run_row.read, run_row.inserted, run_row.updated) == ("plan", 11, 9, 2)
        assert run_row.finished_at is not None
    records = audit(engine)
    created = [(a.entity, a.new) for a in records if a.field == "created"]
    assert sorted(created) == sorted(
        [("plan_task", c) for c in t] + [("responsibility", c) for c in r]
        + [("policy", c) for c in p]
    )  # fmt: skip
    plan_audit = [a for a in records if a.entity == "problem"]
    assert {(a.field, a.old, a.new) for a in plan_audit} == {
        ("plan", None, plans()[0]["plan"]),
        ("plan", None, plans()[1]["plan"]),
    }
    assert {(a.actor, a.origin) for a in records} == {("import plan", "plan.xlsx")}


def test_reimport_of_the_same_workbook_changes_nothing(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = good_workbook(tmp_path)
    run(engine, city, path, tmp_path)
    before = [(a.entity, a.entity_id, a.field, a.old, a.new) for a in audit(engine)]
    tasks_before = {
        c: (t.title, t.progress, t.status) for c, t in by_code(engine, PlanTask).items()
    }

    again = run(engine, city, path, tmp_path)

    assert counts(again, "tasks") == (4, 0, 0, 4, 0)
    assert counts(again, "responsibilities") == (3, 0, 0, 3, 0)
    assert counts(again, "policies") == (2, 0, 0, 2, 0)
    assert counts(again, "plan") == (2, 0, 0, 2, 0)
    assert [(a.entity, a.entity_id, a.field, a.old, a.new) for a in audit(engine)] == before
    assert {c: (t.title, t.progress, t.status) for c, t in by_code(engine, PlanTask).items()} == (
        tasks_before
    )
    assert (count(engine, PlanTask), count(engine, Policy), count(engine, Responsibility)) == (
        4,
        2,
        3,
    )
    assert count(engine, ImportRun) == 2


def test_updated_workbook_changes_exactly_the_changed_fields_with_audit(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    run(engine, city, good_workbook(tmp_path), tmp_path)
    first_audit = len(audit(engine))
    ids = {c: t.id for c, t in by_code(engine, PlanTask).items()}
    policy_ids = {c: p.id for c, p in by_code(engine, Policy).items()}
    duty_ids = {c: r.id for c, r in by_code(engine, Responsibility).items()}

    t, r, p, pl = tasks(), duties(), policies(), plans()
    t[1].update(status="已完成", progress="100%", completed_on="2026-05-30")
    t[2]["title"] = "总结工作成效，建立长效机制"
    t.append(
        {"problem": "P02", "code": "P02-T02", "title": "开展欠薪回头看", "owner": "cy",
         "due_month": "2026-11"}
    )  # fmt: skip
    r[0]["duty"] = "负责辖区内项目摸排和台账更新"
    p[1].update(owner="commerce", status="已出台", issued_on="2026-08-15")
    pl[1]["plan"] = "一、建立欠薪线索快速处置机制；二、落实总包代发工资。"
    summary = run(
        engine,
        city,
        write(tmp_path / "plan-june.xlsx", tasks=t, responsibilities=r, policies=p, plans=pl),
        tmp_path,
    )

    assert counts(summary, "tasks") == (5, 1, 2, 2, 0)
    assert counts(summary, "responsibilities") == (3, 0, 1, 2, 0)
    assert counts(summary, "policies") == (2, 0, 1, 1, 0)
    assert counts(summary, "plan") == (2, 0, 1, 1, 0)

    new = audit(engine)[first_audit:]
    assert {a.origin for a in new} == {"plan-june.xlsx"}
    changes = {(a.entity, a.entity_id, a.field, a.old, a.new) for a in new if a.field != "created"}
    with session_scope(engine) as session:
        p02 = session.scalars(select(Problem).where(Problem.code == "P02")).one()
    assert changes == {
        ("plan_task", ids["P01-T02"], "status", "in_progress", "done"),
        ("plan_task", ids["P01-T02"], "progress", "0.45", "1.0"),
        ("plan_task", ids["P01-T02"], "completed_on", None, "2026-05-30"),
        ("plan_task", ids["P01-T03"], "title", "总结工作成效，形成长效机制", t[2]["title"]),
        ("responsibility", duty_ids["P01-R01"], "duty", "负责辖区内项目摸排", r[0]["duty"]),
        ("policy", policy_ids["P02-Z01"], "owner_unit_id", "hrss", "commerce"),
        ("policy", policy_ids["P02-Z01"], "status", "in_progress", "done"),
        ("policy", policy_ids["P02-Z01"], "issued_on", None, "2026-08-15"),
        ("problem", p02.id, "plan", plans()[1]["plan"], pl[1]["plan"]),
    }
    created = [(a.entity, a.new) for a in new if a.field == "created"]
    assert created == [("plan_task", "P02-T02")]

    after = by_code(engine, PlanTask)
    assert after["P01-T02"].status is PlanItemStatus.done
    assert after["P01-T02"].completed_on == date(2026, 5, 30)
    assert after["P01-T02"].start_month == date(2026, 2, 1)  # untouched
    assert after["P02-T01"].progress == pytest.approx(0.6)  # untouched
    assert units(engine)[by_code(engine, Policy)["P02-Z01"].owner_unit_id] == "commerce"


def test_bad_rows_are_quarantined_with_sheet_row_and_field_and_good_rows_kept(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    base = tasks()
    t = [
        base[0],  # row 2
        {**base[0], "code": "P01-T09", "owner": "张三13812345678"},  # row 3: unknown unit
        {**base[0], "code": "P99-T01", "problem": "P99"},  # row 4: unknown problem
        {},  # row 5: empty, skipped silently
        {**base[0], "code": "P01-T10", "due_month": "2026-13"},  # row 6: bad month
        {**base[3], "code": "P02-T10", "progress": 150},  # row 7: 150 % -> out of range
        *base[1:],  # rows 8-10
        {**base[0], "title": "重复的编号"},  # row 11: duplicate of row 2 (P01-T01)
    ]
    p = policies()
    p.append({**p[1], "code": "P02-Z02", "due_month": "明年", "status": "已废止"})  # row 4
    path = write(tmp_path / "bad.xlsx", tasks=t, responsibilities=duties(), policies=p)

    summary = run(engine, city, path, tmp_path)

    assert counts(summary, "tasks") == (9, 4, 0, 0, 5)
    assert counts(summary, "policies") == (3, 2, 0, 0, 1)
    assert counts(summary, "responsibilities") == (3, 3, 0, 0, 0)
    assert not summary.plan.present
    assert set(by_code(engine, PlanTask)) == {"P01-T01", "P01-T02", "P01-T03", "P02-T01"}
    assert by_code(engine, PlanTask)["P01-T01"].title == tasks()[0]["title"]  # the first one

    with session_scope(engine) as session:
        bad = list(session.scalars(select(QuarantinedRow).order_by(QuarantinedRow.id)))
        run_row = session.scalars(select(ImportRun)).one()
    found = {(q.sheet, q.row_number): [e["field"] for e in q.errors] for q in bad}
    assert found == {
        ("任务清单", 3): ["owner"],
        ("任务清单", 4): ["problem"],
        ("任务清单", 6): ["due_month"],
        ("任务清单", 7): ["progress"],
        ("任务清单", 11): ["code"],
        ("政策清单", 4): ["due_month", "status"],
    }
    reasons = {(q.sheet, q.row_number): q.errors[0] for q in bad}
    assert reasons[("任务清单", 3)]["column"] == "责任单位"
    assert "unknown unit" in reasons[("任务清单", 3)]["reason"]
    assert "unknown problem 'P99'" in reasons[("任务清单", 4)]["reason"]
    assert reasons[("任务清单", 6)]["value"] == "2026-13"
    assert "150%" in reasons[("任务清单", 7)]["reason"]
    assert "row 2" in reasons[("任务清单", 11)]["reason"]
    assert all(q.import_run_id == run_row.id and q.file_name == str(path) for q in bad)
    assert bad[0].raw["任务编号"] == "P01-T09"
    assert run_row.quarantined == 6

    assert summary.report_path is not None
    report_path = Path(summary.report_path)
    assert report_path.parent == tmp_path / "reports" / "quarantine"
    assert run_row.report_path == summary.report_path
    text = report_path.read_text(encoding="utf-8-sig")
    assert "13812345678" not in text and "138****5678" in text  # personal data masked
    with report_path.open(encoding="utf-8-sig", newline="") as handle:
        report = list(csv.DictReader(handle))
    assert {(x["file"], x["sheet"], x["row"], x["field"]) for x in report} == {
        ("bad.xlsx", "任务清单", "3", "owner"),
        ("bad.xlsx", "任务清单", "4", "problem"),
        ("bad.xlsx", "任务清单", "6", "due_month"),
        ("bad.xlsx", "任务清单", "7", "progress"),
        ("bad.xlsx", "任务清单", "11", "code"),
        ("bad.xlsx", "政策清单", "4", "due_month"),
        ("bad.xlsx", "政策清单", "4", "status"),
    }


def test_missing_required_column_is_a_file_error_and_nothing_is_written(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "任务清单"
    ws.append(["问题编号", "任务编号", "任务内容", "责任单位", "状态"])
    ws.append(["P01", "P01-T01", "制定方案", "housing", "planned"])
    book.create_sheet("政策清单").append(["问题编号", "政策编号", "政策名称", "责任单位"])
    path = tmp_path / "short.xlsx"
    book.save(path)

    with pytest.raises(ExportError) as info:
        run(engine, city, path, tmp_path)

    message = str(info.value)
    assert "short.xlsx" in message
    assert "'任务清单'" in message and "完成时限/due_month" in message
    assert "'政策清单'" in message and "计划出台月份/due_month" in message
    assert count(engine, PlanTask) == 0
    assert count(engine, ImportRun) == 0


def test_english_headers_excel_dates_and_month_spellings(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Tasks"
    ws.append([" Problem", "CODE", "Title", "owner ", "Start Month", "due_month", "Status",
               "Progress", "Completed_On", "Evidence", "note"])  # fmt: skip
    ws.append(["P01", "E1", "英文表头任务", "市住房城乡建设委", datetime(2026, 3, 17), "2026/6",
               "In Progress", 45, None, None, "extra column: ignored"])  # fmt: skip
    ws.append(["P01", "E2", "第二项", "housing", "2026年1月", datetime(2026, 2, 1), "done",
               "100%", datetime(2026, 2, 10), "台账", None])  # fmt: skip
    ws.append([None, None, "  ", None, None, None, None, None, None, None, None])
    ws2 = book.create_sheet("responsibilities")
    ws2.append(["PROBLEM", "code", "unit", "duty"])
    ws2.append(["P02", "E-R1", "water", "负责供水企业欠薪排查"])
    ws3 = book.create_sheet("policies")
    ws3.append(["problem", "code", "title", "owner", "due_month", "status", "issued_on"])
    ws3.append(["P02", "E-Z1", "欠薪治理办法", "hrss", "2026-07", "未出台", None])
    ws4 = book.create_sheet("plan")
    ws4.append(["problem", "plan"])
    ws4.append(["P02", "英文表头的方案"])
    path = tmp_path / "english.xlsx"
    book.save(path)

    summary = run(engine, city, path, tmp_path)

    assert counts(summary, "tasks") == (2, 2, 0, 0, 0)
    assert counts(summary, "responsibilities") == (1, 1, 0, 0, 0)
    assert counts(summary, "policies") == (1, 1, 0, 0, 0)
    assert counts(summary, "plan") == (1, 0, 1, 0, 0)
    code_of = units(engine)
    t = by_code(engine, PlanTask)
    e1, e2 = t["E1"], t["E2"]
    assert code_of[e1.owner_unit_id] == "housing"
    assert (e1.start_month, e1.due_month) == (date(2026, 3, 1), date(2026, 6, 1))
    assert (e1.status, e1.progress) == (PlanItemStatus.in_progress, pytest.approx(0.45))
    assert (e2.start_month, e2.due_month) == (date(2026, 1, 1), date(2026, 2, 1))
    assert (e2.status, e2.progress, e2.completed_on) == (
        PlanItemStatus.done,
        1.0,
        date(2026, 2, 10),
    )
    assert code_of[by_code(engine, Responsibility)["E-R1"].unit_id] == "water"
    policy = by_code(engine, Policy)["E-Z1"]
    assert (policy.status, policy.due_month) == (PlanItemStatus.planned, date(2026, 7, 1))
    assert by_code(engine, Problem)["P02"].plan == "英文表头的方案"


def test_absent_optional_columns_leave_stored_values_alone(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    run(engine, city, good_workbook(tmp_path), tmp_path)
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "任务清单"
    ws.append(["问题编号", "任务编号", "任务内容", "责任单位", "完成时限"])
    ws.append(["P01", "P01-T02", "开展历史遗留项目底数摸排（扩大范围）", "dc", "2026-06"])
    path = tmp_path / "titles.xlsx"
    book.save(path)

    summary = run(engine, city, path, tmp_path)

    assert counts(summary, "tasks") == (1, 0, 1, 0, 0)
    assert summary.line().endswith("responsibilities: no sheet; policies: no sheet")
    task = by_code(engine, PlanTask)["P01-T02"]
    assert task.title == "开展历史遗留项目底数摸排（扩大范围）"
    assert (task.status, task.progress, task.start_month) == (
        PlanItemStatus.in_progress,
        pytest.approx(0.45),
        date(2026, 2, 1),
    )
    assert [(a.field, a.origin) for a in audit(engine) if a.origin == "titles.xlsx"] == [
        ("title", "titles.xlsx")
    ]


def test_workbook_without_any_plan_sheet_is_a_file_error(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Sheet1"
    ws.append(["问题编号", "任务编号"])
    book.create_sheet("汇总")
    path = tmp_path / "other.xlsx"
    book.save(path)

    with pytest.raises(ExportError) as info:
        run(engine, city, path, tmp_path)

    message = str(info.value)
    assert "other.xlsx" in message and "'Sheet1'" in message and "'汇总'" in message
    assert "任务清单/tasks" in message
    assert count(engine, ImportRun) == 0


def test_written_workbook_has_chinese_bold_frozen_headers(tmp_path: Path) -> None:
    path = good_workbook(tmp_path)
    book = load_workbook(path)
    assert book.sheetnames == ["方案", "任务清单", "责任清单", "政策清单"]
    ws = book["任务清单"]
    header = [c.value for c in ws[1]]
    assert header == ["问题编号", "任务编号", "任务内容", "责任单位", "开始月份", "完成时限",
                      "状态", "进度", "完成日期", "佐证材料"]  # fmt: skip
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws["E2"].value == "2026-01" and ws["I2"].value == "2026-02-20"
    assert ws["H3"].value == 0.45 and ws["H3"].number_format == "0%"
    assert ws.column_dimensions["C"].width > ws.column_dimensions["A"].width
    with pytest.raises(ValueError, match="unknown keys"):
        write_plan_workbook(tmp_path / "x.xlsx", [{"problem": "P01", "owner_unit": "dc"}], [], [])


def test_reimporting_a_workbook_records_its_bad_rows_once(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    """One quarantine record per (sheet, file checksum, row), as for ticket exports: a
    re-import reports the bad rows again but records nothing new; a changed file does."""
    t = [tasks()[0], {**tasks()[0], "code": "P01-T09", "owner": "无此单位"}]
    path = write(tmp_path / "bad.xlsx", tasks=t, responsibilities=duties(), policies=policies())

    def recorded() -> list[tuple[str | None, int]]:
        with session_scope(engine) as session:
            rows = session.execute(select(QuarantinedRow.sheet, QuarantinedRow.row_number))
            return sorted(rows.tuples())

    first = run(engine, city, path, tmp_path)
    again = run(engine, city, path, tmp_path)
    assert counts(first, "tasks")[4] == counts(again, "tasks")[4] == 1  # still reported
    assert recorded() == [("任务清单", 3)]
    more = [*t, {**tasks()[0], "code": "P01-T10", "owner": "另一个"}]
    changed = write(
        tmp_path / "bad.xlsx", tasks=more, responsibilities=duties(), policies=policies()
    )
    run(engine, city, changed, tmp_path)
    assert recorded() == [("任务清单", 3), ("任务清单", 3), ("任务清单", 4)]
