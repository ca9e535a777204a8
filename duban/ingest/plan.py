"""`duban import plan`: the "one plan, three lists" (一方案三清单) workbook into the database.

The workbook is kept by the lead units (主责单位): one sheet per list, headers in row 1, in
Chinese or English (see docs/plan-workbook.md). `write_plan_workbook` writes exactly this
format and is its executable definition; `import_plan` reads it back.

Walk: read the whole workbook (it is small: ~600 tasks) into raw rows, raising ExportError
for faults of the whole file before anything is written -> validate every row against the
problems and units in the database -> in ONE transaction: record the ImportRun, quarantine the
bad rows (table + CSV report), upsert the good ones by (problem, code) and write an
AuditRecord for every created item and every changed field. A crash never half-applies;
re-importing the same workbook changes nothing and writes no audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from duban import workbooks as wb
from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import (
    ImportRun,
    PlanItemStatus,
    PlanTask,
    Policy,
    Problem,
    QuarantinedRow,
    Responsibility,
    Unit,
)
from duban.ingest.sources import ExportError
from duban.ingest.tickets import file_sha256
from duban.workbooks import Column, SheetSpec

__all__ = (
    "DATE_FIELDS",
    "MONTH_FIELDS",
    "POLICIES",
    "POLICY_STATUS",
    "RESPONSIBILITIES",
    "SHEETS",
    "TASKS",
    "TASK_STATUS",
    "PlanImportSummary",
    "PlanRefs",
    "PlanRowCheck",
    "SheetCounts",
    "import_plan",
    "load_refs",
    "read_plan_workbook",
    "validate_sheet",
    "write_plan_workbook",
)

CODE_MAX_LENGTH = 64  # plan_tasks.code, responsibilities.code, policies.code


# ---------------------------------------------------------------- the format


TASKS = SheetSpec(
    "tasks",
    "任务清单",
    (
        Column("problem", "问题编号"),
        Column("code", "任务编号"),
        Column("title", "任务内容"),
        Column("owner", "责任单位"),
        Column("start_month", "开始月份", required=False),
        Column("due_month", "完成时限"),
        Column("status", "状态", required=False),
        Column("progress", "进度", required=False),
        Column("completed_on", "完成日期", required=False),
        Column("evidence", "佐证材料", required=False),
    ),
)
RESPONSIBILITIES = SheetSpec(
    "responsibilities",
    "责任清单",
    (
        Column("problem", "问题编号"),
        Column("code", "编号"),
        Column("unit", "责任单位"),
        Column("duty", "职责"),
    ),
)
POLICIES = SheetSpec(
    "policies",
    "政策清单",
    (
        Column("problem", "问题编号"),
        Column("code", "政策编号"),
        Column("title", "政策名称"),
        Column("owner", "责任单位"),
        Column("due_month", "计划出台月份"),
        Column("status", "状态", required=False),
        Column("issued_on", "出台日期", required=False),
        Column("evidence", "佐证材料", required=False),
    ),
)
PLAN = SheetSpec("plan", "方案", (Column("problem", "问题编号"), Column("plan", "方案")))
SHEETS = (TASKS, RESPONSIBILITIES, POLICIES, PLAN)

TASK_STATUS: dict[str, PlanItemStatus] = {
    "planned": PlanItemStatus.planned,
    "in_progress": PlanItemStatus.in_progress,
    "done": PlanItemStatus.done,
    "未开始": PlanItemStatus.planned,
    "推进中": PlanItemStatus.in_progress,
    "进行中": PlanItemStatus.in_progress,
    "已完成": PlanItemStatus.done,
}
POLICY_STATUS: dict[str, PlanItemStatus] = {
    **TASK_STATUS,
    "未出台": PlanItemStatus.planned,
    "起草中": PlanItemStatus.in_progress,
    "已出台": PlanItemStatus.done,
}

MONTH_FIELDS = ("start_month", "due_month")
DATE_FIELDS = ("completed_on", "issued_on")


# ---------------------------------------------------------------- the summary


@dataclass
class SheetCounts:
    present: bool = False  # the workbook had this sheet
    read: int = 0  # non-empty data rows
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0

    def text(self, name: str) -> str:
        if not self.present:
            return f"{name}: no sheet"
        return (
            f"{name} {self.read} read ({self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.quarantined} quarantined)"
        )


class _Total:
    """A count of PlanImportSummary: its sum over the sheets (read-only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, summary: PlanImportSummary | None, owner: type | None = None) -> int:
        if summary is None:
            raise AttributeError(self.name)  # a count of a summary, not of the class
        return sum(getattr(summary.sheet(s.key), self.name) for s in SHEETS)


