"""The daily report: what each unit owes today, and the city digest for the office.

measure_daily() runs the SQL (duban.queries.daily) into a DailySnapshot of small frames;
unit_contexts()/office_context() turn it into template contexts holding only each unit's
own items, with citizen text masked; the flow renders and archives them (duban.notices.render).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from duban import workbooks as wb
from duban.config import CityConfig
from duban.notices.todo import todo
from duban.queries import daily as q
from duban.queries import notices as qn
from duban.rules.clock import LATE, OVER_CAP, refusal_class
from duban.rules.masking import citizen_text, mask_personal_data
from duban.rules.warnings import blue_cutoff

COLOUR_NAMES = {"red": "红色·超期", "yellow": "黄色·预警", "blue": "蓝色·临期", "green": "绿色"}
STATUS_NAMES = {"planned": "未开始", "in_progress": "推进中", "done": "已完成"}
LIST_LIMIT = 50
LEDGER_SHOWN = 20  # new ledger entries the office digest lists; all of them are attached
CLOCK_SHOWN = 200  # the day's decisions, pending requests and refusals the digest lists, each
REFUSAL_CLASSES = {"late": "逾期", "over_cap": "超过上限"}
# The clock's event kinds (docs/clock.md) as notices name them.
EVENT_NAMES = {
    "calendar_correction": "日历更正", "extension_requested": "申请延期",
    "extension_approved": "批准延期", "extension_refused": "不予延期", "suspended": "挂起",
    "resumed": "恢复（挂起结束）", "returned": "退单", "redispatched": "重新派单", "redo": "重办",
    "appeal_filed": "提出申诉", "appeal_upheld": "申诉成立（不纳入考核）",
    "appeal_rejected": "申诉不成立", "cancelled": "作废", "invalidated": "无效",
}  # fmt: skip


@dataclass
class DailySnapshot:
    window: q.DailyWindow
    since_day: date  # the previous report's day L: tickets from L 00:00, ladder steps after L
    counts: pd.DataFrame  # by unit id
    items: pd.DataFrame
    new_items: pd.DataFrame
    plan_tasks: pd.DataFrame
    escalations: pd.DataFrame
    units: pd.DataFrame
    undelivered: list[dict[str, Any]] = field(default_factory=list)
    # Exact counts by status (pending, failed, refused, parked) of what `undelivered` lists.
    undelivered_counts: dict[str, int] = field(default_factory=dict)
    catch_up_days: list[date] = field(default_factory=list)
    # The supervision clock (docs/clock.md): why a listed item's deadline moved (by ticket
    # id), the day's decisions and the requests still pending, each with its total.
    moves: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions_total: int = 0
    pending: pd.DataFrame = field(default_factory=pd.DataFrame)
    pending_total: int = 0
    # The requests refused for being late or over a cap, asked in the window, and the
    # window's refusals counted by code (duban.rules.clock.RefusalCode).
    refusals: pd.DataFrame = field(default_factory=pd.DataFrame)
    refusal_counts: dict[str, int] = field(default_factory=dict)


def make_daily_window(config: CityConfig, day: date, since_day: date) -> q.DailyWindow:
    """The window of the report for `day`, following the previous report's day `since_day`."""
    calendar = config.calendar
    warnings = config.escalation.warnings
    levels = config.urgency.levels
    return q.make_window(
        day,
        since_day,
        blue_cutoff={
            lv.level: blue_cutoff(day, warnings.blue_days(lv.level), calendar) for lv in levels
        },
        response_hours={lv.level: lv.response_hours for lv in levels},
        due_soon_day=calendar.add_working_days(day, 2),
    )


