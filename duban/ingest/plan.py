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

import csv
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

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
from duban.ingest.sources import ExportError
from duban.rules.masking import mask_personal_data

REPORT_COLUMNS = ("file", "sheet", "row", "field", "column", "value", "reason")
CODE_MAX_LENGTH = 64  # plan_tasks.code, responsibilities.code, policies.code


# ---------------------------------------------------------------- the format


@dataclass(frozen=True)
class Column:
    field: str  # the English header, lower case; also the key of write_plan_workbook's dicts
    zh: str  # the Chinese header
    required: bool = True

    @property
    def label(self) -> str:
        return f"{self.zh}/{self.field}"


@dataclass(frozen=True)
class SheetSpec:
    key: str  # tasks | responsibilities | policies | plan (also the English sheet name)
    zh: str  # the Chinese sheet name
    columns: tuple[Column, ...]

    @property
    def label(self) -> str:
        return f"{self.zh}/{self.key}"


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

    def _total(self, attr: str) -> int:
        return sum(getattr(self.sheet(s.key), attr) for s in SHEETS)

    @property
    def read(self) -> int:
        return self._total("read")

    @property
    def inserted(self) -> int:
        return self._total("inserted")

    @property
    def updated(self) -> int:
        return self._total("updated")

    @property
    def unchanged(self) -> int:
        return self._total("unchanged")

    @property
    def quarantined(self) -> int:
        return self._total("quarantined")

    def line(self) -> str:
        parts = [self.sheet(s.key).text(s.key) for s in (TASKS, RESPONSIBILITIES, POLICIES)]
        if self.plan.present:
            parts.append(self.plan.text("plan"))
        text = f"{Path(self.file).name}: " + "; ".join(parts)
        if self.report_path:
            text += f" (see {self.report_path})"
        return text


# ---------------------------------------------------------------- reading the workbook


@dataclass
class _Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    cells: dict[str, Any]  # field -> cell value, for the columns the sheet has
    raw: dict[str, str]  # header as in the file -> cell as text


@dataclass
class _Sheet:
    spec: SheetSpec
    title: str  # the sheet name as in the file
    headers: dict[str, str]  # field -> header as in the file
    rows: list[_Row]


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == datetime.min.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _header_key(text: str) -> str:
    """Headers and sheet names compare without case, outer spaces, or " "/"-" against "_"."""
    return re.sub(r"[\s\-]+", "_", unicodedata.normalize("NFKC", text).strip().casefold())


