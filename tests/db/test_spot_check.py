"""The quarterly spot check on SQLite and PostgreSQL: the population in SQL against an
independent pandas filter, the draw recorded once, and the inspectors' checklist round trip —
filled in as an inspector would, imported all-or-nothing, a failed item reopened and its unit
escalated exactly once, with audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import (
    AuditRecord,
    Escalation,
    ImportRun,
    PlanItemStatus,
    PlanTask,
    Problem,
    SpotCheckSample,
    Ticket,
    TicketStatus,
    Unit,
)
from duban.ingest.city import sync_city
from duban.loops.quarterly.checklist import (
    CHECKLIST,
    ChecklistError,
    import_checks,
    render_checklist_workbook,
)
from duban.loops.quarterly.sample import (
    FAILED_STEP,
    draw_sample,
)
from duban.periods import parse_quarter
from duban.queries.quarterly import population, spot_check_failures

Q3 = parse_quarter("2026-Q3")
TODAY = date(2026, 10, 20)
SHEET = CHECKLIST.zh


def ticket(session: Any, ext: str, unit: int, closed_at: datetime | None, **kw: Any) -> None:
    values: dict[str, Any] = {
        "source": "test", "external_id": ext, "received_at": datetime(2026, 6, 1, 9),
        "due_at": datetime(2026, 6, 10), "category": "噪声扰民", "content": f"{ext} 施工噪声",
        "unit_id": unit, "urgency": 3, "status": TicketStatus.closed, "resolved": True,
        "closed_at": closed_at, "row_hash": 0,
    }  # fmt: skip
    values.update(kw)
    session.add(Ticket(**values))


def task(
    session: Any, code: str, owner: int, problem: int, completed: date | None, **kw: Any
) -> None:
    values: dict[str, Any] = {
        "problem_id": problem, "code": code, "title": f"任务{code}", "owner_unit_id": owner,
        "due_month": date(2026, 8, 1), "status": PlanItemStatus.done, "progress": 1.0,
        "completed_on": completed,
    }  # fmt: skip
    values.update(kw)
    session.add(PlanTask(**values))


@pytest.fixture
def city(engine: Engine, city_config: CityConfig) -> CityConfig:
    """Jianguomen: 12 tickets closed as resolved in Q3 (3 drawn), and the decoys around them;
    Sanlitun: 2 (both drawn), one with personal data in the text; housing: 4 plan tasks done
    in Q3 (3 drawn) and decoys."""
    with session_scope(engine) as session:
        sync_city(session, city_config)
    with session_scope(engine) as session:
        u = {c: i for c, i in session.execute(select(Unit.code, Unit.id))}
        p01 = session.scalars(select(Problem.id).where(Problem.code == "P01")).one()
        jgm, slt = u["dc-jianguomen"], u["cy-sanlitun"]
        for i in range(12):
            ticket(session, f"J{i:02d}", jgm, datetime(2026, 7, 1) + timedelta(days=7 * i))
        ticket(session, "J-EDGE-IN", jgm, datetime(2026, 9, 30, 23, 59, 59))
        ticket(session, "J-EDGE-OUT", jgm, datetime(2026, 10, 1))  # Q4
        ticket(session, "J-Q2", jgm, datetime(2026, 6, 30, 23, 59))
        ticket(session, "J-UNRESOLVED", jgm, datetime(2026, 8, 1), resolved=False)
        ticket(session, "J-NULL", jgm, datetime(2026, 8, 1), resolved=None)
        ticket(session, "J-OPEN", jgm, None, status=TicketStatus.open, resolved=None)
        ticket(session, "J-REOPENED", jgm, datetime(2026, 8, 2), status=TicketStatus.reopened)
        ticket(session, "S01", slt, datetime(2026, 8, 3), content="请回电13812345678 <b>急</b>")
        ticket(session, "S02", slt, datetime(2026, 8, 4))
        for i in range(4):
            task(session, f"T{i}", u["housing"], p01, date(2026, 7, 10 + i))
        task(session, "T-Q4", u["housing"], p01, date(2026, 10, 1))
        task(session, "T-OPEN", u["housing"], p01, None, status=PlanItemStatus.in_progress)
    return city_config


def test_population_is_what_was_reported_done_in_the_quarter(
    engine: Engine, city: CityConfig
) -> None:
    with engine.connect() as conn:
        got = population(conn, Q3.start, Q3.end)
        tickets = pd.read_sql(select(Ticket.__table__), conn)
        tasks = pd.read_sql(select(PlanTask.__table__), conn)
        units = pd.read_sql(select(Unit.id, Unit.code), conn).set_index("id")["code"]
        problems = pd.read_sql(select(Problem.id, Problem.code), conn).set_index("id")["code"]
    closed = pd.to_datetime(tickets["closed_at"])
    t = tickets[
        (tickets["status"] == "closed")
        & (tickets["resolved"].fillna(False).astype(bool))
        & (closed >= pd.Timestamp(2026, 7, 1))
        & (closed < pd.Timestamp(2026, 10, 1))
    ]
    done = pd.to_datetime(tasks["completed_on"])
    p = tasks[
        (tasks["status"] == "done")
        & (done >= pd.Timestamp(2026, 7, 1))
        & (done < pd.Timestamp(2026, 10, 1))
    ]
    t_keys = [
        ("ticket", int(r.id), units[r.unit_id], f"{r.source}:{r.external_id}")
        for r in t.itertuples()
    ]
    p_keys = [
        ("plan_task", int(r.id), units[r.owner_unit_id], f"{problems[r.problem_id]}:{r.code}")
        for r in p.itertuples()
    ]
    expected = sorted(t_keys + p_keys)
    assert sorted(zip(got.item_kind, got.item_id, got.unit_code, got.key, strict=True)) == expected
    assert len(expected) == 13 + 2 + 4  # 12 + the edge inside for Jianguomen
    assert "test:J-EDGE-IN" in set(got.key) and "test:J-EDGE-OUT" not in set(got.key)


def test_the_draw_is_recorded_once_and_a_rerun_returns_it(engine: Engine, city: CityConfig) -> None:
    spot = city.spot_check
    first = draw_sample(engine, city, spot, Q3, now=datetime(2026, 10, 9, 9))
    assert not first.recorded_before and first.inserted == first.drawn == 3 + 2 + 3
    strata = {(s["unit_code"], s["item_kind"]): (s["population"], s["size"]) for s in first.strata}
    assert strata == {
        ("dc-jianguomen", "ticket"): (13, 3),
        ("cy-sanlitun", "ticket"): (2, 2),
        ("housing", "plan_task"): (4, 3),
    }
    with session_scope(engine) as session:
        rows = session.scalars(select(SpotCheckSample).order_by(SpotCheckSample.id)).all()
        recorded = [(r.item_kind, r.item_id, r.seed) for r in rows]
        jgm = session.scalars(select(Unit.id).where(Unit.code == "dc-jianguomen")).one()
    secret = spot.secret.get_secret_value() if spot.secret else ""
    assert all(len(r[2]) == 64 and secret not in r[2] for r in recorded)
    assert len({r[2] for r in recorded}) == 3  # one seed per stratum

    # More closures of Q3 arrive late; the re-run does not draw again.
    with session_scope(engine) as session:
        for i in range(40):
            ticket(session, f"LATE{i}", jgm, datetime(2026, 9, 1))
    again = draw_sample(engine, city, spot, Q3)
    assert again.recorded_before and again.inserted == 0
    assert list(again.items["item_id"]) == list(first.items["item_id"])
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SpotCheckSample)) == len(rows)
    # A dry run of a recorded quarter shows the recorded sample too.
    dry = draw_sample(engine, city, spot, Q3, dry_run=True)
    assert list(dry.items["item_id"]) == list(first.items["item_id"])


def test_a_dry_run_records_nothing_and_draws_what_the_real_run_records(
    engine: Engine, city: CityConfig
) -> None:
    spot = city.spot_check
    dry = draw_sample(engine, city, spot, Q3, dry_run=True)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SpotCheckSample)) == 0
    real = draw_sample(engine, city, spot, Q3)
    assert sorted(dry.items["item_id"]) == sorted(real.items["item_id"]) and dry.drawn == 8


# ---------------------------------------------------------------- the checklist


def checklist(engine: Engine, city: CityConfig, folder: Path) -> Path:
    spot = city.spot_check
    sample = draw_sample(engine, city, spot, Q3, now=datetime(2026, 10, 9, 9))
    return render_checklist_workbook(
        sample.items, Q3, sample.fingerprint, spot.describe(), folder / "spot-check-2026-Q3.xlsx"
    )


def fill(path: Path, change: Callable[[Any], None], target: Path) -> Path:
    book = load_workbook(path)
    change(book[SHEET])
    book.save(target)
    return target


def col(ws: Any, header: str) -> int:
    return next(c.column for c in ws[1] if c.value == header)


def row_of(ws: Any, ref: str) -> int:
    return next(r for r in range(2, ws.max_row + 1) if ws.cell(r, col(ws, "编号")).value == ref)


def put(ws: Any, ref: str, result: str | None, note: str | None, day: Any) -> None:
    r = row_of(ws, ref)
    ws.cell(r, col(ws, "核验结果")).value = result
    ws.cell(r, col(ws, "核验说明")).value = note
    ws.cell(r, col(ws, "核验日期")).value = day


def inspector(ws: Any) -> None:
    """Sanlitun S01 fails, housing's first drawn task fails; everything else passes."""
    refs = [ws.cell(r, col(ws, "编号")).value for r in range(2, ws.max_row + 1)]
    task_refs = sorted(r for r in refs if r.startswith("P01:"))
    for ref in refs:
        if ref == "S01" or ref == task_refs[0]:
            put(ws, ref, "不通过", "现场核实：问题仍未解决", datetime(2026, 10, 15))
        else:
            put(ws, ref, "通过", None, "2026-10-14")


def snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(t)))
            for t in (SpotCheckSample.__table__, Ticket.__table__, PlanTask.__table__,
                      AuditRecord.__table__, Escalation.__table__)
        }  # fmt: skip


def test_the_checklist_lists_the_sample_masked_with_columns_to_fill(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = checklist(engine, city, tmp_path)
    book = load_workbook(path)
    ws = book[SHEET]
    headers = [c.value for c in ws[1]]
    assert headers[-3:] == ["核验结果", "核验说明", "核验日期"]
    assert ws.max_row == 1 + 8
    texts = " ".join(str(c.value) for row in ws.iter_rows() for c in row if c.value)
    assert "13812345678" not in texts and "138****5678" in texts
    units = [ws.cell(r, col(ws, "承办单位")).value for r in range(2, ws.max_row + 1)]
    assert units == sorted(units, key=lambda n: {"三里屯街道": 0, "建国门街道": 1}.get(n, 2))
    readme = book["填写说明"]
    assert ["抽查季度", "2026-Q3"] in [[c.value for c in r][:2] for r in readme.iter_rows()]
    # a pure function: the same sample gives the same bytes
    again = checklist(engine, city, tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()


def test_import_records_verdicts_reopens_and_escalates_exactly_once(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = checklist(engine, city, tmp_path)
    filled = fill(path, inspector, tmp_path / "returned.xlsx")
    summary = import_checks(engine, city, filled, tmp_path / "reports", today=TODAY)
    assert (summary.recorded, summary.passed, summary.failed) == (8, 6, 2)
    assert (summary.reopened, summary.escalated, summary.pending) == (2, 2, 0)

    with session_scope(engine) as session:
        s01 = session.scalars(select(Ticket).where(Ticket.external_id == "S01")).one()
        assert s01.status == TicketStatus.reopened
        failed_task = session.scalars(
            select(PlanTask)
            .join(SpotCheckSample, SpotCheckSample.item_id == PlanTask.id)
            .where(SpotCheckSample.passed.is_(False), SpotCheckSample.item_kind == "plan_task")
        ).one()
        assert failed_task.status == PlanItemStatus.in_progress
        assert failed_task.completed_on is None
        escalations = session.scalars(select(Escalation)).all()
        assert sorted((e.item_kind.value, e.step, e.level) for e in escalations) == [
            ("plan_task", FAILED_STEP, 2),
            ("ticket", FAILED_STEP, 2),
        ]
        assert {e.unit_id for e in escalations} == {s01.unit_id, failed_task.owner_unit_id}
        assert all(e.due_on == TODAY and "问题仍未解决" in e.reason for e in escalations)
        audit = session.scalars(select(AuditRecord)).all()
        reopen = sorted(
            (a.entity, a.field, a.old, a.new) for a in audit if a.entity != "spot_check_sample"
        )
        assert reopen == [
            ("plan_task", "completed_on", failed_task_completed(engine, failed_task.code), None),
            ("plan_task", "status", "done", "in_progress"),
            ("ticket", "status", "closed", "reopened"),
        ]
        verdicts = [a for a in audit if a.entity == "spot_check_sample"]
        assert len([a for a in verdicts if a.field == "passed"]) == 8
        assert all("returned.xlsx, sheet 抽查清单, row" in (a.origin or "") for a in audit)
        samples = session.scalars(select(SpotCheckSample)).all()
        assert all(s.checked_at is not None for s in samples)
        assert session.scalar(select(func.count()).select_from(ImportRun)) == 1

    with engine.connect() as conn:
        failures = spot_check_failures(conn, 2026).set_index("unit_id")
    assert failures.loc[s01.unit_id].tolist() == [1, 2]
    assert failures.loc[failed_task.owner_unit_id].tolist() == [1, 3]
    assert int(failures["checked"].sum()) == 8 and int(failures["failed"].sum()) == 2
    with engine.connect() as conn:
        assert spot_check_failures(conn, 2025).empty

    # The same workbook again changes nothing, and a reclosed item is not reopened again.
    before = snapshot(engine)
    again = import_checks(engine, city, filled, tmp_path / "reports", today=TODAY)
    assert (again.recorded, again.reopened, again.escalated, again.audited) == (0, 0, 0, 0)
    assert again.unchanged == 8
    after = snapshot(engine)
    assert after == before


def failed_task_completed(engine: Engine, code: str) -> str:
    return {f"T{i}": f"2026-07-{10 + i}" for i in range(4)}[code]


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        (lambda ws: put(ws, "S02", "没问题", None, "2026-10-14"), "核验结果", "unknown result"),
        (lambda ws: put(ws, "S02", "不通过", None, "2026-10-14"), "核验说明", "say why"),
        (lambda ws: put(ws, "S02", "通过", None, "2026-12-01"), "核验日期", "future"),
        (lambda ws: put(ws, "S02", "通过", None, None), "核验日期", "missing"),
        (lambda ws: put(ws, "S02", None, "看过了", None), "核验结果", "without a result"),
        (lambda ws: ws.cell(row_of(ws, "S02"), 1, 999999), "抽查编号", "unknown sample"),
        (lambda ws: ws.cell(row_of(ws, "S02"), 3, "S99"), "编号", "edited"),
    ],
)
def test_a_malformed_checklist_is_rejected_whole(
    engine: Engine,
    city: CityConfig,
    tmp_path: Path,
    change: Callable[[Any], None],
    column: str,
    reason: str,
) -> None:
    path = checklist(engine, city, tmp_path)

    def inspect_then_break(ws: Any) -> None:
        inspector(ws)  # every other row is good: none of it may be recorded
        change(ws)

    bad = fill(path, inspect_then_break, tmp_path / "bad.xlsx")
    before = snapshot(engine)
    with pytest.raises(ChecklistError) as caught:
        import_checks(engine, city, bad, tmp_path / "reports", today=TODAY)
    assert snapshot(engine) == before
    [finding] = caught.value.findings
    row = row_of(load_workbook(bad)[SHEET], "S02") if column != "编号" else finding.row
    assert (finding.file, finding.sheet, finding.row, finding.column) == (
        "bad.xlsx",
        SHEET,
        row,
        column,
    )
    assert reason in finding.reason
    assert "bad.xlsx, sheet '抽查清单', row" in str(caught.value)
    assert caught.value.report_path is not None and caught.value.report_path.exists()


def test_a_recorded_verdict_is_final_and_a_missing_column_rejects_the_file(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = checklist(engine, city, tmp_path)
    filled = fill(path, inspector, tmp_path / "returned.xlsx")
    import_checks(engine, city, filled, tmp_path / "reports", today=TODAY)
    flipped = fill(
        filled,
        lambda ws: put(ws, "S01", "通过", None, "2026-10-16"),
        tmp_path / "flipped.xlsx",
    )
    before = snapshot(engine)
    with pytest.raises(ChecklistError, match="final"):
        import_checks(engine, city, flipped, tmp_path / "reports", today=TODAY)

    def drop_result(ws: Any) -> None:
        ws.delete_cols(col(ws, "核验结果"))

    missing = fill(path, drop_result, tmp_path / "missing.xlsx")
    with pytest.raises(ChecklistError, match="missing columns 核验结果/result"):
        import_checks(engine, city, missing, tmp_path / "reports", today=TODAY)
    assert snapshot(engine) == before