def measure_daily(
    engine: Engine,
    config: CityConfig,
    day: date,
    since_day: date,
    recorded_since: datetime | None = None,
    previous_started: datetime | None = None,
) -> DailySnapshot:
    """The day's figures. `recorded_since`: when this report's first run started (what it
    was measured against); `previous_started`: when the previous report's did (the
    refusals recorded between the two are this report's, q.refusal_window)."""
    window = make_daily_window(config, day, since_day)
    with engine.connect() as conn:
        items = q.unit_items(conn, window, LIST_LIMIT)
        touched = items[items["clock_events"] > 0] if len(items) else items
        decisions, decisions_total = q.clock_decisions(conn, window.since, window.now, CLOCK_SHOWN)
        pending, pending_total = q.pending_requests(conn, window.now, CLOCK_SHOWN)
        listed = sorted(LATE | OVER_CAP)
        refusals, refusal_counts = q.clock_refusals(
            conn, window.since, window.now, listed, CLOCK_SHOWN,
            recorded=(previous_started, recorded_since),
        )  # fmt: skip
        return DailySnapshot(
            window=window,
            since_day=since_day,
            counts=q.unit_counts(conn, window),
            items=items,
            new_items=q.new_items(conn, window, LIST_LIMIT),
            plan_tasks=q.plan_tasks_this_month(conn, window),
            escalations=q.escalations_in_window(conn, since_day, day, recorded_since),
            units=q.units(conn),
            undelivered=undelivered(conn),
            undelivered_counts=qn.undelivered_counts(conn),
            moves=q.deadline_moves(conn, [int(i) for i in touched.get("id", [])], window.now),
            decisions=decisions,
            decisions_total=decisions_total,
            pending=pending,
            pending_total=pending_total,
            refusals=refusals,
            refusal_counts=refusal_counts,
        )


