"""The ledger workbook (台账): a lead unit's plan tasks and policies, out and back.

Each month a lead unit (主责单位) receives one workbook listing the plan tasks and policies of
the problems it leads, fills in what happened (status, progress, completion or issue date,
evidence) and sends it back; `duban import ledger` reads it. See docs/ledger-workbook.md.

Out: `load_ledger` (the unit's items, one query per list) -> `render_ledger_workbook` (a
pure function of the ledger and the as-of day: the same data gives the same bytes) ->
`write_ledger_workbook` (both, for one unit; what the monthly flow attaches to its e-mail).

Back: `import_ledger` reads the whole workbook, checks every row against the database and
either applies all of it in ONE transaction (one AuditRecord per changed field) or nothing
at all: any finding rejects the file with a LedgerError naming file, sheet, row and column.
Re-importing the same workbook changes nothing and writes no audit record.

The sheets use the headers of the plan workbook (duban/ingest/plan.py); header matching, cell
parsing, findings, the audit and the saving are the workbooks' (duban/workbooks/).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from duban import workbooks as wb
from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import ImportRun, PlanItemStatus, PlanTask, Policy, Problem, Unit
from duban.ingest.plan import (
    POLICIES,
    POLICY_STATUS,
    TASK_STATUS,
    TASKS,
    load_refs,
    plan_audit,
)
from duban.workbooks import Column, SheetSpec

__all__ = (
    "KINDS",
    "LEDGER_POLICIES",
    "LEDGER_SHEETS",
    "LEDGER_TASKS",
    "Ledger",
    "LedgerError",
    "LedgerImportSummary",
    "LedgerItem",
    "LedgerSheetCounts",
    "import_ledger",
    "ledger_file_name",
    "ledger_unit_codes",
    "load_ledger",
    "render_ledger_workbook",
    "write_ledger_workbook",
)

# ---------------------------------------------------------------- the format

# The columns of the plan workbook's lists, every one required (start_month is not sent).
LEDGER_TASKS = TASKS.only(
    ("problem", "code", "title", "owner", "due_month", "status", "progress", "completed_on",
     "evidence"),
    required=True,
)  # fmt: skip
LEDGER_POLICIES = POLICIES.only((c.field for c in POLICIES.columns), required=True)
LEDGER_SHEETS = (LEDGER_TASKS, LEDGER_POLICIES)
README_SHEET = "填写说明"
README_NAMES = ("填写说明", "readme", "read_me")
UNIT_LABEL = "单位编码"  # the read-me cell that says whose ledger this is
WARNING_HEADER = "预警"  # an informational column: the import ignores it

# The columns that identify an item: written for checking, never to be edited.
IDENTIFYING = ("problem", "code", "title", "owner", "due_month")
# The columns the unit fills in.
FILL_IN = ("status", "progress", "completed_on", "issued_on", "evidence")

# The words the drop-downs offer (the import also takes every word of TASK_STATUS and
# POLICY_STATUS). Tasks use the daily report's words (duban/loops/daily/report.py).
TASK_WORDS = {
    PlanItemStatus.planned: "未开始",
    PlanItemStatus.in_progress: "推进中",
    PlanItemStatus.done: "已完成",
}
POLICY_WORDS = {
    PlanItemStatus.planned: "未出台",
    PlanItemStatus.in_progress: "起草中",
    PlanItemStatus.done: "已出台",
}
COLOUR_WORDS = {"red": "超期", "yellow": "滞后", "blue": "临期"}

# A progress this close to 0 or 1 counts as 0 % or 100 % (the status rules of a changed row).
PROGRESS_TOLERANCE = 1e-6
LAYOUT = wb.ListLayout(
    fill_in=FILL_IN,
    wrap=("title", "evidence"),
    formats={"progress": "0%", "completed_on": "yyyy-mm-dd", "issued_on": "yyyy-mm-dd"},
    limits={"title": 48, "evidence": 36},
)


@dataclass(frozen=True)
class _Kind:
    spec: SheetSpec
    entity: str  # AuditRecord.entity
    model: type[PlanTask] | type[Policy]
    date_field: str  # completed_on | issued_on
    words: dict[PlanItemStatus, str]
    statuses: dict[str, PlanItemStatus]


KINDS = (
    _Kind(LEDGER_TASKS, "plan_task", PlanTask, "completed_on", TASK_WORDS, TASK_STATUS),
    _Kind(LEDGER_POLICIES, "policy", Policy, "issued_on", POLICY_WORDS, POLICY_STATUS),
)


class LedgerError(wb.WorkbookError):
    """A ledger that cannot be written, or a returned workbook rejected whole.

    `findings` lists every problem found (file, sheet, row, column, reason); the message
    shows at most MAX_MESSAGE_LINES of them, and `report_path` (when set) holds them all.
    """


# ---------------------------------------------------------------- the unit's items


@dataclass(frozen=True)
class LedgerItem:
    id: int
    problem: str  # problem code
    code: str
    title: str
    owner_code: str
    owner_name: str
    start_month: date | None
    due_month: date
    status: PlanItemStatus
    progress: float | None  # None for a policy
    done_on: date | None  # completed_on (task) or issued_on (policy)
    evidence: str | None


@dataclass(frozen=True)
class Ledger:
    """What one lead unit's ledger lists: its problems and their tasks and policies."""

    unit_code: str
    unit_name: str
    problems: tuple[tuple[str, str], ...]  # (code, name), in order
    tasks: tuple[LedgerItem, ...]
    policies: tuple[LedgerItem, ...]

    @property
    def empty(self) -> bool:
        return not self.tasks and not self.policies