@dataclass
class PlanImportSummary:
    run_id: int
    file: str
    tasks: SheetCounts = field(default_factory=SheetCounts)
    responsibilities: SheetCounts = field(default_factory=SheetCounts)
    policies: SheetCounts = field(default_factory=SheetCounts)
    plan: SheetCounts = field(default_factory=SheetCounts)  # the 方案 sheet: Problem.plan
    report_path: str | None = None

    def sheet(self, key: str) -> SheetCounts:
        counts = getattr(self, key)
        assert isinstance(counts, SheetCounts)
        return counts

    read = _Total()
    inserted = _Total()
    updated = _Total()
    unchanged = _Total()
    quarantined = _Total()

    def line(self) -> str:
        parts = [self.sheet(s.key).text(s.key) for s in (TASKS, RESPONSIBILITIES, POLICIES)]
        if self.plan.present:
            parts.append(self.plan.text("plan"))
        text = f"{Path(self.file).name}: " + "; ".join(parts)
        if self.report_path:
            text += f" (see {self.report_path})"
        return text


# ---------------------------------------------------------------- reading the workbook


def _match_sheets(path: Path, titles: list[str]) -> dict[str, str]:
    """Spec key -> sheet title, for the plan sheets the workbook has."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for spec in SHEETS:
        matches = spec.titles_in(titles)
        if len(matches) > 1:
            shown = " and ".join(repr(t) for t in matches)
            problems.append(f"sheets {shown} are both the {spec.label} sheet; keep one")
        elif matches:
            found[spec.key] = matches[0]
    if problems:
        raise ExportError(f"{path}: " + "; ".join(problems))
    if not found:
        expected = ", ".join(s.label for s in SHEETS)
        shown = ", ".join(repr(t) for t in titles) or "none"
        raise ExportError(
            f"{path}: none of the plan sheets ({expected}) is in the workbook; "
            f"its sheets are: {shown}"
        )
    return found


def read_plan_workbook(path: Path) -> list[wb.Sheet]:
    """The plan sheets of the workbook, as raw rows; ExportError for faults of the whole file."""
    path = Path(path)
    try:
        book = wb.open_workbook(path)
    except wb.WorkbookFileError as exc:
        raise ExportError(str(exc)) from None
    try:
        found = _match_sheets(path, list(book.sheetnames))
        sheets: list[wb.Sheet] = []
        problems: list[str] = []
        for spec in SHEETS:
            if spec.key not in found:
                continue
            try:
                sheets.append(wb.read_sheet(spec, book[found[spec.key]], path))
            except wb.SheetError as exc:
                problems.append(str(exc))
        if problems:
            raise ExportError("\n".join(problems))
        return sheets
    finally:
        book.close()


# ---------------------------------------------------------------- validating the rows


@dataclass
class PlanRefs:
    """What a plan row refers to, from the database: problems and units."""

    problems: dict[str, Problem]  # code -> problem
    units: dict[str, int]  # unit code, name or alias -> id (active units)
    inactive: set[str]  # codes of units no longer in the config
    unit_codes: dict[int, str]  # id -> code, for the audit


def load_refs(session: Session, config: CityConfig) -> PlanRefs:
    problems = {p.code: p for p in session.scalars(select(Problem))}
    units = list(session.scalars(select(Unit)))
    by_code = {u.code: u.id for u in units if u.active}
    lookup: dict[str, int] = {}
    for uc in config.units.units:
        if uc.code in by_code:
            for name in (uc.name, *uc.aliases):
                lookup.setdefault(name, by_code[uc.code])
    lookup.update(by_code)  # a code wins over a name that happens to be spelled the same
    return PlanRefs(
        problems=problems,
        units=lookup,
        inactive={u.code for u in units if not u.active},
        unit_codes={u.id: u.code for u in units},
    )


@dataclass
class _Good:
    row: wb.Row
    problem: Problem
    code: str  # "" for the plan sheet (keyed by problem alone)
    values: dict[str, Any]  # the model's fields this row sets


@dataclass
class _Bad:
    row: wb.Row
    errors: list[dict[str, str]]


class PlanRowCheck(wb.RowCheck):
    """Parses the cells of one plan row, collecting every finding; knows the problems and
    units of the database (`refs`)."""

    def __init__(self, sheet: wb.Sheet, row: wb.Row, refs: PlanRefs) -> None:
        super().__init__(sheet, row)
        self.refs = refs

    def problem(self) -> Problem | None:
        code = self.text("problem", required=True)
        if code is None:
            return None
        found = self.refs.problems.get(code)
        if found is None:
            self.add(
                "problem",
                f"unknown problem {code!r} (not in the database; problems come from "
                "config/problems.yaml through `duban sync`)",
            )
        return found

    def unit(self, name: str) -> int | None:
        value = self.text(name, required=True)
        if value is None:
            return None
        unit_id = self.refs.units.get(value)
        if unit_id is None:
            if value in self.refs.inactive:
                self.add(name, f"unit {value!r} is inactive (no longer in config/units.yaml)")
            else:
                self.add(
                    name, f"unknown unit {value!r} (not a code, name or alias in config/units.yaml)"
                )
        return unit_id

    def status(self, table: dict[str, PlanItemStatus]) -> PlanItemStatus | None:
        if not self.text_of("status"):
            return PlanItemStatus.planned
        status = self.word("status", table)
        if status is None:
            words = ", ".join(table)
            self.add("status", f"unknown status {self.text_of('status')!r} (use one of: {words})")
        return status


def _check_task(c: PlanRowCheck) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": c.text("title", required=True),
        "owner_unit_id": c.unit("owner"),
        "due_month": c.month("due_month", required=True),
    }
    if c.has("start_month"):
        values["start_month"] = c.month("start_month", required=False)
    status = c.status(TASK_STATUS)
    if c.has("status"):
        values["status"] = status
    progress = c.progress()
    if progress is not None:
        values["progress"] = progress
    elif status is PlanItemStatus.done and c.has("status"):
        values["progress"] = 1.0
    elif c.has("progress"):
        values["progress"] = 0.0
    if c.has("completed_on"):
        values["completed_on"] = c.date("completed_on")
    if c.has("evidence"):
        values["evidence"] = c.text("evidence", required=False)
    start, due = values.get("start_month"), values["due_month"]
    if start is not None and due is not None and start > due:
        c.add("start_month", f"start month {start:%Y-%m} is after the due month {due:%Y-%m}")
    return values


def _check_responsibility(c: PlanRowCheck) -> dict[str, Any]:
    return {"unit_id": c.unit("unit"), "duty": c.text("duty", required=True)}


def _check_policy(c: PlanRowCheck) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": c.text("title", required=True),
        "owner_unit_id": c.unit("owner"),
        "due_month": c.month("due_month", required=True),
    }
    status = c.status(POLICY_STATUS)
    if c.has("status"):
        values["status"] = status
    if c.has("issued_on"):
        values["issued_on"] = c.date("issued_on")
    if c.has("evidence"):
        values["evidence"] = c.text("evidence", required=False)
    return values


def _check_plan(c: PlanRowCheck) -> dict[str, Any]:
    return {"plan": c.text("plan", required=True)}


CHECKS = {
    "tasks": _check_task,
    "responsibilities": _check_responsibility,
    "policies": _check_policy,
    "plan": _check_plan,
}


def validate_sheet(sheet: wb.Sheet, refs: PlanRefs) -> tuple[list[_Good], list[_Bad]]:
    """Split a sheet's rows into good items and quarantined rows with every reason."""
    good: list[_Good] = []
    bad: list[_Bad] = []
    keyed = sheet.spec.key != "plan"
    first_row: dict[tuple[str, str], int] = {}
    for row in sheet.rows:
        c = PlanRowCheck(sheet, row, refs)
        problem = c.problem()
        code = c.text("code", required=True, max_length=CODE_MAX_LENGTH) if keyed else ""
        values = CHECKS[sheet.spec.key](c)
        key = (c.text_of("problem"), c.text_of("code") if keyed else "")
        if key[0] and (key[1] or not keyed):
            if key in first_row:
                what = f"problem {key[0]}, code {key[1]}" if keyed else f"problem {key[0]}"
                c.add(
                    "code" if keyed else "problem",
                    f"duplicate of row {first_row[key]} ({what}) in sheet {sheet.title!r}",
                )
            else:
                first_row[key] = row.number
        if c.errors or problem is None or code is None:
            bad.append(_Bad(row, c.errors))
        else:
            good.append(_Good(row, problem, code, values))
    return good, bad


