"""The decisions workbook (延期/申诉审批表, docs/clock.md): the units' pending requests —
extensions and appeals — written for the office, each row marked 批准/不批准 (approve /
refuse), read back all-or-nothing: one malformed row (sheet, row and column named) or one
decision the clock's rules refuse, and nothing is recorded. Every recorded decision gets an
audit record. Reading the same workbook again records nothing twice (the events' keys are
those of `duban decide`: one per request)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import ValidationError
from sqlalchemy import Engine

from duban.clock import NewEvent, RecordResult, Refused, pending_requests, record_events
from duban.clock.decide import Action, Decision
from duban.clock.store import ticket_ids
from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import AuditRecord
from duban.workbooks.cells import cell_text
from duban.workbooks.save import save_deterministic
from duban.workbooks.sheets import open_workbook

SHEET = "待决申请"
HEADER = (
    "工单 Ticket",
    "申请类型 Kind",
    "申请编号 Request",
    "申请时间 Filed",
    "承办单位 Unit",
    "申请理由 Reason given",
    "现办理时限 Current deadline",
    "决定 Decision",
    "延期工作日 Working days",
    "新办理时限 New deadline",
    "决定理由 Reason",
)
KIND_LABEL = {"extension_requested": "延期", "appeal_filed": "申诉"}
APPROVE, REFUSE = "批准", "不批准"
ACTIONS: dict[tuple[str, str], Action] = {
    ("extension_requested", APPROVE): "approve_extension",
    ("extension_requested", REFUSE): "refuse_extension",
    ("appeal_filed", APPROVE): "uphold_appeal",
    ("appeal_filed", REFUSE): "reject_appeal",
}
ORIGIN = "workbook"


def decisions_file_name(as_of: datetime) -> str:
    return f"decisions-{as_of:%Y%m%d}.xlsx"


def write_decisions_workbook(
    engine: Engine, config: CityConfig, out: Path, *, as_of: datetime | None = None
) -> tuple[Path, int]:
    """Write the pending requests as of `as_of` (default now); `out` a file or a folder.
    Returns the file and the number of requests."""
    as_of = as_of or datetime.now()
    if out.suffix.lower() != ".xlsx":
        out = out / decisions_file_name(as_of)
    pending = pending_requests(engine, as_of=as_of, config=config)
    book = Workbook()
    ws = book.active
    ws.title = SHEET
    ws.append(list(HEADER))
    for p in pending:
        ws.append(
            [
                p.item_ref,
                KIND_LABEL[p.kind],
                p.key,
                p.at,
                p.unit,
                p.reason,
                p.due_at,
                None,
                None,
                None,
                None,
            ]
        )
    choice = DataValidation(type="list", formula1=f'"{APPROVE},{REFUSE}"', allow_blank=True)
    ws.add_data_validation(choice)
    choice.add(f"H2:H{max(len(pending) + 1, 2)}")
    for column, width in zip(
        "ABCDEFGHIJK", (18, 8, 24, 18, 16, 30, 18, 10, 10, 18, 30), strict=True
    ):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A2"
    save_deterministic(book, out, as_of)
    return out, len(pending)


def _kind_of(label: str) -> str | None:
    return next((k for k, v in KIND_LABEL.items() if v == label), None)


def _when(value: Any) -> datetime | str | None:
    """A cell as a datetime; None when empty; the problem as text otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(cell_text(value))
    except ValueError:
        return f"不是日期时间 (not a date and time: {cell_text(value)!r})"


WIDTHS = (18, 8, 24, 18, 16, 30, 18, 10, 10, 18, 30)


