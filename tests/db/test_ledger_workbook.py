"""The ledger workbook (台账) on SQLite and PostgreSQL: a lead unit's workbook rendered,
filled in as a unit would, imported back all-or-nothing with every change audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import Engine, func, select

from duban.cli import main
from duban.config import CityConfig
from duban.db import make_engine, session_scope, upgrade
from duban.db.models import AuditRecord, ImportRun, PlanItemStatus, PlanTask, Policy
from duban.ingest.city import sync_city
from duban.ingest.plan import import_plan, write_plan_workbook
from duban.loops.monthly.ledger import (
    LedgerError,
    import_ledger,
    ledger_file_name,
    ledger_unit_codes,
    write_ledger_workbook,
)
from duban.settings import get_settings

AS_OF = date(2026, 5, 31)
TODAY = date(2026, 6, 3)  # the day the unit's workbook comes back
TASKS = "任务清单"
ACTOR = "ledger-import"  # import_ledger's default actor
POLICIES = "政策清单"


def plan_rows() -> dict[str, list[dict[str, Any]]]:
    return {
        "tasks": [
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
                "owner": "dc",
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
                "due_month": "2026-03",
                "status": "in_progress",
                "progress": "60%",
            },
        ],
        "policies": [
            {
                "problem": "P01",
                "code": "P01-Z01",
                "title": "房产证办理工作指引（试行）",
                "owner": "housing",
                "due_month": "2026-05",
                "status": "起草中",
            },
            {
                "problem": "P02",
                "code": "P02-Z01",
                "title": "关于推进欠薪治理的若干措施",
                "owner": "hrss",
                "due_month": "2026-09",
            },
        ],
    }


@pytest.fixture
def city(engine: Engine, city_config: CityConfig, tmp_path: Path) -> CityConfig:
    with session_scope(engine) as session:
        sync_city(session, city_config)
    rows = plan_rows()
    plan = tmp_path / "plan.xlsx"
    write_plan_workbook(plan, rows["tasks"], [], rows["policies"])
    summary = import_plan(engine, city_config, plan, tmp_path / "reports")
    assert summary.quarantined == 0
    return city_config


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every item with every column, and the audit and import-run counts."""
    with session_scope(engine) as session:
        tasks = [
            (t.code, t.title, t.owner_unit_id, t.due_month, t.status, t.progress, *t_done(t))
            for t in session.scalars(select(PlanTask).order_by(PlanTask.id))
        ]
        policies = [
            (p.code, p.title, p.owner_unit_id, p.due_month, p.status, p.issued_on, p.evidence)
            for p in session.scalars(select(Policy).order_by(Policy.id))
        ]
        audit = session.scalar(select(func.count()).select_from(AuditRecord))
        runs = session.scalar(select(func.count()).select_from(ImportRun))
    return {"tasks": tasks, "policies": policies, "audit": audit, "runs": runs}


def t_done(t: PlanTask) -> tuple[Any, ...]:
    return (t.completed_on, t.evidence)


def render(engine: Engine, config: CityConfig, folder: Path, unit: str = "housing") -> Path:
    name = next(u.name for u in config.units.units if u.code == unit)
    path = folder / ledger_file_name(name, AS_OF)
    assert write_ledger_workbook(engine, config, unit, AS_OF, path) == path
    return path


def row_of(ws: Worksheet, code: str) -> int:
    for (cell,) in ws.iter_rows(min_row=2, min_col=2, max_col=2):
        if cell.value == code:
            return int(cell.row)
    raise AssertionError(f"{code} not in sheet {ws.title}")


def column_of(ws: Worksheet, header: str) -> int:
    for cell in ws[1]:
        if cell.value == header:
            return int(cell.column)
    raise AssertionError(f"{header} not in the header of {ws.title}")


def edit(path: Path, change: Callable[[Any], None], target: Path | None = None) -> Path:
    """Open the workbook as a unit would, change it, save it (to `target` if given)."""
    book = load_workbook(path)
    change(book)
    target = target or path
    book.save(target)
    return target


def put(book: Any, sheet: str, code: str, header: str, value: Any) -> None:
    ws = book[sheet]
    ws.cell(row_of(ws, code), column_of(ws, header)).value = value