def ledger_file_name(unit_name: str, as_of: date, unit_code: str | None = None) -> str:
    """The workbook's file name, e.g. `台账-住房城乡建设委-2026-05-31.xlsx` (sent RFC
    2231-encoded: duban/notices/mailer.py). `unit_code`: also in the name, for a unit whose
    name another ledger unit shares (`台账-东华门街道（dc-dhm）-…`)."""
    name = f"{unit_name}（{unit_code}）" if unit_code else unit_name
    return wb.file_name("台账", name, as_of.isoformat(), suffix=".xlsx")


def ledger_unit_codes(session: Session) -> list[str]:
    """Codes of the active units that lead at least one problem: those that get a ledger."""
    rows = session.scalars(
        select(Unit.code)
        .join(Problem, Problem.lead_unit_id == Unit.id)
        .where(Unit.active.is_(True))
        .distinct()
        .order_by(Unit.code)
    )
    return list(rows)


def load_ledger(session: Session, unit_code: str) -> Ledger:
    """The plan tasks and policies of the problems `unit_code` leads (Problem.lead_unit_id),
    ordered by problem, due month and code. LedgerError when the unit is unknown or leads
    no problem."""
    unit = session.scalars(select(Unit).where(Unit.code == unit_code)).one_or_none()
    if unit is None:
        raise LedgerError(
            f"unknown unit {unit_code!r}: not in the database "
            "(units come from config/units.yaml through `duban sync`)"
        )
    problems = list(
        session.scalars(
            select(Problem)
            .where(Problem.lead_unit_id == unit.id)
            .order_by(Problem.year, Problem.code)
        )
    )
    if not problems:
        raise LedgerError(
            f"unit {unit.code} ({unit.name}) leads no problem of One Question a Month "
            "(每月一题): it has no ledger (lead units are set in config/problems.yaml)"
        )
    order = {p.id: i for i, p in enumerate(problems)}
    codes = {p.id: p.code for p in problems}
    units = {u.id: u for u in session.scalars(select(Unit))}

    def items(model: type[PlanTask] | type[Policy]) -> tuple[LedgerItem, ...]:
        query = select(model).where(model.problem_id.in_(list(order)))
        rows: list[PlanTask | Policy] = list(session.scalars(query))
        rows.sort(key=lambda r: (order[r.problem_id], r.due_month, r.code))
        out = []
        for r in rows:
            owner = units[r.owner_unit_id]
            out.append(
                LedgerItem(
                    id=r.id,
                    problem=codes[r.problem_id],
                    code=r.code,
                    title=r.title,
                    owner_code=owner.code,
                    owner_name=owner.name,
                    start_month=r.start_month if isinstance(r, PlanTask) else None,
                    due_month=r.due_month,
                    status=PlanItemStatus(r.status),
                    progress=float(r.progress or 0.0) if isinstance(r, PlanTask) else None,
                    done_on=r.completed_on if isinstance(r, PlanTask) else r.issued_on,
                    evidence=r.evidence,
                )
            )
        return tuple(out)

    return Ledger(
        unit_code=unit.code,
        unit_name=unit.name,
        problems=tuple((p.code, p.name) for p in problems),
        tasks=items(PlanTask),
        policies=items(Policy),
    )