def read_decisions(
    path: Path, *, actor: str, now: datetime
) -> tuple[list[NewEvent], list[Refused]]:
    """The decisions marked in the workbook, and the problems of its rows (sheet, row and
    column named). Rows without a decision are skipped."""
    book = open_workbook(path)
    problems: list[Refused] = []
    events: list[NewEvent] = []
    if SHEET not in book.sheetnames:
        return [], [Refused(str(path), "-", f"工作表 {SHEET!r} 不存在 (no sheet {SHEET!r})")]
    rows = book[SHEET].iter_rows(values_only=True)
    header = [cell_text(v) for v in next(rows, ())]
    if tuple(header[: len(HEADER)]) != HEADER:
        return [], [Refused(str(path), "-", f"{SHEET} 第1行: 表头不符 (row 1: not the header)")]
    for number, values in enumerate(rows, start=2):
        cells = dict(zip(HEADER, (*values, *([None] * len(HEADER))), strict=False))
        if not cell_text(cells["决定 Decision"]):
            continue
        found = _row_event(cells, f"{path.name} {SHEET}!{number}", actor, now)
        if isinstance(found, NewEvent):
            events.append(found)
        else:
            problems.extend(found)
    return events, problems


def _row_event(
    cells: dict[str, Any], where: str, actor: str, now: datetime
) -> NewEvent | list[Refused]:
    """One marked row as its decision's event, or its problems (column named)."""
    ticket = cell_text(cells["工单 Ticket"])
    problems: list[Refused] = []

    def bad(column: str, why: str) -> None:
        problems.append(Refused(ticket or "-", column, why, f"{where} {column}"))

    decision = cell_text(cells["决定 Decision"])
    kind = _kind_of(cell_text(cells["申请类型 Kind"]))
    request = cell_text(cells["申请编号 Request"])
    if not ticket:
        bad("工单 Ticket", "为空 (empty)")
    if kind is None:
        bad("申请类型 Kind", f"须为 延期 或 申诉 (got {cell_text(cells['申请类型 Kind'])!r})")
    if not request:
        bad("申请编号 Request", "为空 (empty)")
    if decision not in (APPROVE, REFUSE):
        bad("决定 Decision", f"须为 {APPROVE} 或 {REFUSE} (got {decision!r})")
    days_cell = cells["延期工作日 Working days"]
    days: int | None = None
    if days_cell not in (None, ""):
        try:
            days = int(cell_text(days_cell))
        except ValueError:
            bad("延期工作日 Working days", f"须为整数 (not a whole number: {days_cell!r})")
    new_due = _when(cells["新办理时限 New deadline"])
    if isinstance(new_due, str):
        bad("新办理时限 New deadline", new_due)
        new_due = None
    approving = kind == "extension_requested" and decision == APPROVE
    if approving and days is None and new_due is None:
        bad("延期工作日 Working days", "批准延期须填工作日或新时限 (days or a new deadline)")
    if problems or kind is None:
        return problems
    try:
        event = Decision(
            ticket=ticket,
            action=ACTIONS[(kind, decision)],
            at=now,
            request=request,
            working_days=days,
            new_due=new_due,
            reason=cell_text(cells["决定理由 Reason"]),
            actor=actor,
        ).to_event(origin=ORIGIN)
    except ValidationError as exc:
        bad("-", str(exc.errors()[0]["msg"]))
        return problems
    return replace(event, origin_ref=where)  # the row it came from


def import_decisions_workbook(
    engine: Engine,
    config: CityConfig,
    path: Path,
    *,
    actor: str = "督办办公室",
    now: datetime | None = None,
) -> RecordResult:
    """Read the marked workbook back: all its decisions are recorded, or none (the result's
    `refused` says why, row by row). Each recorded decision is audited."""
    now = now or datetime.now()
    events, problems = read_decisions(Path(path), actor=actor, now=now)
    if problems:
        return RecordResult(refused=problems)
    result = record_events(engine, events, as_of=now, all_or_nothing=True, config=config)
    if result.recorded:
        ids = ticket_ids(engine, (e.item_ref for e in result.recorded))
        with session_scope(engine) as session:
            for event in result.recorded:
                record = AuditRecord(
                    entity="ticket",
                    entity_id=ids[event.item_ref],
                    field="clock_event",
                    old=None,
                    new=f"{event.item_ref} {event.key} {event.kind}",
                )
                record.at, record.actor, record.origin = now, actor, event.origin_ref
                session.add(record)
    return result