# ---------------------------------------------------------------- storing


MODELS: dict[str, tuple[type[PlanTask] | type[Responsibility] | type[Policy], str]] = {
    "tasks": (PlanTask, "plan_task"),
    "responsibilities": (Responsibility, "responsibility"),
    "policies": (Policy, "policy"),
}
# Values of a new item for the fields its sheet leaves out (optional columns absent).
DEFAULTS: dict[str, dict[str, Any]] = {
    "tasks": {
        "start_month": None,
        "status": PlanItemStatus.planned,
        "progress": 0.0,
        "completed_on": None,
        "evidence": None,
    },
    "responsibilities": {},
    "policies": {"status": PlanItemStatus.planned, "issued_on": None, "evidence": None},
}
UNIT_FIELDS = ("owner_unit_id", "unit_id")


def _audit_show(refs: PlanRefs) -> Callable[[str, Any], str | None]:
    """How the audit shows a plan field: a unit by its code, anything else as audit_text."""

    def show(name: str, value: Any) -> str | None:
        if value is not None and name in UNIT_FIELDS:
            return refs.unit_codes.get(value, str(value))
        return wb.audit_text(value)

    return show


def plan_audit(session: Session, refs: PlanRefs, actor: str, origin: str) -> wb.AuditTrail:
    """The audit trail of a plan import (also of the ledger, which changes plan items)."""
    return wb.AuditTrail(session, actor, origin, show=_audit_show(refs))