# ---------------------------------------------------------------- writing


def _warning(item: LedgerItem, as_of: date, config: CityConfig | None, is_task: bool) -> str:
    """The item's warning colour as of `as_of` (duban.rules.warnings), as a word; "" if none."""
    from duban.calendar import CalendarError
    from duban.rules.warnings import plan_task_colour, plan_task_deadline

    if item.status is PlanItemStatus.done:
        return ""
    if config is None:
        return COLOUR_WORDS["red"] if as_of > plan_task_deadline(item.due_month) else ""
    warnings = config.escalation.warnings
    try:
        colour = plan_task_colour(
            today=as_of,
            start_month=item.start_month,
            due_month=item.due_month,
            progress=item.progress if is_task and item.progress is not None else 1.0,
            done=False,
            lag=warnings.plan_task_lag,
            blue_working_days=warnings.blue_working_days,
            calendar=config.calendar,
        )
    except CalendarError:  # a year the calendar does not know: say only what is overdue
        return COLOUR_WORDS["red"] if as_of > plan_task_deadline(item.due_month) else ""
    return COLOUR_WORDS.get(str(colour), "")


def _readme_lines(ledger: Ledger, as_of: date, warnings: dict[str, int]) -> list[list[Any]]:
    done_tasks = sum(t.status is PlanItemStatus.done for t in ledger.tasks)
    done_policies = sum(p.status is PlanItemStatus.done for p in ledger.policies)
    problems = "；".join(f"{code} {name}" for code, name in ledger.problems)
    late = warnings.get("超期", 0)
    t_words = "/".join(TASK_WORDS.values())
    p_words = "/".join(POLICY_WORDS.values())
    return [
        [f"每月一题 台账 — {ledger.unit_name}"],
        [],
        [UNIT_LABEL, ledger.unit_code],
        ["单位名称", ledger.unit_name],
        ["截至日期", as_of.isoformat()],
        ["牵头问题", problems],
        ["任务", f"{len(ledger.tasks)} 项，已完成 {done_tasks} 项"],
        ["政策", f"{len(ledger.policies)} 项，已出台 {done_policies} 项"],
        ["超期未完成", f"{late} 项（见“预警”列）"],
        [],
        ["填写说明"],
        ["1", "只填写黄色表头的列：状态、进度（仅任务）、完成日期 / 出台日期、佐证材料。"],
        ["2", "灰色表头的列（问题编号、编号、名称、责任单位、完成时限）用于核对，请勿修改。"],
        ["3", f"状态从下拉列表中选择：任务 {t_words}；政策 {p_words}。"],
        ["4", "进度填写 0%–100%，如 45%；已完成的任务进度为 100%（不填按 100% 记）。"],
        ["5", "已完成 / 已出台的须填写完成日期 / 出台日期（如 2026-05-20），且不晚于报送当天；"],
        ["", "状态不是已完成 / 已出台的，请勿填写日期。"],
        ["6", "佐证材料填写文件名称、文号或链接，如“京建发〔2026〕12号”。"],
        ["7", "“预警”列仅供参考：超期 = 已过完成时限，滞后 = 进度落后于时间，临期 = 即将到期。"],
        [
            "8",
            "请勿改动表头、工作表名称和本页的单位编码；不需要更新的行可以不动，删去的行视为未更新。",
        ],
        ["9", "填好后随邮件发回。系统对整份文件校验：发现任何错误则整份退回、不作任何更新，"],
        [
            "",
            "错误信息写明工作表、行号和列名；改正后重新发送即可。重复发送同一份文件不会重复记录。",
        ],
    ]


