"""The spot-check checklist (抽查核验清单): the quarter's sample out to the inspectors and
their verdicts back.

Out: `render_checklist_workbook` — a pure function of the sample (load_sample's frame) and
the quarter: 填写说明 (the quarter, the draw's fingerprint, the rule) and 抽查清单, one row per
sampled item, by unit, with what identifies it (kind, ticket number or plan task code, unit,
closing or completion date, category, the citizen's text or the task's title with phone and
ID numbers masked) and three columns to fill: 核验结果 (通过/不通过), 核验说明, 核验日期. The
supervision office receives it attached to the quarter report.

Back: `import_checks` reads the whole workbook and either records all of it in ONE
transaction or nothing: any finding rejects the file with a ChecklistError naming file,
sheet, row and column (and a CSV of every finding under reports/rejected/). Each verdict is
audited; a failed item is reopened and its unit escalated
(duban.loops.quarterly.sample.fail_item) when the verdict is first recorded — so importing the
same workbook twice changes nothing the second time. A verdict once recorded is final: a
different one is a finding.

Header matching, cell parsing, the finding format, the list sheet's layout, the audit and the
saving are those of every workbook (duban/workbooks/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from duban import workbooks as wb
from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import ImportRun, SpotCheckSample
from duban.loops.quarterly.sample import (
    ACTOR,
    KIND_NAMES,
    RESULT_WORDS,
    fail_item,
)
from duban.periods import QuarterPeriod, parse_quarter
from duban.rules.masking import mask_personal_data
from duban.workbooks import Column, SheetSpec

__all__ = (
    "CHECKLIST",
    "VERDICTS",
    "ChecklistError",
    "ChecksImportSummary",
    "checklist_file_name",
    "import_checks",
    "render_checklist_workbook",
)

CHECKLIST = SheetSpec(
    "checklist",
    "抽查清单",
    (
        Column("sample", "抽查编号"),
        Column("kind", "类型"),
        Column("ref", "编号"),
        Column("unit", "承办单位"),
        Column("done_on", "办结/完成日期"),
        Column("category", "类别/问题"),
        Column("text", "内容摘要"),
        Column("result", "核验结果"),
        Column("note", "核验说明"),
        Column("checked_on", "核验日期"),
    ),
)
README_SHEET = "填写说明"
QUARTER_LABEL = "抽查季度"
FILL_IN = ("result", "note", "checked_on")
NOTE_MAX_LENGTH = 2000
# The words the import takes for a verdict (compared without case and spaces).
VERDICTS: dict[str, bool] = {
    "通过": True, "合格": True, "pass": True, "passed": True, "ok": True,
    "不通过": False, "不合格": False, "fail": False, "failed": False,
}  # fmt: skip
WORDS = "/".join(RESULT_WORDS[v] for v in (True, False))
LAYOUT = wb.ListLayout(
    fill_in=FILL_IN,
    wrap=("text", "note"),
    formats={"done_on": "yyyy-mm-dd", "checked_on": "yyyy-mm-dd"},
    limits={"text": 48, "note": 36},
)


class ChecklistError(wb.WorkbookError):
    """A checklist that cannot be written, or a returned one rejected whole (`findings`)."""


def checklist_file_name(quarter: str) -> str:
    """e.g. `抽查核验清单-2026-Q3.xlsx` (sent RFC 2231-encoded: duban/notices/mailer.py)."""
    return wb.file_name("抽查核验清单", quarter, suffix=".xlsx")


# ---------------------------------------------------------------- writing


def _readme(
    period: QuarterPeriod, fingerprint: str, rule: str, items: pd.DataFrame
) -> list[list[Any]]:
    units = items["unit_code"].nunique() if len(items) else 0
    return [
        [f"季度抽查核验清单 — {period.title}"],
        [],
        [QUARTER_LABEL, period.label],
        ["办结/完成时间", f"{period.start:%Y-%m-%d} 至 {period.last_day:%Y-%m-%d}"],
        ["抽样规则", rule],
        ["抽样指纹", fingerprint],
        ["抽查事项", f"{len(items)} 项，涉及 {units} 个单位"],
        [],
        ["填写说明"],
        ["1", f"逐项现场核验后，只填写黄色表头的列：核验结果（{WORDS}）、核验说明、核验日期。"],
        ["2", "灰色表头的列用于识别事项，请勿修改；抽查编号是系统记录的编号。"],
        ["3", "核验结果为“不通过”的，须在核验说明中写明原因；该事项将重新开启并对承办单位督办。"],
        ["4", "核验日期填写实际核验的日期，如 2026-10-15，不得晚于报送当天。"],
        ["5", "尚未核验的事项留空即可，可分批报送；已记录的核验结果不能更改。"],
        ["6", "系统对整份文件校验：发现任何错误则整份退回、不作任何记录，"],
        ["", "错误信息写明工作表、行号和列名；改正后重新发送即可。"],
        ["", "重复发送同一份文件不会重复记录。"],
    ]  # fmt: skip


def _row_values(row: Any) -> list[Any]:
    passed = row.passed
    checked = row.checked_at
    return [
        None if row.sample_id is None or pd.isna(row.sample_id) else int(row.sample_id),
        KIND_NAMES.get(str(row.item_kind), str(row.item_kind)),
        row.ref,
        row.unit_name,
        row.done_on,
        row.category or None,
        mask_personal_data(row.text) or None,
        None if passed is None else RESULT_WORDS[bool(passed)],
        row.note or None,
        checked.date() if isinstance(checked, datetime) else checked,
    ]


def render_checklist_workbook(
    items: pd.DataFrame, period: QuarterPeriod, fingerprint: str, rule: str, path: Path
) -> Path:
    """Write the checklist of the sample `items` (duban.loops.quarterly.sample.load_sample) to
    `path`. A pure function of its arguments: the same sample gives the same bytes."""
    from openpyxl import Workbook
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    readme = book.active
    assert readme is not None
    readme.title = README_SHEET
    wb.write_readme(readme, _readme(period, fingerprint, rule, items), heading_row=9)

    sheet = wb.ListSheet(book, CHECKLIST.zh, CHECKLIST.columns, LAYOUT)
    for row in items.itertuples(index=False):
        sheet.append(_row_values(row))
    sheet.style()
    sheet.validate(
        "result",
        DataValidation(
            type="list", formula1=f'"{WORDS.replace("/", ",")}"', allow_blank=True,
            showErrorMessage=True, errorTitle="核验结果", error=f"请从下拉列表中选择：{WORDS}",
        ),
    )  # fmt: skip
    sheet.validate(
        "checked_on",
        DataValidation(
            type="date", operator="greaterThan", formula1="36526", allow_blank=True,
            showErrorMessage=True, errorTitle="核验日期", error="请填写日期，如 2026-10-15",
        ),
    )  # fmt: skip
    sheet.finish("D2", fit_width=False)
    book.active = 1
    path = Path(path)
    stamp = datetime.combine(period.last_day, time())
    wb.save_deterministic(book, path, stamp)
    return path


# ---------------------------------------------------------------- reading back


@dataclass
class ChecksImportSummary:
    file: str
    quarter: str = ""
    run_id: int | None = None
    read: int = 0  # non-empty rows
    recorded: int = 0  # verdicts recorded now
    passed: int = 0  # of those
    failed: int = 0  # of those
    updated: int = 0  # rows whose note or date changed (same verdict)
    unchanged: int = 0  # rows as recorded before
    pending: int = 0  # rows left without a verdict
    reopened: int = 0
    escalated: int = 0
    redone: int = 0  # reopened tickets whose redo event was recorded (a fresh deadline)
    redo_refused: list[str] = field(default_factory=list)  # the clock refused the redo
    audited: int = 0

    def line(self) -> str:
        return (
            f"{Path(self.file).name} ({self.quarter}): {self.read} rows read; "
            f"{self.recorded} verdicts recorded ({self.passed} passed, {self.failed} failed), "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.pending} not checked "
            f"yet; {self.reopened} items reopened ({self.redone} with a fresh deadline), "
            f"{self.escalated} escalated; {self.audited} changes audited"
            + "".join(f"; {line}" for line in self.redo_refused)
        )


@dataclass
class _Verdict:
    sample: SpotCheckSample
    sheet: str
    row: int
    passed: bool
    note: str | None
    checked_at: datetime


def _read(path: Path, findings: list[wb.Finding]) -> tuple[wb.Sheet | None, str | None]:
    """The checklist sheet's rows and the read-me's quarter; whole-file faults as findings."""
    name = path.name
    try:
        book = wb.open_workbook(path)
    except wb.WorkbookFileError as exc:
        findings.append(wb.Finding(name, reason=exc.reason))
        return None, None
    try:
        titles = list(book.sheetnames)
        matches = CHECKLIST.titles_in(titles)
        readme = wb.titles_named(titles, (README_SHEET, "readme"))
        quarters = wb.labelled_values(book[readme[0]], (QUARTER_LABEL, "quarter")) if readme else []
        quarter = quarters[-1] if quarters else None
        if len(matches) != 1:
            shown = ", ".join(repr(t) for t in titles) or "none"
            reason = (
                f"no {CHECKLIST.label} sheet; its sheets are: {shown}"
                if not matches
                else f"sheets {' and '.join(repr(t) for t in matches)} are both {CHECKLIST.label}"
            )
            findings.append(wb.Finding(name, reason=reason))
            return None, quarter
        ws = book[matches[0]]
        try:
            sheet = wb.read_sheet(CHECKLIST, ws, path)
        except wb.SheetError as exc:  # missing columns, two columns for one field
            findings.append(wb.Finding(name, ws.title, 1, reason=exc.reason))
            return None, quarter
        return sheet, quarter
    finally:
        book.close()


class _Check:
    def __init__(self, path: Path, sheet: wb.Sheet, samples: dict[int, SpotCheckSample],
                 today: date) -> None:  # fmt: skip
        self.path = path
        self.sheet = sheet
        self.samples = samples
        self.today = today
        self.findings: list[wb.Finding] = []
        self.verdicts: list[_Verdict] = []

    def rows(self, quarter: str, refs: dict[int, str], summary: ChecksImportSummary) -> None:
        first: dict[int, int] = {}
        for row in self.sheet.rows:
            summary.read += 1
            c = wb.RowCheck(self.sheet, row)
            sample = self._sample(c, quarter, refs, first)
            verdict = self._verdict(c, sample)
            if sample is not None and not c.errors:
                if verdict is None:
                    if sample.passed is None:
                        summary.pending += 1
                    else:
                        summary.unchanged += 1  # a recorded verdict left blank: kept
                else:
                    self._compare(c, sample, verdict, summary)
            self.findings += wb.row_findings(self.path.name, c)

    def _sample(
        self, c: wb.RowCheck, quarter: str, refs: dict[int, str], first: dict[int, int]
    ) -> SpotCheckSample | None:
        text = c.text_of("sample")
        if not text:
            c.add("sample", "missing: the sample number identifies the item; do not clear it")
            return None
        try:
            sample_id = int(text)
        except ValueError:
            c.add("sample", f"not a sample number: {text!r}")
            return None
        if sample_id in first:
            c.add("sample", f"duplicate of row {first[sample_id]}: keep one row per item")
            return None
        first[sample_id] = c.row.number
        sample = self.samples.get(sample_id)
        if sample is None:
            c.add(
                "sample",
                f"unknown sample {sample_id}: not drawn for {quarter} "
                "(use the checklist the office received for this quarter)",
            )
            return None
        kind = KIND_NAMES.get(str(sample.item_kind.value), str(sample.item_kind))
        if c.text_of("kind") != kind:
            c.add("kind", f"edited: sample {sample_id} is a {kind}; do not change this column")
        if c.text_of("ref") != refs.get(sample_id, ""):
            c.add(
                "ref",
                f"edited: sample {sample_id} is {refs.get(sample_id, '?')!r}; "
                "do not change this column",
            )
        return sample

    def _verdict(self, c: wb.RowCheck, sample: SpotCheckSample | None) -> _Verdict | None:
        result = c.text_of("result")
        note = c.text_of("note") or None
        day = c.date("checked_on")  # a finding when it is not a date
        if not result:
            if note or c.text_of("checked_on"):
                c.add("result", f"missing: a note or date without a result (choose {WORDS})")
            return None
        passed = c.word("result", VERDICTS)
        if passed is None:
            c.add("result", f"unknown result {result!r} (choose {WORDS} from the drop-down)")
        if not c.text_of("checked_on"):
            c.add("checked_on", "missing: the day the item was checked, e.g. 2026-10-15")
        elif day is not None and day > self.today:
            c.add("checked_on", f"{day.isoformat()} is in the future (today is {self.today})")
        elif day is not None and sample is not None and day < sample.drawn_at.date():
            c.add(
                "checked_on",
                f"{day.isoformat()} is before the draw ({sample.drawn_at:%Y-%m-%d})",
            )
        if passed is False and not note:
            c.add("note", "missing: say why the item failed the check")
        if note and len(note) > NOTE_MAX_LENGTH:
            c.add("note", f"longer than {NOTE_MAX_LENGTH} characters")
        if passed is None or day is None or sample is None or c.errors:
            return None
        return _Verdict(
            sample, self.sheet.title, c.row.number, passed, note, datetime.combine(day, time())
        )

    def _compare(
        self, c: wb.RowCheck, sample: SpotCheckSample, v: _Verdict, summary: ChecksImportSummary
    ) -> None:
        if sample.passed is not None and bool(sample.passed) != v.passed:
            recorded = RESULT_WORDS[bool(sample.passed)]
            when = f"{sample.checked_at:%Y-%m-%d}" if sample.checked_at else "?"
            c.add(
                "result",
                f"sample {sample.id} was recorded as {recorded} on {when}: "
                "a recorded verdict is final",
            )
            return
        if (sample.passed, sample.note, sample.checked_at) == (v.passed, v.note, v.checked_at):
            summary.unchanged += 1
            return
        self.verdicts.append(v)


def _reject(path: Path, findings: list[wb.Finding], reports_dir: Path | None) -> ChecklistError:
    return wb.reject(
        ChecklistError, path, findings, reports_dir,
        kind="checks", verdict="checklist rejected, nothing was recorded",
    )  # fmt: skip


def import_checks(
    engine: Engine,
    config: CityConfig,
    path: Path,
    reports_dir: Path | None,
    actor: str = ACTOR,
    *,
    today: date | None = None,
) -> ChecksImportSummary:
    """Record the verdicts of a returned checklist: all of it in one transaction, or nothing.

    Any finding raises ChecklistError listing them all; the database is left as it was.
    Otherwise each new or changed verdict is recorded with an AuditRecord per field (origin:
    file, sheet, row), and each item that failed for the first time is reopened and its unit
    escalated (duban.loops.quarterly.sample.fail_item). `today` (default: the system's date)
    bounds the check dates."""
    from duban.loops.quarterly.sample import load_sample

    path = Path(path)
    today = today or date.today()
    findings: list[wb.Finding] = []
    sheet, quarter_text = _read(path, findings)
    if sheet is None or findings:
        raise _reject(path, findings, reports_dir)
    period: QuarterPeriod | None = None
    try:
        period = parse_quarter(quarter_text or "")
    except ValueError:
        findings.append(
            wb.Finding(
                path.name, README_SHEET, field="quarter", column=QUARTER_LABEL,
                value=quarter_text or "",
                reason=f"no quarter in {QUARTER_LABEL} (e.g. 2026-Q3): use the checklist the "
                "office received",
            )
        )  # fmt: skip
        raise _reject(path, findings, reports_dir) from None
    level = config.spot_check_failure_level
    summary = ChecksImportSummary(file=str(path), quarter=period.label)
    with session_scope(engine) as session:
        # Locked (PostgreSQL): a concurrent import of the same quarter waits, then sees ours.
        samples = {
            s.id: s
            for s in session.scalars(
                select(SpotCheckSample)
                .where(SpotCheckSample.quarter == period.label)
                .order_by(SpotCheckSample.id)
                .with_for_update()
            )
        }
        if not samples:
            findings.append(
                wb.Finding(path.name, README_SHEET, field="quarter", column=QUARTER_LABEL,
                        value=period.label, reason=f"no sample was drawn for {period.label}")
            )  # fmt: skip
            raise _reject(path, findings, reports_dir)
        frame = load_sample(session.connection(), period.label)
        refs = {int(r.sample_id): str(r.ref) for r in frame.itertuples(index=False)}
        check = _Check(path, sheet, samples, today)
        check.rows(period.label, refs, summary)
        if check.findings:
            raise _reject(path, check.findings, reports_dir)  # rolls back: nothing recorded
        at = datetime.now()
        run = ImportRun(
            kind="checks", source=period.label, file_name=str(path)[-500:], started_at=at,
            read=summary.read, quarantined=0,
        )  # fmt: skip
        session.add(run)
        session.flush()  # its id names the check import in the redo events (origin_ref)
        audit = wb.AuditTrail(session, actor, "", show=_audit_show, at=at)
        for v in check.verdicts:
            origin = f"{path.name}, sheet {v.sheet}, row {v.row}"
            audit.origin = origin[-500:]
            s = v.sample
            first_failure = s.passed is None and not v.passed
            for name, old, new in (
                ("passed", s.passed, v.passed),
                ("note", s.note, v.note),
                ("checked_at", s.checked_at, v.checked_at),
            ):
                if old != new:
                    audit.change("spot_check_sample", s.id, name, old, new)
                    summary.audited += 1
            if s.passed is None:
                summary.recorded += 1
                summary.passed += v.passed
                summary.failed += not v.passed
            else:
                summary.updated += 1
            s.passed, s.note, s.checked_at = v.passed, v.note, v.checked_at
            if first_failure:
                session.flush()
                done = fail_item(
                    session, s, level=level, today=today, at=at, config=config,
                    origin=f"checks {period.label} import run {run.id}: {origin}",
                )  # fmt: skip
                summary.reopened += "reopened" in done
                summary.escalated += "escalated" in done
                summary.redone += "redo" in done
                summary.redo_refused += [d for d in done if d.startswith("redo refused")]
        run.finished_at = datetime.now()
        run.inserted, run.updated = summary.recorded, summary.updated
        run.unchanged = summary.unchanged
        summary.run_id = run.id
    return summary


def _audit_show(_name: str, value: Any) -> str | None:
    """How the audit shows a verdict's field: the verdict as its word, the day of a time."""
    if isinstance(value, bool):
        return RESULT_WORDS[value]
    if isinstance(value, datetime):
        return value.date().isoformat()
    return wb.audit_text(value)