def _store_items(
    session: Session, key: str, good: list[_Good], counts: SheetCounts, audit: wb.AuditTrail
) -> None:
    model, entity = MODELS[key]
    problem_ids = {g.problem.id for g in good}
    rows: list[PlanTask | Responsibility | Policy] = list(
        session.scalars(select(model).where(model.problem_id.in_(problem_ids)))
    )
    existing = {(o.problem_id, o.code): o for o in rows}
    created: list[PlanTask | Responsibility | Policy] = []
    for item in good:
        obj = existing.get((item.problem.id, item.code))
        if obj is None:
            values = {**DEFAULTS[key], **item.values}
            obj = model(problem_id=item.problem.id, code=item.code, **values)
            session.add(obj)
            created.append(obj)
            counts.inserted += 1
            continue
        changed = False
        for name, new in item.values.items():
            old = getattr(obj, name)
            if not wb.same_value(old, new):
                audit.change(entity, obj.id, name, old, new)
                setattr(obj, name, new)
                changed = True
        if changed:
            counts.updated += 1
        else:
            counts.unchanged += 1
    session.flush()
    for obj in created:
        audit.record(entity, obj.id, "created", None, obj.code)


def _store_plans(good: list[_Good], counts: SheetCounts, audit: wb.AuditTrail) -> None:
    for item in good:
        problem, new = item.problem, item.values["plan"]
        if problem.plan == new:
            counts.unchanged += 1
            continue
        audit.change("problem", problem.id, "plan", problem.plan, new)
        problem.plan = new
        counts.updated += 1