def _write_readme(book: Any, ledger: Ledger, as_of: date, warnings: dict[str, int]) -> None:
    from openpyxl.styles import Alignment, Font

    ws = book.create_sheet(README_SHEET)
    wb.write_readme(ws, _readme_lines(ledger, as_of, warnings), heading_row=11)
    for row in ws.iter_rows(min_row=3, max_row=9, max_col=1):
        row[0].font = Font(bold=True)
    for row in ws.iter_rows(min_row=1, max_col=2):
        for cell in row:
            cell.alignment = Alignment(vertical="top", wrap_text=cell.column == 2)


def _item_values(kind: _Kind, item: LedgerItem, warning: str) -> list[Any]:
    values: list[Any] = [
        item.problem,
        item.code,
        item.title,
        item.owner_name,
        f"{item.due_month:%Y-%m}",
        kind.words[item.status],
    ]
    if kind.model is PlanTask:
        values.append(round(item.progress or 0.0, wb.PROGRESS_DECIMALS))
    values += [item.done_on, item.evidence or None, warning or None]
    return values


def _write_items(
    book: Any, kind: _Kind, items: Iterable[LedgerItem], as_of: date, config: CityConfig | None
) -> dict[str, int]:
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    spec = kind.spec
    sheet = wb.ListSheet(book, spec.zh, [*spec.columns, Column("warning", WARNING_HEADER)], LAYOUT)
    counts: dict[str, int] = {}
    for item in items:
        warning = _warning(item, as_of, config, kind.model is PlanTask)
        if warning:
            counts[warning] = counts.get(warning, 0) + 1
        sheet.append(_item_values(kind, item, warning))
    sheet.style()
    for cell in sheet.cells("warning"):
        if cell.value == COLOUR_WORDS["red"]:
            cell.font = Font(color="C00000", bold=True)

    words = ",".join(kind.words.values())
    sheet.validate(
        "status",
        DataValidation(
            type="list",
            formula1=f'"{words}"',
            allow_blank=False,
            showErrorMessage=True,
            errorTitle="状态",
            error=f"请从下拉列表中选择：{words}",
        ),
    )
    if kind.model is PlanTask:
        sheet.validate(
            "progress",
            DataValidation(
                type="decimal",
                operator="between",
                formula1="0",
                formula2="1",
                allow_blank=True,
                showErrorMessage=True,
                errorTitle="进度",
                error="请填写 0%–100% 之间的百分比，如 45%",
            ),
        )
    sheet.validate(
        kind.date_field,
        DataValidation(
            type="date",
            operator="greaterThan",
            formula1="36526",  # 2000-01-01
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=kind.spec.columns[[c.field for c in spec.columns].index(kind.date_field)].zh,
            error="请填写日期，如 2026-05-20",
        ),
    )
    sheet.finish("C2", fit_width=True)
    return counts