def fill_in(book: Any) -> None:
    """What housing reports at the end of May."""
    put(book, TASKS, "P01-T02", "状态", "已完成")
    put(book, TASKS, "P01-T02", "进度", 1)
    put(book, TASKS, "P01-T02", "完成日期", datetime(2026, 5, 20))
    put(book, TASKS, "P01-T02", "佐证材料", "摸排报告（东城区）")
    put(book, TASKS, "P01-T03", "状态", "进行中")  # the brief's word: accepted too
    put(book, TASKS, "P01-T03", "进度", "30%")
    put(book, POLICIES, "P01-Z01", "状态", "已出台")
    put(book, POLICIES, "P01-Z01", "出台日期", "2026/5/28")
    put(book, POLICIES, "P01-Z01", "佐证材料", "京建发〔2026〕12号")


def items_by_code(engine: Engine) -> tuple[dict[str, PlanTask], dict[str, Policy]]:
    with session_scope(engine) as session:
        tasks = {t.code: t for t in session.scalars(select(PlanTask))}
        policies = {p.code: p for p in session.scalars(select(Policy))}
    return tasks, policies


# ---------------------------------------------------------------- writing


def test_workbook_lists_the_units_items_usably_and_renders_the_same_bytes(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    first = render(engine, city, tmp_path / "a")
    second = render(engine, city, tmp_path / "b")
    assert first.name == "台账-市住房城乡建设委-2026-05-31.xlsx"
    assert first.read_bytes() == second.read_bytes()  # no clock in the file

    book = load_workbook(first)
    assert book.sheetnames == ["填写说明", TASKS, POLICIES]
    readme = {r[0]: r[1] for r in book["填写说明"].iter_rows(values_only=True) if r and r[0]}
    assert readme["单位编码"] == "housing" and readme["截至日期"] == "2026-05-31"

    tasks = book[TASKS]
    rows = list(tasks.iter_rows(values_only=True))
    assert rows[0] == (
        "问题编号", "任务编号", "任务内容", "责任单位", "完成时限",
        "状态", "进度", "完成日期", "佐证材料", "预警",
    )  # fmt: skip
    # Only housing's problem (P01), by due month; owners by name; statuses in words.
    assert [r[:7] for r in rows[1:]] == [
        (
            "P01",
            "P01-T01",
            "制定房产证办证专项工作方案",
            "市住房城乡建设委",
            "2026-02",
            "已完成",
            1,
        ),
        ("P01", "P01-T02", "开展历史遗留项目底数摸排", "东城区", "2026-06", "推进中", 0.45),
        (
            "P01",
            "P01-T03",
            "总结工作成效，形成长效机制",
            "市住房城乡建设委",
            "2026-12",
            "未开始",
            0,
        ),
    ]
    assert rows[1][7] == datetime(2026, 2, 20)
    assert tasks.freeze_panes == "C2"
    assert tasks["G2"].number_format == "0%"
    lists = [dv for dv in tasks.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1 and lists[0].formula1 == '"未开始,推进中,已完成"'
    assert str(lists[0].sqref) == "F2:F4"
    assert tasks.protection.sheet is False  # nothing locked

    policies = list(book[POLICIES].iter_rows(values_only=True))
    assert [r[:6] for r in policies[1:]] == [
        ("P01", "P01-Z01", "房产证办理工作指引（试行）", "市住房城乡建设委", "2026-05", "起草中")
    ]
    # P01-Z01 was due in May: overdue on 1 July (the 预警 column, for information only).
    late = load_workbook(
        write_ledger_workbook(engine, city, "housing", date(2026, 7, 1), tmp_path / "july.xlsx")
    )
    assert list(late[POLICIES].iter_rows(values_only=True))[1][-1] == "超期"


def test_a_unit_that_leads_nothing_gets_a_clear_error(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    with pytest.raises(LedgerError, match=r"unit water \(市自来水集团\) leads no problem"):
        write_ledger_workbook(engine, city, "water", AS_OF, tmp_path / "water.xlsx")
    with pytest.raises(LedgerError, match="unknown unit 'nobody'"):
        write_ledger_workbook(engine, city, "nobody", AS_OF, tmp_path / "nobody.xlsx")
    assert not (tmp_path / "water.xlsx").exists()
    with session_scope(engine) as session:
        assert ledger_unit_codes(session) == ["housing", "hrss"]


# ---------------------------------------------------------------- the round trip


def test_round_trip_updates_exactly_what_the_unit_filled_in_and_audits_it(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = edit(render(engine, city, tmp_path), fill_in)
    before_tasks, before_policies = items_by_code(engine)

    summary = import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)

    assert (summary.tasks.read, summary.tasks.changed, summary.tasks.unchanged) == (3, 2, 1)
    assert (summary.policies.read, summary.policies.changed) == (1, 1)
    assert summary.line() == (
        "台账-市住房城乡建设委-2026-05-31.xlsx (housing): tasks 3 read (2 changed, 1 unchanged); "
        "policies 1 read (1 changed, 0 unchanged); 9 field changes audited"
    )
    tasks, policies = items_by_code(engine)
    t2, t3, z1 = tasks["P01-T02"], tasks["P01-T03"], policies["P01-Z01"]
    assert (t2.status, t2.progress, t2.completed_on, t2.evidence) == (
        PlanItemStatus.done, 1.0, date(2026, 5, 20), "摸排报告（东城区）"
    )  # fmt: skip
    assert (t3.status, t3.progress, t3.completed_on) == (PlanItemStatus.in_progress, 0.3, None)
    assert (z1.status, z1.issued_on, z1.evidence) == (
        PlanItemStatus.done, date(2026, 5, 28), "京建发〔2026〕12号"
    )  # fmt: skip
    # Nothing else moved: the untouched task, the other unit's items, the identifying fields.
    for code in ("P01-T01", "P02-T01"):
        assert snapshot_of(tasks[code]) == snapshot_of(before_tasks[code])
    assert snapshot_of(policies["P02-Z01"]) == snapshot_of(before_policies["P02-Z01"])
    assert (t2.title, t2.due_month) == (before_tasks["P01-T02"].title, date(2026, 6, 1))

    with session_scope(engine) as session:
        audit = {
            (a.entity, a.entity_id, a.field, a.old, a.new, a.actor, a.origin)
            for a in session.scalars(
                select(AuditRecord).where(AuditRecord.actor == "ledger-import")
            )
        }
        run = session.scalars(select(ImportRun).where(ImportRun.kind == "ledger")).one()
    name = path.name
    t2_origin = f"{name}, sheet 任务清单, row 3"
    assert audit == {
        ("plan_task", t2.id, "status", "in_progress", "done", "ledger-import", t2_origin),
        ("plan_task", t2.id, "progress", "0.45", "1.0", "ledger-import", t2_origin),
        ("plan_task", t2.id, "completed_on", None, "2026-05-20", "ledger-import", t2_origin),
        ("plan_task", t2.id, "evidence", None, "摸排报告（东城区）", "ledger-import", t2_origin),
        ("plan_task", t3.id, "status", "planned", "in_progress", "ledger-import",
         f"{name}, sheet 任务清单, row 4"),
        ("plan_task", t3.id, "progress", "0.0", "0.3", "ledger-import",
         f"{name}, sheet 任务清单, row 4"),
        ("policy", z1.id, "status", "in_progress", "done", "ledger-import",
         f"{name}, sheet 政策清单, row 2"),
        ("policy", z1.id, "issued_on", None, "2026-05-28", "ledger-import",
         f"{name}, sheet 政策清单, row 2"),
        ("policy", z1.id, "evidence", None, "京建发〔2026〕12号", "ledger-import",
         f"{name}, sheet 政策清单, row 2"),
    }  # fmt: skip
    assert (run.source, run.read, run.updated, run.unchanged) == ("housing", 4, 3, 1)

    # The same workbook again: nothing changes, no audit record.
    before = snapshot(engine)
    again = import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)
    assert (again.changed, again.unchanged, again.audited) == (0, 4, 0)
    after = snapshot(engine)
    assert after["tasks"] == before["tasks"] and after["policies"] == before["policies"]
    assert after["audit"] == before["audit"]

    # A fresh export shows what was reported, and imports unchanged.
    fresh = render(engine, city, tmp_path / "fresh")
    assert import_ledger(engine, city, fresh, tmp_path / "reports", today=TODAY).changed == 0


def snapshot_of(item: PlanTask | Policy) -> tuple[Any, ...]:
    names = [c.key for c in item.__table__.columns]
    return tuple(getattr(item, n) for n in names)


def test_a_sheet_without_changes_and_extra_columns_are_fine(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    def add_remarks(book: Any) -> None:
        ws = book[TASKS]
        ws.cell(1, ws.max_column + 1).value = "备注"
        ws.cell(2, ws.max_column).value = "无"
        del book[POLICIES]

    path = edit(render(engine, city, tmp_path), add_remarks)
    before = snapshot(engine)
    summary = import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)
    assert summary.changed == 0 and not summary.policies.present
    assert "policies: no sheet" in summary.line()
    assert snapshot(engine)["tasks"] == before["tasks"]


# ---------------------------------------------------------------- rejected whole


def _bad_status(book: Any) -> None:
    put(book, TASKS, "P01-T03", "状态", "完成了")


def _progress_150(book: Any) -> None:
    put(book, TASKS, "P01-T03", "进度", 150)


def _unknown_code(book: Any) -> None:
    put(book, TASKS, "P01-T03", "任务编号", "P01-T99")


def _other_units_item(book: Any) -> None:
    book[TASKS].append(["P02", "P02-T01", "建立欠薪线索台账", "hrss", "2026-03", "已完成", 1])


def _missing_column(book: Any) -> None:
    ws = book[TASKS]
    ws.delete_cols(column_of(ws, "佐证材料"))


def _done_without_date(book: Any) -> None:
    put(book, POLICIES, "P01-Z01", "状态", "已出台")
    put(book, POLICIES, "P01-Z01", "出台日期", None)


def _edited_title(book: Any) -> None:
    put(book, TASKS, "P01-T03", "任务内容", "总结成效")


def _bad_date(book: Any) -> None:
    put(book, TASKS, "P01-T02", "完成日期", "五月底")


MALFORMED = {
    "bad status": (_bad_status, ["sheet '任务清单', row 4, column 状态: unknown status '完成了'"]),
    "progress 150": (_progress_150, ["sheet '任务清单', row 4, column 进度:", "150%"]),
    "unknown code": (
        _unknown_code,
        ["sheet '任务清单', row 4, column 任务编号: unknown item code 'P01-T99'"],
    ),
    "another unit's item": (
        _other_units_item,
        ["sheet '任务清单', row 5, column 问题编号: problem P02 is led by hrss, not by housing"],
    ),
    "missing column": (
        _missing_column,
        ["sheet '任务清单', row 1, column 佐证材料/evidence: missing column"],
    ),
    "done without date": (
        _done_without_date,
        ["sheet '政策清单', row 2, column 出台日期: 已出台 needs a date"],
    ),
    "edited title": (
        _edited_title,
        ["sheet '任务清单', row 4, column 任务内容: edited: the ledger has '总结工作成效"],
    ),
    "bad date": (_bad_date, ["sheet '任务清单', row 3, column 完成日期: not a date: '五月底'"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_workbook_is_rejected_whole_and_changes_nothing(
    engine: Engine, city: CityConfig, tmp_path: Path, case: str
) -> None:
    spoil, expected = MALFORMED[case]

    def fill_in_and_spoil(book: Any) -> None:
        fill_in(book)  # good changes on other rows: they must not be applied either
        spoil(book)

    path = edit(render(engine, city, tmp_path), fill_in_and_spoil)
    before = snapshot(engine)
    with pytest.raises(LedgerError) as caught:
        import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)
    message = str(caught.value)
    assert message.startswith(f"{path.name}: ledger workbook rejected, nothing was changed")
    for text in expected:
        assert text in message, message
    assert all(f.file == path.name for f in caught.value.findings)
    assert caught.value.report_path is not None and caught.value.report_path.is_file()
    assert snapshot(engine) == before  # no item, no audit record, no import run


def test_every_finding_is_listed_at_once(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    def many(book: Any) -> None:
        _bad_status(book)
        _bad_date(book)
        put(book, TASKS, "P01-T01", "进度", "abc")
        put(book, TASKS, "P01-T01", "责任单位", "朝阳区")  # edited owner

    path = edit(render(engine, city, tmp_path), many)
    with pytest.raises(LedgerError) as caught:
        import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)
    where = sorted((f.row, f.column) for f in caught.value.findings)
    assert where == [(2, "责任单位"), (2, "进度"), (3, "完成日期"), (4, "状态")]


def test_consistency_rules_and_the_future(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    def contradictions(book: Any) -> None:
        put(book, TASKS, "P01-T02", "状态", "已完成")
        put(book, TASKS, "P01-T02", "进度", 0.8)
        put(book, TASKS, "P01-T02", "完成日期", datetime(2026, 7, 1))  # after TODAY
        put(book, TASKS, "P01-T03", "进度", 0.2)  # still 未开始
        put(book, POLICIES, "P01-Z01", "出台日期", datetime(2026, 5, 1))  # still 起草中

    path = edit(render(engine, city, tmp_path), contradictions)
    with pytest.raises(LedgerError) as caught:
        import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)
    reasons = {(f.sheet, f.row, f.column): f.reason for f in caught.value.findings}
    assert "in the future" in reasons[(TASKS, 3, "完成日期")]
    assert "a done task is 100%" in reasons[(TASKS, 3, "进度")]
    assert "choose 推进中" in reasons[(TASKS, 4, "进度")]
    assert "a date with status 起草中" in reasons[(POLICIES, 2, "出台日期")]


def test_files_that_are_not_ledgers(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    text = tmp_path / "ledger.csv"
    text.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(LedgerError, match=r"ledger.csv: .*unsupported file type"):
        import_ledger(engine, city, text, tmp_path / "reports", today=TODAY)
    with pytest.raises(LedgerError, match="file not found"):
        import_ledger(engine, city, tmp_path / "missing.xlsx", tmp_path / "reports")

    def rename(book: Any) -> None:
        book[TASKS].title = "Sheet1"
        del book[POLICIES]

    path = edit(render(engine, city, tmp_path), rename)
    with pytest.raises(LedgerError, match="no ledger sheet"):
        import_ledger(engine, city, path, tmp_path / "reports", today=TODAY)


# ---------------------------------------------------------------- the command


def test_cli_exports_and_imports_and_prints_a_rejection_as_an_error(
    tmp_path: Path,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "duban.db"
    monkeypatch.setenv("DUBAN_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("DUBAN_REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    try:
        assert main(["sync"]) == 0
        rows = plan_rows()
        write_plan_workbook(tmp_path / "plan.xlsx", rows["tasks"], [], rows["policies"])
        assert main(["import", "plan", str(tmp_path / "plan.xlsx")]) == 0
        capsys.readouterr()

        assert main(["ledger", "export", "housing", "--as-of", "2026-05-31"]) == 0
        out = tmp_path / "reports" / "ledger" / "台账-市住房城乡建设委-2026-05-31.xlsx"
        assert str(out) in capsys.readouterr().out and out.is_file()

        assert main(["ledger", "export", "water"]) == 2
        assert capsys.readouterr().err.startswith("duban: error: unit water")

        edit(out, lambda book: put(book, TASKS, "P01-T03", "状态", "推进中"))
        assert main(["import", "ledger", str(out)]) == 0
        assert "tasks 3 read (1 changed, 2 unchanged)" in capsys.readouterr().out

        edit(out, _progress_150)
        assert main(["import", "ledger", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(
            "duban: error: 台账-市住房城乡建设委-2026-05-31.xlsx: ledger workbook"
        )
        assert "row 4, column 进度" in err and "Traceback" not in err
    finally:
        get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with session_scope(engine) as session:
        t3 = session.scalars(select(PlanTask).where(PlanTask.code == "P01-T03")).one()
        assert t3.status is PlanItemStatus.in_progress
    engine.dispose()