def _quarantine_path(reports_dir: Path, run_id: int, path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return reports_dir / "quarantine" / f"{stamp}-run{run_id}-plan-{path.stem}.csv"


def _write_report(target: Path, file_name: str, bad: list[tuple[str, _Bad]]) -> None:
    """The quarantine report: one CSV line per finding; personal data masked."""
    wb.write_report(
        target,
        (
            wb.Finding(file_name, sheet, b.row.number, err["field"], err["column"], err["value"],
                    err["reason"])
            for sheet, b in bad
            for err in b.errors
        ),
    )  # fmt: skip


def import_plan(
    engine: Engine,
    config: CityConfig,
    path: Path,
    reports_dir: Path,
    *,
    actor: str = "import plan",
) -> PlanImportSummary:
    """Import one plan workbook; return what happened. Faults of the whole file raise
    ExportError (nothing is written); bad rows are quarantined and the good ones kept."""
    path = Path(path)
    sheets = read_plan_workbook(path)
    checksum = file_sha256(path)
    with session_scope(engine) as session:
        refs = load_refs(session, config)
        if not refs.problems:
            raise ValueError(
                "no problems in the database: run `duban sync` (config/problems.yaml) first"
            )
        run = ImportRun(kind="plan", source=None, file_name=str(path), started_at=datetime.now())
        session.add(run)
        session.flush()
        summary = PlanImportSummary(run_id=run.id, file=str(path))
        audit = plan_audit(session, refs, actor, path.name)
        all_bad: list[tuple[str, _Bad]] = []
        for sheet in sheets:
            counts = summary.sheet(sheet.spec.key)
            counts.present = True
            counts.read = len(sheet.rows)
            good, bad = validate_sheet(sheet, refs)
            counts.quarantined = len(bad)
            all_bad += [(sheet.title, b) for b in bad]
            # Once per (sheet, file checksum, row): a re-import of the same workbook finds
            # its bad rows recorded (the summary and the report still list them).
            source = f"plan:{sheet.spec.key}"
            recorded = set(
                session.scalars(
                    select(QuarantinedRow.row_number).where(
                        QuarantinedRow.source == source, QuarantinedRow.file_sha256 == checksum
                    )
                )
            )
            session.add_all(
                QuarantinedRow(
                    import_run_id=run.id,
                    source=source,
                    file_name=str(path),
                    file_sha256=checksum,
                    sheet=sheet.title,
                    row_number=b.row.number,
                    errors=b.errors,
                    raw=b.row.raw,
                )
                for b in bad
                if b.row.number not in recorded
            )
            if sheet.spec.key == "plan":
                _store_plans(good, counts, audit)
            else:
                _store_items(session, sheet.spec.key, good, counts, audit)
        if all_bad:
            report = _quarantine_path(reports_dir, run.id, path)
            _write_report(report, path.name, all_bad)
            summary.report_path = str(report)
        run.finished_at = datetime.now()
        run.read, run.inserted, run.updated = summary.read, summary.inserted, summary.updated
        run.unchanged, run.quarantined = summary.unchanged, summary.quarantined
        run.report_path = summary.report_path
    return summary


# ---------------------------------------------------------------- writing the workbook


def _write_value(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, PlanItemStatus):
        return value.value
    if name in MONTH_FIELDS and isinstance(value, date):
        return f"{value:%Y-%m}"
    if name in DATE_FIELDS and isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        return day.isoformat()
    return value


def _write_sheet(book: Any, spec: SheetSpec, rows: Iterable[dict[str, Any]]) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws = book.create_sheet(spec.zh)
    ws.append([c.zh for c in spec.columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center")
    widths = [wb.display_width(c.zh) for c in spec.columns]
    known = {c.field for c in spec.columns}
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(f"{spec.key}[{i}]: unknown keys {unknown} (expected {sorted(known)})")
        values = [_write_value(c.field, row.get(c.field)) for c in spec.columns]
        ws.append(values)
        for j, value in enumerate(values):
            if value is not None and i < 500:
                widths[j] = max(widths[j], wb.display_width(str(value)))
    for j, col in enumerate(spec.columns, start=1):
        if col.field in ("progress", "plan"):
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                if col.field == "plan":
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
                elif isinstance(cell.value, int | float):
                    cell.number_format = "0%"
        limit = 80 if col.field == "plan" else 50
        ws.column_dimensions[get_column_letter(j)].width = min(limit, max(8, widths[j - 1] + 2))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions


def write_plan_workbook(
    path: Path,
    tasks: list[dict[str, Any]],
    responsibilities: list[dict[str, Any]],
    policies: list[dict[str, Any]],
    plans: list[dict[str, Any]] | None = None,
) -> None:
    """Write a plan workbook in the format `import_plan` reads, with the Chinese headers.

    Keys of the dicts are the English column names (problem, code, title, owner, …); months
    are "YYYY-MM" strings (or dates), dates ISO strings (or dates); "" and None leave the
    cell empty. The 方案 sheet is written when `plans` is given.
    """
    from openpyxl import Workbook

    book = Workbook()
    default = book.active
    if plans is not None:
        _write_sheet(book, PLAN, plans)
    _write_sheet(book, TASKS, tasks)
    _write_sheet(book, RESPONSIBILITIES, responsibilities)
    _write_sheet(book, POLICIES, policies)
    if default is not None:
        book.remove(default)
    book.active = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.neutralise_formulas(book)
    book.save(path)