def undelivered(conn: Any, limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries not sent that the office should know of: for the office's digest."""
    rows = qn.undelivered(conn, limit)
    return [
        {"recipient": r.recipient, "status": str(r.status), "attempts": r.attempts,
         "error": r.last_error or "", "subject": r.subject}
        for r in rows
    ]  # fmt: skip


def undelivered_summary(counts: dict[str, int], listed: int) -> str:
    """E.g. "共 346 封未送达：待发 346，失败 0，拒发 0，搁置 0（列出前 100 封）。"."""
    total = sum(counts.values())
    line = (
        f"共 {total} 封未送达：待发 {counts.get('pending', 0)}，失败 {counts.get('failed', 0)}，"
        f"拒发 {counts.get('refused', 0)}，搁置 {counts.get('parked', 0)}"
    )
    return line + (f"（列出前 {listed} 封）。" if listed < total else "。")


def _place(row: Any, text_limit: int) -> str:
    return citizen_text(" ".join(str(p) for p in (row.street, row.address) if p), text_limit)


def _rows_by(frame: pd.DataFrame, key: Callable[[Any], Any]) -> dict[Any, list[Any]]:
    """The frame's rows (named tuples) grouped by `key(row)`, in the frame's order: one pass
    over the frame instead of a boolean mask and an itertuples per unit (which cost 4 s for
    ~430 units)."""
    groups: dict[Any, list[Any]] = {}
    if len(frame):
        for row in frame.itertuples(index=False):
            groups.setdefault(key(row), []).append(row)
    return groups


DAILY_COUNTS = ("new", "responded", "resolved", "open", "red", "yellow", "blue", "suspended",
                "due_soon", "no_deadline")  # fmt: skip


def _optional(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


def moved_because(row: Any, moves: dict[int, Any]) -> str:
    """ "批准延期：<reason>" for an item whose current deadline is not the original one (the
    latest deadline-moving event), else ""."""
    base, due = _optional(getattr(row, "base_due_at", None)), _optional(row.due_at)
    if getattr(row, "clock_events", 0) in (0, None) or base == due:
        return ""
    move = moves.get(int(row.id))
    if move is None:
        return "期限已调整"
    name = EVENT_NAMES.get(str(move.kind), str(move.kind))
    reason = mask_personal_data(str(move.reason or "")).strip()
    return f"{name}：{reason}" if reason else name


def _ticket_rows(
    rows: Iterable[Any],
    step_names: dict[int, str],
    text_limit: int,
    moves: dict[int, Any] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        level = getattr(row, "escalation_level", None)
        colour = getattr(row, "colour", "green")
        moved = moved_because(row, moves or {})
        out.append(
            {
                "external_id": row.external_id,
                "received_at": row.received_at,
                "due_at": None if pd.isna(row.due_at) else row.due_at,  # None: 无办理时限
                "category": row.category,
                "place": _place(row, text_limit),
                "content": citizen_text(row.content, text_limit),
                "colour": colour,
                "colour_name": COLOUR_NAMES.get(colour, colour),
                "escalation": "" if level is None or pd.isna(level) else step_names[int(level)],
                # the original deadline and why it moved, when the clock moved it
                "base_due_at": _optional(getattr(row, "base_due_at", None)) if moved else None,
                "moved": moved,
            }
        )
    return out


def _escalation_rows(
    rows: pd.DataFrame | list[Any], config: CityConfig, limit: int
) -> list[dict[str, Any]]:
    names = {s.step: s.name for s in config.escalation.steps}
    kinds = {"ticket": "工单", "plan_task": "任务", "policy": "政策"}
    return [
        {
            "step_name": names.get(row.step, row.step),
            "item": f"{kinds.get(str(row.item_kind), str(row.item_kind))} {row.item_ref}",
            "reason": mask_personal_data(row.reason),
            "unit_name": row.unit_name,
        }
        for row in (
            rows.head(limit).itertuples(index=False)
            if isinstance(rows, pd.DataFrame)
            else rows[:limit]
        )
    ]


def _common(config: CityConfig, snap: DailySnapshot) -> dict[str, Any]:
    return {
        "day": snap.window.day,
        "since_day": snap.since_day,
        "last_day": snap.window.day - timedelta(days=1),
        "subject_prefix": config.mail.subject_prefix,
        "generated_for": f"日报 {snap.window.day:%Y-%m-%d}",
    }


def unit_contexts(config: CityConfig, snap: DailySnapshot) -> dict[int, dict[str, Any]]:
    """One context per unit with something to report: only that unit's own items."""
    step_names = {i + 1: s.name for i, s in enumerate(config.escalation.steps)}
    notify = {s.step: set(s.notify) for s in config.escalation.steps}
    esc = snap.escalations
    own_steps = esc[esc["step"].map(lambda s: "unit" in notify.get(s, set()))] if len(esc) else esc
    supervisor_steps = (
        esc[esc["step"].map(lambda s: "supervisor" in notify.get(s, set()))] if len(esc) else esc
    )
    supervisor_of = snap.units["supervisor_id"]
    contexts: dict[int, dict[str, Any]] = {}
    escalated_units = set(supervisor_steps.get("unit_id", []))
    supervisors = set(supervisor_of[supervisor_of.index.isin(escalated_units)].dropna())
    unit_ids = (
        set(snap.counts.index)
        | set(snap.plan_tasks.get("unit_id", []))
        | set(esc.get("unit_id", []))
        | supervisors
    )
    common = _common(config, snap)
    supervisor_by_unit = {int(u): int(s) for u, s in supervisor_of.dropna().items()}

    def by_unit(row: Any) -> int:
        return int(row.unit_id)

    def by_supervisor(row: Any) -> int | None:
        return supervisor_by_unit.get(int(row.unit_id))

    items_of = _rows_by(snap.items, by_unit)
    moves = {int(r.item_id): r for r in snap.moves.itertuples(index=False)}
    new_items_of = _rows_by(snap.new_items, by_unit)
    tasks_of = _rows_by(snap.plan_tasks, by_unit)
    steps_of = _rows_by(own_steps, by_unit)
    # The steps of a unit's subordinates, grouped by the supervisor, in the frame's order.
    supervised_of = _rows_by(supervisor_steps, by_supervisor)
    for unit_id in sorted(int(u) for u in unit_ids):
        if unit_id not in snap.units.index or not snap.units.at[unit_id, "active"]:
            continue
        counts = (
            snap.counts.loc[unit_id].to_dict()
            if unit_id in snap.counts.index
            else dict.fromkeys(DAILY_COUNTS, 0)
        )
        items = items_of.get(unit_id, [])
        new_items = new_items_of.get(unit_id, [])
        tasks = tasks_of.get(unit_id, [])
        mine = steps_of.get(unit_id, [])
        supervised = supervised_of.get(unit_id, [])
        has_news = (
            counts["new"] or counts["red"] or counts["yellow"] or counts["blue"]
            or counts["due_soon"] or len(tasks) or len(mine) or len(supervised)
        )  # fmt: skip
        if not has_news:
            continue
        unit = snap.units.loc[unit_id]
        contexts[unit_id] = {
            **common,
            "unit": {"code": unit["code"], "name": unit["name"]},
            "emails": list(unit["emails"] or []),
            "counts": {k: int(v) for k, v in counts.items()},
            "items": _ticket_rows(items, step_names, config.mail.max_citizen_text, moves),
            "items_total": int(counts["red"] + counts["yellow"] + counts["blue"]) or len(items),
            "new_items": _ticket_rows(new_items, step_names, config.mail.max_citizen_text),
            "plan_tasks": [
                {
                    "problem": f"{row.problem_code} {row.problem_name}",
                    "code": row.code,
                    "title": row.title,
                    "status": STATUS_NAMES.get(str(row.status), str(row.status)),
                    "progress": float(row.progress),
                }
                for row in tasks
            ],
            "escalations": _escalation_rows(mine, config, LIST_LIMIT),
            "escalation_total": len(mine),
            "supervised": _escalation_rows(supervised, config, LIST_LIMIT),
            "supervised_total": len(supervised),
        }
        contexts[unit_id]["todo"] = unit_todo(contexts[unit_id])
    return contexts


def unit_todo(context: dict[str, Any]) -> dict[str, str | None]:
    """A unit's daily summary: what is late, what falls due next and by when."""
    counts = context["counts"]
    parts = []
    if counts["red"]:
        parts.append(f"立即办结已超期的红色事项 {counts['red']} 件")
    warned = counts["yellow"] + counts["blue"]
    if warned:
        parts.append(f"在时限前办结黄色、蓝色预警事项 {warned} 件")
    if counts["new"]:
        parts.append(f"按时响应新派工单 {counts['new']} 件")
    if context["escalation_total"]:
        parts.append(f"落实本期督办事项 {context['escalation_total']} 项")
    if context["supervised_total"]:
        parts.append(f"督促所属单位办理被督办事项 {context['supervised_total']} 项")
    if context["plan_tasks"]:
        parts.append(f"推进本月到期的“每月一题”任务 {len(context['plan_tasks'])} 项")
    dues = [i["due_at"] for i in context["items"] if i["due_at"] is not None]
    if counts["red"]:
        by: str | None = "今日"
    elif dues:
        by = f"最早一件 {min(dues):%Y-%m-%d %H:%M}（各件见办理时限）"
    else:
        by = None
    return todo("；".join(parts) or "阅知本单位接诉即办情况", by)


def office_todo(ledger: int, red: int, unreachable: int, undelivered: int) -> dict[str, str | None]:
    """The office's daily summary: what needs its attention today."""
    parts = []
    if ledger:
        parts.append(f"督办新增挂账事项 {ledger} 项")
    if red:
        parts.append(f"督促红色（超期）事项较多的单位，全市红色 {red} 件")
    if unreachable:
        parts.append(f"为 {unreachable} 个无有效收件地址的单位补充地址（其日报未发出）")
    if undelivered:
        parts.append(f"处理未送达的邮件 {undelivered} 封")
    if not parts:
        return todo("阅知全市接诉即办日报，今日无须督办处理的事项")
    return todo("；".join(parts), "今日")


def _office_steps(config: CityConfig, esc: pd.DataFrame) -> pd.DataFrame:
    """The ladder steps of the window that the office is told of: its new ledger entries."""
    notify = {s.step: set(s.notify) for s in config.escalation.steps}
    return esc[esc["step"].map(lambda s: "office" in notify.get(s, set()))] if len(esc) else esc


LEDGER_COLUMNS = (
    ("unit_name", "单位"),
    ("step_name", "措施"),
    ("item", "事项"),
    ("reason", "原因"),
)


def ledger_entries_name(day: date) -> str:
    return wb.file_name("新增挂账事项", f"{day:%Y-%m-%d}", suffix=".xlsx")


def write_ledger_entries(config: CityConfig, snap: DailySnapshot, folder: Path) -> Path | None:
    """Every new ledger entry of the day in a workbook beside the digest, when there are more
    than the digest lists (LEDGER_SHOWN); None otherwise."""
    steps = _office_steps(config, snap.escalations)
    if len(steps) <= LEDGER_SHOWN:
        return None
    day = snap.window.day
    rows = _escalation_rows(steps, config, len(steps))
    sheet = wb.DetailSheet("新增挂账事项", LEDGER_COLUMNS, rows)
    note = (
        f"{day:%Y-%m-%d} 全市接诉即办日报的新增挂账事项，共 {len(rows)} 项"
        f"（日报正文仅列前 {LEDGER_SHOWN} 项）。"
    )
    stamp = datetime(day.year, day.month, day.day)
    return wb.write_detail_workbook(folder / ledger_entries_name(day), [sheet], stamp, note=note)


def office_context(
    config: CityConfig,
    snap: DailySnapshot,
    units_reported: int,
    unreachable: Sequence[str] = (),
    ledger_workbook: str | None = None,
) -> dict[str, Any]:
    """The office's digest. `unreachable`: the names of the units whose notice of today has
    no address it may go to (refused, not sent); `ledger_workbook`: the name of the attached
    workbook of every new ledger entry (`write_ledger_entries`), when there are more than the
    digest lists."""
    counts = snap.counts
    totals = {
        c: int(counts[c].sum()) if len(counts) else 0
        for c in ("new", "responded", "resolved", "open", "red", "yellow", "blue")
    }
    top = counts.sort_values(["red", "open"], ascending=False).head(10) if len(counts) else counts
    top_red = [
        {"name": snap.units.at[uid, "name"], "red": int(row["red"]), "open": int(row["open"])}
        for uid, row in top.iterrows()
        if row["red"] > 0
    ]
    esc = snap.escalations
    office_steps = _office_steps(config, esc)
    step_counts = [
        {"name": s.name, "count": int((esc["step"] == s.step).sum()) if len(esc) else 0}
        for s in config.escalation.steps
    ]
    return {
        **_common(config, snap),
        "totals": totals,
        "units_reported": units_reported,
        "top_red": top_red,
        "step_counts": step_counts,
        "ledger": _escalation_rows(office_steps, config, LEDGER_SHOWN),
        "ledger_total": len(office_steps),
        "ledger_workbook": ledger_workbook,
        "undelivered": [{**d, "error": mask_personal_data(d["error"])} for d in snap.undelivered],
        "undelivered_summary": undelivered_summary(snap.undelivered_counts, len(snap.undelivered)),
        "catch_up_days": [f"{d:%m-%d}" for d in snap.catch_up_days],
        "unreachable": list(unreachable),
        "todo": office_todo(
            len(office_steps),
            totals["red"],
            len(unreachable),
            sum(snap.undelivered_counts.values()),
        ),
        "decisions": _event_rows(snap.decisions),
        "decisions_total": snap.decisions_total,
        "pending": _event_rows(snap.pending),
        "pending_total": snap.pending_total,
        **refusal_context(snap.refusals, snap.refusal_counts),
    }


def refusal_context(frame: pd.DataFrame, counts: dict[str, int]) -> dict[str, Any]:
    """The digest's refusals: those late or over a cap listed (`refusals`, with the
    totals `refusals_late`, `refusals_over_cap`, `refusals_total`), the others counted
    (`refusals_other`)."""
    by_class = {"late": 0, "over_cap": 0, "other": 0}
    for code, n in counts.items():
        by_class[refusal_class(code)] += n
    rows = _event_rows(frame)
    for row, code in zip(rows, frame["code"] if len(frame) else [], strict=True):
        row["why"] = REFUSAL_CLASSES[refusal_class(str(code))]
        row["external_id"] = mask_personal_data(str(row["external_id"]))
    return {
        "refusals": rows,
        "refusals_late": by_class["late"],
        "refusals_over_cap": by_class["over_cap"],
        "refusals_total": by_class["late"] + by_class["over_cap"],
        "refusals_other": by_class["other"],
    }


def _event_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Clock events for the office digest (the day's decisions, the pending requests)."""
    if not len(frame):
        return []
    return [
        {
            "external_id": row.external_id,
            "unit_name": row.unit_name,
            "kind": EVENT_NAMES.get(str(row.kind), str(row.kind)),
            "at": row.at,
            "actor": mask_personal_data(str(row.actor or "")),
            "reason": mask_personal_data(str(row.reason or "")),
        }
        for row in frame.itertuples(index=False)
    ]