def _match_sheets(path: Path, titles: list[str]) -> dict[str, str]:
    """Spec key -> sheet title, for the plan sheets the workbook has."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for spec in SHEETS:
        names = {_header_key(spec.zh), _header_key(spec.key)}
        matches = [t for t in titles if _header_key(t) in names]
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


def _map_header(path: Path, spec: SheetSpec, title: str, header: list[str]) -> dict[str, int]:
    """Field -> column position, or raise naming the sheet and every missing column."""
    by_name: dict[str, Column] = {}
    for col in spec.columns:
        by_name[_header_key(col.zh)] = col
        by_name[_header_key(col.field)] = col
    positions: dict[str, int] = {}
    problems: list[str] = []
    for i, text in enumerate(header):
        found = by_name.get(_header_key(text)) if text else None
        if found is None:
            continue
        if found.field in positions:
            first = header[positions[found.field]]
            problems.append(f"columns {first!r} and {text!r} are both {found.label}")
            continue
        positions[found.field] = i
    missing = [c.label for c in spec.columns if c.required and c.field not in positions]
    if missing:
        shown = ", ".join(repr(h) for h in header if h) or "nothing (no header row)"
        problems.append(f"missing columns {', '.join(missing)}; its header row has {shown}")
    if problems:
        raise ExportError(f"{path}: sheet {title!r}: " + "; ".join(problems))
    return positions


def _read_rows(spec: SheetSpec, title: str, rows: Iterator[tuple[Any, ...]], path: Path) -> _Sheet:
    first = next(rows, ())
    header = [_cell_text(v) for v in first]
    positions = _map_header(path, spec, title, header)
    raw_names = [h or f"(column {i + 1})" for i, h in enumerate(header)]
    out: list[_Row] = []
    for number, values in enumerate(rows, start=2):
        texts = [_cell_text(v) for v in values]
        if not any(texts):
            continue  # an empty row: skipped silently
        raw = {
            (raw_names[i] if i < len(raw_names) else f"(column {i + 1})"): t
            for i, t in enumerate(texts)
            if t
        }
        cells = {f: (values[i] if i < len(values) else None) for f, i in positions.items()}
        out.append(_Row(number, cells, raw))
    headers = {f: header[i] for f, i in positions.items()}
    return _Sheet(spec, title, headers, out)


def read_plan_workbook(path: Path) -> list[_Sheet]:
    """The plan sheets of the workbook, as raw rows; ExportError for faults of the whole file."""
    from openpyxl import load_workbook

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: file not found")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise ExportError(f"{path}: unsupported file type {path.suffix!r} (use .xlsx)")
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise ExportError(f"{path}: not a readable .xlsx workbook: {exc}") from None
    try:
        found = _match_sheets(path, list(book.sheetnames))
        sheets: list[_Sheet] = []
        problems: list[str] = []
        for spec in SHEETS:
            if spec.key not in found:
                continue
            ws = book[found[spec.key]]
            ws.reset_dimensions()  # some writers store wrong dimensions: read what is there
            try:
                sheets.append(_read_rows(spec, ws.title, ws.iter_rows(values_only=True), path))
            except ExportError as exc:
                problems.append(str(exc))
        if problems:
            raise ExportError("\n".join(problems))
        return sheets
    finally:
        book.close()


# ---------------------------------------------------------------- validating the rows


_MONTH_RE = (
    re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月?$"),
)
_DATE_RE = (
    re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$"),
)


def _date_of(value: Any) -> date | None:
    """An Excel date cell or a date text (2026-03-15, 2026/3/15, 2026年3月15日); else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    text = re.sub(r"[ T]00:00(:00)?$", "", text)  # a date exported with a zero time
    for pattern in _DATE_RE:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def _month_of(value: Any) -> date | None:
    """The first day of the month: 2026-03, 2026/3, 2026年3月, a date, or an Excel date cell."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        for pattern in _MONTH_RE:
            m = pattern.match(text)
            if m:
                month = int(m[2])
                return date(int(m[1]), month, 1) if 1 <= month <= 12 else None
    day = _date_of(value)
    return day.replace(day=1) if day else None


def _parse_progress(value: Any) -> float | None:
    """0.45, "45%" or 45 (a number above 1 means percent) -> 0.45; None when not a number."""
    percent = False
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if text.endswith("%"):
            percent, text = True, text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number):
        return None
    if percent or abs(number) > 1:
        number /= 100
    return round(number, 6)


def _status_key(value: Any) -> str:
    text = unicodedata.normalize("NFKC", _cell_text(value)).strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


@dataclass
class _Refs:
    problems: dict[str, Problem]  # code -> problem
    units: dict[str, int]  # unit code, name or alias -> id (active units)
    inactive: set[str]  # codes of units no longer in the config
    unit_codes: dict[int, str]  # id -> code, for the audit


def _load_refs(session: Session, config: CityConfig) -> _Refs:
    problems = {p.code: p for p in session.scalars(select(Problem))}
    units = list(session.scalars(select(Unit)))
    by_code = {u.code: u.id for u in units if u.active}
    lookup: dict[str, int] = {}
    for uc in config.units.units:
        if uc.code in by_code:
            for name in (uc.name, *uc.aliases):
                lookup.setdefault(name, by_code[uc.code])
    lookup.update(by_code)  # a code wins over a name that happens to be spelled the same
    return _Refs(
        problems=problems,
        units=lookup,
        inactive={u.code for u in units if not u.active},
        unit_codes={u.id: u.code for u in units},
    )


@dataclass
class _Good:
    row: _Row
    problem: Problem
    code: str  # "" for the plan sheet (keyed by problem alone)
    values: dict[str, Any]  # the model's fields this row sets


@dataclass
class _Bad:
    row: _Row
    errors: list[dict[str, str]]


class _RowCheck:
    """Parses the cells of one row, collecting every finding."""

    def __init__(self, sheet: _Sheet, row: _Row, refs: _Refs) -> None:
        self.sheet = sheet
        self.row = row
        self.refs = refs
        self.errors: list[dict[str, str]] = []

    def has(self, name: str) -> bool:
        return name in self.sheet.headers

    def raw(self, name: str) -> Any:
        return self.row.cells.get(name)

    def text_of(self, name: str) -> str:
        return _cell_text(self.raw(name))

    def add(self, name: str, reason: str) -> None:
        self.errors.append(
            {
                "field": name,
                "column": self.sheet.headers.get(name, name),
                "value": self.text_of(name),
                "reason": reason,
            }
        )

    def text(self, name: str, *, required: bool, max_length: int | None = None) -> str | None:
        value = self.text_of(name)
        if not value:
            if required:
                self.add(name, "missing")
            return None
        if max_length is not None and len(value) > max_length:
            self.add(name, f"longer than {max_length} characters")
            return None
        return value

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

    def month(self, name: str, *, required: bool) -> date | None:
        if not self.text_of(name):
            if required:
                self.add(name, "missing")
            return None
        month = _month_of(self.raw(name))
        if month is None:
            self.add(name, f"not a month: {self.text_of(name)!r} (use e.g. 2026-03 or 2026年3月)")
        return month

    def date(self, name: str) -> date | None:
        if not self.text_of(name):
            return None
        day = _date_of(self.raw(name))
        if day is None:
            self.add(name, f"not a date: {self.text_of(name)!r} (use e.g. 2026-03-15)")
        return day

    def status(self, table: dict[str, PlanItemStatus]) -> PlanItemStatus | None:
        if not self.text_of("status"):
            return PlanItemStatus.planned
        status = table.get(_status_key(self.raw("status")))
        if status is None:
            words = ", ".join(table)
            self.add("status", f"unknown status {self.text_of('status')!r} (use one of: {words})")
        return status

    def progress(self) -> float | None:
        if not self.text_of("progress"):
            return None
        number = _parse_progress(self.raw("progress"))
        if number is None:
            self.add("progress", "not a number (use e.g. 0.45, 45% or 45)")
        elif not 0 <= number <= 1:
            shown = self.text_of("progress")
            self.add("progress", f"{shown!r} means {number:.0%}: outside 0%..100%")
            return None
        return number


def _check_task(c: _RowCheck) -> dict[str, Any]:
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


def _check_responsibility(c: _RowCheck) -> dict[str, Any]:
    return {"unit_id": c.unit("unit"), "duty": c.text("duty", required=True)}


def _check_policy(c: _RowCheck) -> dict[str, Any]:
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


def _check_plan(c: _RowCheck) -> dict[str, Any]:
    return {"plan": c.text("plan", required=True)}


CHECKS = {
    "tasks": _check_task,
    "responsibilities": _check_responsibility,
    "policies": _check_policy,
    "plan": _check_plan,
}


def validate_sheet(sheet: _Sheet, refs: _Refs) -> tuple[list[_Good], list[_Bad]]:
    """Split a sheet's rows into good items and quarantined rows with every reason."""
    good: list[_Good] = []
    bad: list[_Bad] = []
    keyed = sheet.spec.key != "plan"
    first_row: dict[tuple[str, str], int] = {}
    for row in sheet.rows:
        c = _RowCheck(sheet, row, refs)
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


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return math.isclose(old, new, rel_tol=0, abs_tol=1e-9)
    return bool(old == new)