def render_ledger_workbook(
    ledger: Ledger, as_of: date, path: Path, config: CityConfig | None = None
) -> Path:
    """Write `ledger` as an .xlsx to `path`: 填写说明, 任务清单, 政策清单. A pure function of
    its arguments (no clock): the same ledger and day give the same bytes. With `config`,
    the 预警 column shows the daily report's colours (config/escalation.yaml); without it,
    only what is overdue."""
    from openpyxl import Workbook

    book = Workbook()
    default = book.active
    tasks_kind, policies_kind = KINDS
    warnings: dict[str, int] = {}
    # The read-me goes first but counts the warnings: write the lists, then move it.
    for kind, items in ((tasks_kind, ledger.tasks), (policies_kind, ledger.policies)):
        for word, n in _write_items(book, kind, items, as_of, config).items():
            warnings[word] = warnings.get(word, 0) + n
    _write_readme(book, ledger, as_of, warnings)
    if default is not None:
        book.remove(default)
    book.move_sheet(README_SHEET, offset=-len(KINDS))
    book.active = 0
    path = Path(path)
    wb.save_deterministic(book, path, datetime(as_of.year, as_of.month, as_of.day))
    return path


def write_ledger_workbook(
    engine: Engine, config: CityConfig, unit_code: str, as_of: date, path: Path
) -> Path:
    """Write the ledger workbook of lead unit `unit_code` as of `as_of` to `path`; return
    `path`. LedgerError when the unit is unknown or leads no problem."""
    with session_scope(engine) as session:
        ledger = load_ledger(session, unit_code)
    return render_ledger_workbook(ledger, as_of, Path(path), config)


# ---------------------------------------------------------------- reading back


@dataclass
class LedgerSheetCounts:
    present: bool = False
    read: int = 0  # non-empty data rows
    changed: int = 0
    unchanged: int = 0

    def text(self, name: str) -> str:
        if not self.present:
            return f"{name}: no sheet"
        return f"{name} {self.read} read ({self.changed} changed, {self.unchanged} unchanged)"


@dataclass
class LedgerImportSummary:
    file: str
    unit: str
    run_id: int | None = None
    tasks: LedgerSheetCounts = field(default_factory=LedgerSheetCounts)
    policies: LedgerSheetCounts = field(default_factory=LedgerSheetCounts)
    audited: int = 0  # AuditRecords written: one per changed field

    @property
    def read(self) -> int:
        return self.tasks.read + self.policies.read

    @property
    def changed(self) -> int:
        return self.tasks.changed + self.policies.changed

    @property
    def unchanged(self) -> int:
        return self.tasks.unchanged + self.policies.unchanged

    def line(self) -> str:
        return (
            f"{Path(self.file).name} ({self.unit}): {self.tasks.text('tasks')}; "
            f"{self.policies.text('policies')}; {self.audited} field changes audited"
        )


@dataclass
class _Workbook:
    sheets: dict[str, wb.Sheet]  # spec key -> rows
    unit_code: str | None  # from the read-me, when it is there


def _reject(path: Path, findings: list[wb.Finding], reports_dir: Path | None) -> LedgerError:
    return wb.reject(
        LedgerError, path, findings, reports_dir,
        kind="ledger", verdict="ledger workbook rejected, nothing was changed",
    )  # fmt: skip


def _read_ledger(path: Path, findings: list[wb.Finding]) -> _Workbook | None:
    """The ledger sheets as raw rows; faults of the whole file become findings (and None)."""
    name = path.name
    try:
        book = wb.open_workbook(path)
    except wb.WorkbookFileError as exc:
        findings.append(wb.Finding(name, reason=exc.reason))
        return None
    try:
        titles = list(book.sheetnames)
        sheets: dict[str, wb.Sheet] = {}
        for spec in LEDGER_SHEETS:
            matches = spec.titles_in(titles)
            if len(matches) > 1:
                shown = " and ".join(repr(t) for t in matches)
                findings.append(wb.Finding(name, reason=f"sheets {shown} are both {spec.label}"))
                continue
            if not matches:
                continue
            ws = book[matches[0]]
            ws.reset_dimensions()
            header = [wb.cell_text(v) for v in next(ws.iter_rows(max_row=1, values_only=True), ())]
            keys = {wb.header_key(h) for h in header if h}
            missing = [
                c
                for c in spec.columns
                if wb.header_key(c.zh) not in keys and wb.header_key(c.field) not in keys
            ]
            for c in missing:
                findings.append(
                    wb.Finding(
                        name,
                        ws.title,
                        1,
                        c.field,
                        c.label,
                        reason=f"missing column {c.label} (the header row must keep every "
                        "column of the ledger; export a fresh one)",
                    )
                )
            if missing:
                continue
            try:
                sheets[spec.key] = wb.read_sheet(spec, ws, path)
            except wb.SheetError as exc:  # e.g. two columns for one field
                findings.append(wb.Finding(name, ws.title, 1, reason=exc.reason))
        if not sheets and not findings:
            expected = ", ".join(s.label for s in LEDGER_SHEETS)
            shown = ", ".join(repr(t) for t in titles) or "none"
            findings.append(
                wb.Finding(name, reason=f"no ledger sheet ({expected}); its sheets are: {shown}")
            )
        readme = wb.titles_named(titles, README_NAMES)
        codes = wb.labelled_values(book[readme[0]], (UNIT_LABEL, "unit")) if readme else []
        unit_code = codes[0] if codes else None
        return _Workbook(sheets, unit_code)
    finally:
        book.close()


@dataclass
class _Change:
    kind: _Kind
    obj: PlanTask | Policy
    sheet: str
    row: int
    values: dict[str, Any]  # field -> new value, only the fields that change