class _Audit:
    def __init__(self, session: Session, refs: _Refs, actor: str, origin: str) -> None:
        self.session = session
        self.refs = refs
        self.actor = actor
        self.origin = origin
        self.at = datetime.now()

    def show(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        if name in UNIT_FIELDS:
            return self.refs.unit_codes.get(value, str(value))
        if isinstance(value, PlanItemStatus):
            return value.value
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    def record(
        self, entity: str, entity_id: int, name: str, old: str | None, new: str | None
    ) -> None:
        self.session.add(
            AuditRecord(
                at=self.at,
                actor=self.actor,
                entity=entity,
                entity_id=entity_id,
                field=name,
                old=old,
                new=new,
                origin=self.origin,
            )
        )

    def change(self, entity: str, entity_id: int, name: str, old: Any, new: Any) -> None:
        self.record(entity, entity_id, name, self.show(name, old), self.show(name, new))


def _store_items(
    session: Session, key: str, good: list[_Good], counts: SheetCounts, audit: _Audit
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
            if not _same(old, new):
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


def _store_plans(good: list[_Good], counts: SheetCounts, audit: _Audit) -> None:
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
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for sheet, b in bad:
            for err in b.errors:
                writer.writerow(
                    [
                        file_name,
                        sheet,
                        b.row.number,
                        err["field"],
                        err["column"],
                        mask_personal_data(err["value"]),
                        mask_personal_data(err["reason"]),
                    ]
                )


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
    with session_scope(engine) as session:
        refs = _load_refs(session, config)
        if not refs.problems:
            raise ValueError(
                "no problems in the database: run `duban sync` (config/problems.yaml) first"
            )
        run = ImportRun(kind="plan", source=None, file_name=str(path), started_at=datetime.now())
        session.add(run)
        session.flush()
        summary = PlanImportSummary(run_id=run.id, file=str(path))
        audit = _Audit(session, refs, actor, path.name)
        all_bad: list[tuple[str, _Bad]] = []
        for sheet in sheets:
            counts = summary.sheet(sheet.spec.key)
            counts.present = True
            counts.read = len(sheet.rows)
            good, bad = validate_sheet(sheet, refs)
            counts.quarantined = len(bad)
            all_bad += [(sheet.title, b) for b in bad]
            session.add_all(
                QuarantinedRow(
                    import_run_id=run.id,
                    file_name=str(path),
                    sheet=sheet.title,
                    row_number=b.row.number,
                    errors=b.errors,
                    raw=b.row.raw,
                )
                for b in bad
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


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


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
    widths = [_display_width(c.zh) for c in spec.columns]
    known = {c.field for c in spec.columns}
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(f"{spec.key}[{i}]: unknown keys {unknown} (expected {sorted(known)})")
        values = [_write_value(c.field, row.get(c.field)) for c in spec.columns]
        ws.append(values)
        for j, value in enumerate(values):
            if value is not None and i < 500:
                widths[j] = max(widths[j], _display_width(str(value)))
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
    book.save(path)