class _LedgerCheck:
    """Checks every row of a returned ledger against the database, collecting findings."""

    def __init__(
        self, session: Session, config: CityConfig, path: Path, today: date, unit: Unit
    ) -> None:
        self.session = session
        self.path = path
        self.today = today
        self.unit = unit
        self.refs = load_refs(session, config)
        self.findings: list[wb.Finding] = []
        self.changes: list[_Change] = []
        self.units = {u.id: u for u in session.scalars(select(Unit))}
        self.leads = {u.id: u.code for u in self.units.values()}
        # Every name a unit may be written as: code, name, config name and aliases.
        self.names: dict[int, set[str]] = {u.id: {u.code, u.name} for u in self.units.values()}
        by_code = {u.code: u.id for u in self.units.values()}
        for uc in config.units.units:
            if uc.code in by_code:
                self.names[by_code[uc.code]].update((uc.name, *uc.aliases))

    def sheet(self, kind: _Kind, sheet: wb.Sheet, counts: LedgerSheetCounts) -> None:
        model = kind.model
        led = [p.id for p in self.refs.problems.values() if p.lead_unit_id == self.unit.id]
        rows: list[PlanTask | Policy] = list(
            self.session.scalars(select(model).where(model.problem_id.in_(led)))
        )
        items = {(o.problem_id, o.code): o for o in rows}
        first_row: dict[tuple[str, str], int] = {}
        counts.present = True
        counts.read = len(sheet.rows)
        for row in sheet.rows:
            c = wb.RowCheck(sheet, row)
            obj = self._item(kind, sheet, c, items, first_row)
            values = self._values(kind, c)
            if obj is not None:
                self._identifying(kind, c, obj)
            if obj is not None and not c.errors:
                changed = {k: v for k, v in values.items() if not wb.same_value(getattr(obj, k), v)}
                if changed:
                    self._consistent(kind, c, values)
                if not c.errors:
                    if changed:
                        self.changes.append(_Change(kind, obj, sheet.title, row.number, changed))
                        counts.changed += 1
                    else:
                        counts.unchanged += 1
            self.findings += wb.row_findings(self.path.name, c)

    def _item(
        self,
        kind: _Kind,
        sheet: wb.Sheet,
        c: wb.RowCheck,
        items: dict[tuple[int, str], PlanTask | Policy],
        first_row: dict[tuple[str, str], int],
    ) -> PlanTask | Policy | None:
        problem_code, code = c.text_of("problem"), c.text_of("code")
        if not problem_code:
            c.add("problem", "missing: the problem code identifies the item; do not clear it")
        if not code:
            c.add("code", "missing: the item code identifies the item; do not clear it")
        if not problem_code or not code:
            return None
        key = (problem_code, code)
        if key in first_row:
            c.add(
                "code",
                f"duplicate of row {first_row[key]} (problem {problem_code}, code {code}); "
                "keep one row per item",
            )
            return None
        first_row[key] = c.row.number
        problem = self.refs.problems.get(problem_code)
        if problem is None:
            c.add("problem", f"unknown problem {problem_code!r}")
            return None
        if problem.lead_unit_id != self.unit.id:
            lead = self.leads.get(problem.lead_unit_id, "?")
            c.add(
                "problem",
                f"problem {problem_code} is led by {lead}, not by {self.unit.code}: this "
                f"ledger holds only the items of the problems {self.unit.code} leads",
            )
            return None
        obj = items.get((problem.id, code))
        if obj is None:
            what = "task" if kind.model is PlanTask else "policy"
            c.add(
                "code",
                f"unknown item code {code!r}: problem {problem_code} has no {what} {code} "
                "(the ledger cannot add items: new items come with `duban import plan`)",
            )
        return obj

    def _values(self, kind: _Kind, c: wb.RowCheck) -> dict[str, Any]:
        """The fill-in columns as model values; findings for what does not parse."""
        values: dict[str, Any] = {}
        status: PlanItemStatus | None = None
        if not c.text_of("status"):
            c.add("status", f"missing (choose {'/'.join(kind.words.values())})")
        else:
            status = c.word("status", kind.statuses)
            if status is None:
                c.add(
                    "status",
                    f"unknown status {c.text_of('status')!r} "
                    f"(choose {'/'.join(kind.words.values())} from the drop-down)",
                )
            else:
                values["status"] = status
        if kind.model is PlanTask:
            progress = c.progress()  # findings: not a number, outside 0..100 %
            if progress is not None:
                values["progress"] = progress
            elif not c.text_of("progress"):
                values["progress"] = 1.0 if status is PlanItemStatus.done else 0.0
        day = c.date(kind.date_field)
        if day is not None or not c.text_of(kind.date_field):
            values[kind.date_field] = day
        values["evidence"] = c.text_of("evidence") or None
        return values

    def _identifying(self, kind: _Kind, c: wb.RowCheck, obj: PlanTask | Policy) -> None:
        def edited(name: str, stored: str) -> None:
            c.add(
                name,
                f"edited: the ledger has {stored!r}; the identifying columns must stay as "
                "exported (undo the change, or export a fresh ledger)",
            )

        if c.text_of("title") != obj.title.strip():
            edited("title", obj.title)
        owner = self.units[obj.owner_unit_id]
        if c.text_of("owner") not in self.names.get(owner.id, {owner.code}):
            edited("owner", owner.name)
        if wb.month_of(c.raw("due_month")) != obj.due_month:
            edited("due_month", f"{obj.due_month:%Y-%m}")

    def _consistent(self, kind: _Kind, c: wb.RowCheck, values: dict[str, Any]) -> None:
        """Rules for a row the unit changed (a row left as exported is accepted as stored)."""
        status = values.get("status")
        day = values.get(kind.date_field)
        column = c.sheet.headers.get(kind.date_field, kind.date_field)
        done_word = kind.words[PlanItemStatus.done]
        if status is PlanItemStatus.done and day is None:
            c.add(kind.date_field, f"{done_word} needs a date in {column}")
        if status is not None and status is not PlanItemStatus.done and day is not None:
            c.add(
                kind.date_field,
                f"a date with status {kind.words[status]}: clear {column} or set {done_word}",
            )
        if day is not None and day > self.today:
            c.add(kind.date_field, f"{day.isoformat()} is in the future (today is {self.today})")
        if kind.model is PlanTask and "progress" in values and status is not None:
            progress = values["progress"]
            if status is PlanItemStatus.done and progress < 1 - PROGRESS_TOLERANCE:
                c.add("progress", f"{progress:.0%} with status {done_word}: a done task is 100%")
            if status is PlanItemStatus.planned and progress > PROGRESS_TOLERANCE:
                c.add(
                    "progress",
                    f"{progress:.0%} with status {kind.words[status]}: "
                    f"choose {kind.words[PlanItemStatus.in_progress]}",
                )


def _resolve_unit(
    session: Session, path: Path, book: _Workbook, findings: list[wb.Finding]
) -> Unit | None:
    """The unit the ledger is for: the read-me's 单位编码, else the lead unit of its items."""
    name = path.name
    if book.unit_code:
        unit = session.scalars(select(Unit).where(Unit.code == book.unit_code)).one_or_none()
        if unit is None:
            findings.append(
                wb.Finding(
                    name,
                    README_SHEET,
                    field="unit",
                    column=UNIT_LABEL,
                    value=book.unit_code,
                    reason=f"unknown unit {book.unit_code!r} in {UNIT_LABEL}",
                )
            )
        return unit
    codes = {wb.cell_text(r.cells.get("problem")) for s in book.sheets.values() for r in s.rows} - {
        ""
    }
    leads = set(
        session.scalars(select(Problem.lead_unit_id).where(Problem.code.in_(sorted(codes))))
    )
    if len(leads) == 1:
        return session.get(Unit, leads.pop())
    findings.append(
        wb.Finding(
            name,
            reason=f"cannot tell which unit this ledger is for: the {README_SHEET} sheet with "
            f"its {UNIT_LABEL} is missing and the items are not of one lead unit's problems",
        )
    )
    return None


def import_ledger(
    engine: Engine,
    config: CityConfig,
    path: Path,
    reports_dir: Path,
    actor: str = "ledger-import",
    *,
    today: date | None = None,
) -> LedgerImportSummary:
    """Import a returned ledger workbook: all of it in one transaction, or nothing.

    Any finding (see docs/ledger-workbook.md) raises LedgerError listing them all (the full
    list also goes to `reports_dir/rejected/…csv`), and the database is left as it was.
    Otherwise each changed field of each item is updated and audited (origin: file, sheet,
    row). `today` (default: the system's date) bounds completion and issue dates."""
    path = Path(path)
    today = today or date.today()
    findings: list[wb.Finding] = []
    book = _read_ledger(path, findings)
    if book is None or findings:
        raise _reject(path, findings, reports_dir)
    with session_scope(engine) as session:
        unit = _resolve_unit(session, path, book, findings)
        if unit is None:
            raise _reject(path, findings, reports_dir)
        summary = LedgerImportSummary(file=str(path), unit=unit.code)
        check = _LedgerCheck(session, config, path, today, unit)
        for kind in KINDS:
            sheet = book.sheets.get(kind.spec.key)
            if sheet is not None:
                check.sheet(kind, sheet, getattr(summary, kind.spec.key))
        if check.findings:
            raise _reject(path, check.findings, reports_dir)  # rolls back: nothing was written
        audit = plan_audit(session, check.refs, actor, path.name)
        for change in check.changes:
            audit.origin = f"{path.name}, sheet {change.sheet}, row {change.row}"[-500:]
            for name, new in change.values.items():
                audit.change(
                    change.kind.entity, change.obj.id, name, getattr(change.obj, name), new
                )
                setattr(change.obj, name, new)
                summary.audited += 1
        run = ImportRun(
            kind="ledger",
            source=unit.code[:32],
            file_name=str(path)[-500:],
            started_at=audit.at,
            finished_at=datetime.now(),
            read=summary.read,
            inserted=0,
            updated=summary.changed,
            unchanged=summary.unchanged,
            quarantined=0,
        )
        session.add(run)
        session.flush()
        summary.run_id = run.id
    return summary
