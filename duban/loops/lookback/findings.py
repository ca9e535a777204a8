"""The look-back (回头看): were closed tickets really solved, or did the problem come back?

Supervision staff ask for a look-back with a `LookbackRequest` (the command line, or the
Prefect UI's custom-run form); the flow (flows/lookback.py) then:

1. checks the request (`request_problems`, `resolve_codes`) — in plain code, because the
   UI does not run the model's validators;
2. finds the recurred tickets in SQL (`measure_lookback`, duban/queries/lookback.py) and
   records one `LookbackFinding` per recurred ticket for the run (`record_findings`);
3. with `reopen`, sets each recurred ticket back to status `reopened`, once per request
   (`reopen_recurred`), with an `AuditRecord` per change and a `redo` clock event (a fresh
   deadline and ladder round: duban/clock/reopen.py);
4. with `notify`, tells the supervision office everything and each unit concerned its own
   items (`office_context`, `unit_contexts`).

A request is identified by its `fingerprint()`: the Run's period and the notices' period.
Re-running the same request reopens nothing again and sends nothing new. Definitions and
parameters: docs/lookback.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from sqlalchemy import Connection, Engine, and_, bindparam, insert, update

from duban import workbooks as wb
from duban.clock.reopen import Reopening, record_reopenings
from duban.config import CityConfig, LookbackSchedule
from duban.db.models import AuditRecord, ItemKind, LookbackFinding, Ticket
from duban.db.models import TicketStatus as Status
from duban.notices.todo import todo
from duban.queries import lookback as q
from duban.queries.units import directory_frame, unit_ids
from duban.rules.masking import citizen_text

LOOP = "lookback"
ACTOR = "回头看 lookback"
LIST_LIMIT_UNIT = 200
TOP_ITEMS = 30  # findings the office's notice lists; all of them are attached
PLACE_NAMES = {
    "address": "同一地址（同区、同街道）",
    "community": "同一社区（同区、同街道）",
    "street": "同一街道（同区）",
}
STATUS_NAMES = {
    "closed": "已办结",
    "reopened": "已重新开启",
    "open": "待办",
    "in_progress": "办理中",
}


# An optional list of codes, shown by the Prefect UI's form as one list (no "None" branch).
Codes = Annotated[list[str] | None, WithJsonSchema({"type": "array", "items": {"type": "string"}})]


class LookbackRequestError(ValueError):
    """A look-back request that cannot run; the message says what to fix."""


class LookbackRequest(BaseModel):
    """回头看 look-back: which closed tickets to revisit, and what counts as a recurrence."""

    model_config = ConfigDict(
        title="回头看 Look-back request", extra="forbid", str_strip_whitespace=True
    )

    closed_from: date = Field(
        title="办结日期自 Closed from",
        description="First day of closure of the tickets to revisit (included). "
        "回头看的工单办结日期起（含）。",
    )
    closed_to: date = Field(
        title="办结日期至 Closed to",
        description="Last day of closure (included); not before 'Closed from'. "
        "办结日期止（含），不得早于起始日期。",
    )
    problems: Codes = Field(
        default=None,
        title="问题编号 Problems",
        description="Only tickets of these One-Question-a-Month problems (codes such as P01, "
        "config/problems.yaml). Empty: every ticket. 仅限这些“每月一题”问题；留空为全部。",
    )
    units: Codes = Field(
        default=None,
        title="承办单位 Units",
        description="Only tickets of these responsible units (codes such as dc-jianguomen, "
        "config/units.yaml; a unit's own tickets, not its sub-units'). Empty: every unit. "
        "仅限这些承办单位；留空为全部。",
    )
    window_days: int = Field(
        default=30,
        ge=1,
        le=366,
        title="复发观察期（天） Recurrence window (days)",
        description="A ticket received within this many days after the closure (end "
        "included) counts as a recurrence. 办结后多少天内再次来电视为复发。",
    )
    same_place: Literal["address", "community", "street"] = Field(
        default="address",
        title="同一地点 Same place",
        description="What counts as the same place: the same address (district, street and "
        "normalised address), community (in the same district and street) or street (in the "
        "same district). An empty place never matches. 以地址（同区、同街道，地址规范化后比对）、"
        "社区（同区、同街道）或街道（同区）判定同一地点；为空的不参与比对。",
    )
    same_category: bool = Field(
        default=True,
        title="同一类别 Same category",
        description="Count only tickets of the same category as recurrences. "
        "仅同一诉求类别视为复发。",
    )
    reopen: bool = Field(
        default=False,
        title="重新开启 Reopen",
        description="Set each recurred ticket back to 'reopened' (once per request, audited). "
        "Off: report only, nothing in the tickets changes. 复发工单重新开启；关闭时只报告。",
    )
    notify: bool = Field(
        default=True,
        title="发送通报 Notify",
        description="Send the findings to the supervision office and to each unit "
        "concerned (its own items only). 向督办室及相关单位发送回头看通报。",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LookbackRequest:
        problems = request_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def problem_codes(self) -> list[str]:
        return _codes(self.problems)

    def unit_codes(self) -> list[str]:
        return _codes(self.units)

    def fingerprint(self) -> str:
        """A stable name of what this request examines and does (not of `notify`): the same
        request always gets the same one. `YYMMDD-YYMMDD-<8 hex>`, 22 characters."""
        key = {
            "closed_from": self.closed_from.isoformat(),
            "closed_to": self.closed_to.isoformat(),
            "problems": self.problem_codes(),
            "units": self.unit_codes(),
            "window_days": self.window_days,
            "same_place": self.same_place,
            "same_category": self.same_category,
            "reopen": self.reopen,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return f"{self.closed_from:%y%m%d}-{self.closed_to:%y%m%d}-{digest[:8]}"

    def describe(self) -> dict[str, str]:
        """The parameters in the words of the notices."""
        return {
            "办结日期": f"{self.closed_from:%Y-%m-%d} 至 {self.closed_to:%Y-%m-%d}",
            "复发观察期": f"办结后 {self.window_days} 天内",
            "同一地点": PLACE_NAMES[self.same_place],
            "同一类别": "是" if self.same_category else "否（任何类别）",
            "问题": "、".join(self.problem_codes()) or "全部",
            "承办单位": "、".join(self.unit_codes()) or "全部",
            "处理方式": "复发工单重新开启" if self.reopen else "仅报告，不改变工单状态",
        }


def _codes(values: Iterable[str] | None) -> list[str]:
    return sorted({v.strip() for v in values or () if v and v.strip()})


def request_problems(request: LookbackRequest) -> list[str]:
    """What is wrong with the request on its own (without the database); empty when fine.
    Plain code: the Prefect UI does not run the model's validators."""
    problems = []
    if request.closed_to < request.closed_from:
        problems.append(
            f"closed_to {request.closed_to} is before closed_from {request.closed_from}"
        )
    if not 1 <= request.window_days <= 366:
        problems.append(f"window_days must be between 1 and 366 (got {request.window_days})")
    if request.same_place not in q.PLACES:
        problems.append(f"same_place must be one of {', '.join(q.PLACES)}")
    return problems


def check_request(request: LookbackRequest) -> None:
    problems = request_problems(request)
    if problems:
        raise LookbackRequestError("look-back request: " + "; ".join(problems))


def build_request(**values: Any) -> LookbackRequest:
    """A request from plain values, or LookbackRequestError with one line per problem."""
    try:
        return LookbackRequest(**values)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {msg}" if where else msg)
        raise LookbackRequestError("look-back request: " + "; ".join(lines)) from None


def unknown_codes(
    request: LookbackRequest, unit_codes: Iterable[str], problem_codes: Iterable[str]
) -> list[str]:
    """One message per code of the request that is not among the known ones."""
    units, problems = set(unit_codes), set(problem_codes)
    return [f"unknown unit code {c!r}" for c in request.unit_codes() if c not in units] + [
        f"unknown problem code {c!r}" for c in request.problem_codes() if c not in problems
    ]


@dataclass(frozen=True)
class Resolved:
    unit_ids: tuple[int, ...]
    problem_ids: tuple[int, ...]


def resolve_codes(conn: Connection, request: LookbackRequest) -> Resolved:
    """The database ids of the request's unit and problem codes, or LookbackRequestError
    naming every unknown code."""
    units = unit_ids(conn, request.unit_codes())
    problems = q.problem_ids(conn, request.problem_codes())
    unknown = unknown_codes(request, units, problems)
    if unknown:
        raise LookbackRequestError(
            "look-back request: " + "; ".join(unknown)
            + " (see config/units.yaml and config/problems.yaml; `duban sync` loads them)"
        )  # fmt: skip
    return Resolved(tuple(sorted(units.values())), tuple(sorted(problems.values())))


def criteria_for(request: LookbackRequest, resolved: Resolved) -> q.LookbackCriteria:
    return q.LookbackCriteria(
        closed_from=datetime.combine(request.closed_from, time()),
        closed_until=datetime.combine(request.closed_to + timedelta(days=1), time()),
        window_days=request.window_days,
        same_place=request.same_place,
        same_category=request.same_category,
        unit_ids=resolved.unit_ids,
        problem_ids=resolved.problem_ids,
    )


@dataclass
class LookbackSnapshot:
    request: LookbackRequest
    findings: pd.DataFrame  # q.FINDING_COLUMNS
    unit_rates: pd.DataFrame  # by unit: closed, examined, recurred, recurrence_rate
    problem_rates: pd.DataFrame
    units: pd.DataFrame  # id -> code, name, emails, active
    reopened_ids: set[int] = field(default_factory=set)  # by this run

    @property
    def closed(self) -> int:
        return int(self.unit_rates["closed"].sum()) if len(self.unit_rates) else 0

    @property
    def examined(self) -> int:
        return int(self.unit_rates["examined"].sum()) if len(self.unit_rates) else 0

    @property
    def recurred(self) -> int:
        return len(self.findings)

    @property
    def rate(self) -> float | None:
        return self.recurred / self.examined if self.examined else None


def measure_lookback(engine: Engine, request: LookbackRequest) -> LookbackSnapshot:
    """Check the request against the database and run the look-back's SQL."""
    check_request(request)
    with engine.connect() as conn:
        criteria = criteria_for(request, resolve_codes(conn, request))
        units = directory_frame(conn)[["code", "name", "emails", "active"]]
        return LookbackSnapshot(
            request=request,
            findings=q.findings(conn, criteria),
            unit_rates=q.recurrence_rates(conn, criteria, "unit"),
            problem_rates=q.recurrence_rates(conn, criteria, "problem"),
            units=units,
        )


def record_findings(engine: Engine, run_id: int, findings: pd.DataFrame) -> int:
    """One LookbackFinding per recurred ticket for the run (unique per run and item)."""
    rows = [
        {
            "run_id": run_id, "item_kind": ItemKind.ticket.value, "item_id": int(row.item_id),
            "unit_id": int(row.unit_id), "recurrences": int(row.recurrences),
            "first_recurrence_id": int(row.first_recurrence_id), "reopened": False,
        }
        for row in findings.itertuples(index=False)
    ]  # fmt: skip
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(LookbackFinding), rows)
    return len(rows)


@dataclass(frozen=True)
class ReopenResult:
    reopened: list[int]  # ticket ids reopened by this run
    already: int  # recurred tickets not reopened now: reopened before, or no longer closed
    redone: int = 0  # of those reopened, the redo events recorded (a fresh deadline)
    redo_refused: list[str] = field(default_factory=list)  # redo events the clock refused


def reopen_recurred(
    engine: Engine, run_id: int, period: str, config: CityConfig | None = None
) -> ReopenResult:
    """Set every recurred ticket of the run that is still `closed` to `reopened`, unless a
    look-back of the same request (same period) reopened it before; one AuditRecord per
    ticket changed, and the run's finding marked `reopened`. Each reopening is a `redo`
    clock event (origin `lookback`, key `lookback:<period>`): a fresh deadline from now with
    the ticket's level and a fresh ladder round (docs/clock.md). One transaction: all or
    nothing. `config`: the city's (None: the settings').

    Exactly once: the UPDATE only touches rows still closed (a concurrent run of the same
    request waits for ours and then finds them reopened), and a ticket closed again after
    an earlier reopening by this request is not reopened a second time.
    """
    F = LookbackFinding.__table__.c
    T = Ticket.__table__.c
    this_run = q.tickets_found(run_id)
    reopened_before = q.reopened_before(LOOP, period, run_id)
    now = datetime.now()
    with engine.begin() as conn:
        changed = (
            conn.execute(
                update(Ticket)
                .where(
                    T.id.in_(this_run),
                    T.status == Status.closed.value,
                    T.id.not_in(reopened_before),
                )
                .values(status=Status.reopened.value)
                .returning(T.id)
            )
            .scalars()
            .all()
        )
        ids = sorted(int(i) for i in changed)
        total = q.findings_of_run(conn, run_id)
        redone, refused = 0, list[str]()
        if ids:
            origin = f"lookback {period} run {run_id}"
            conn.execute(
                insert(AuditRecord),
                [
                    {"at": now, "actor": ACTOR, "entity": "ticket", "entity_id": i,
                     "field": "status", "old": Status.closed.value,
                     "new": Status.reopened.value, "origin": origin}
                    for i in ids
                ],
            )  # fmt: skip
            conn.execute(
                update(LookbackFinding)
                .where(and_(F.run_id == run_id, F.item_id == bindparam("ticket_id")))
                .values(reopened=True),
                [{"ticket_id": i} for i in ids],
            )
            reason = f"回头看发现复发，重新开启（{period}）"
            clock = record_reopenings(
                conn,
                [Reopening(i, f"lookback:{period}", now, ACTOR, reason) for i in ids],
                origin="lookback", origin_ref=origin, as_of=now, config=config,
            )  # fmt: skip
            redone, refused = len(clock.recorded), [r.line() for r in clock.refused]
    return ReopenResult(ids, len(total) - len(ids), redone, refused)


# ---------------------------------------------------------------- notices


def _place(row: Any, text_limit: int) -> str:
    parts = (row.street, row.community, row.address)
    return citizen_text(" ".join(str(p) for p in parts if p and not pd.isna(p)), text_limit)


def _items(
    frame: pd.DataFrame, reopened: set[int], limit: int, text_limit: int, *, own_only: bool
) -> list[dict[str, Any]]:
    """The findings as a notice lists them. `own_only` (a unit's notice): the first
    recurrence shown is the first among the unit's own tickets, and of the others only how
    many there were — a unit never sees another unit's ticket."""
    out = []
    prefix = "first_own_recurrence" if own_only else "first_recurrence"
    for row in frame.head(limit).itertuples(index=False):
        status = "reopened" if int(row.item_id) in reopened else str(row.status)
        first_id = getattr(row, f"{prefix}_external_id")
        out.append(
            {
                "external_id": row.external_id,
                "unit_name": row.unit_name,
                "problem": row.problem_code if isinstance(row.problem_code, str) else "",
                "received_at": row.received_at,
                "closed_at": row.closed_at,
                "category": row.category,
                "place": _place(row, text_limit),
                "content": citizen_text(row.content, text_limit),
                "recurrences": int(row.recurrences),
                "first_external_id": first_id,
                "first_received_at": getattr(row, f"{prefix}_received_at") if first_id else None,
                "first_content": citizen_text(getattr(row, f"{prefix}_content"), text_limit),
                "others": int(row.recurrences) - int(row.own_recurrences) if own_only else 0,
                "status": STATUS_NAMES.get(status, status),
                "reopened_now": int(row.item_id) in reopened,
            }
        )
    return out


def _rate(recurred: int, examined: int) -> float | None:
    return recurred / examined if examined else None


def _common(snap: LookbackSnapshot, subject_prefix: str) -> dict[str, Any]:
    request = snap.request
    return {
        "subject_prefix": subject_prefix,
        "generated_for": f"回头看 {request.fingerprint()}",
        "closed_from": request.closed_from,
        "closed_to": request.closed_to,
        "window_days": request.window_days,
        "place_name": PLACE_NAMES[request.same_place],
        "parameters": request.describe(),
        "reopen": request.reopen,
    }


def unit_contexts(
    snap: LookbackSnapshot, subject_prefix: str, text_limit: int
) -> dict[int, dict[str, Any]]:
    """One context per active unit with recurred tickets: only that unit's own items, and
    of their recurrences only the unit's own tickets (`_items`)."""
    contexts: dict[int, dict[str, Any]] = {}
    if not len(snap.findings):
        return contexts
    rates = snap.unit_rates.set_index("unit_id")
    common = _common(snap, subject_prefix)
    for unit_id, own in snap.findings.groupby("unit_id", sort=True):
        uid = int(unit_id)
        unit = snap.units.loc[uid]
        if not unit["active"]:
            continue
        examined = int(rates.at[uid, "examined"])
        items = _items(own, snap.reopened_ids, LIST_LIMIT_UNIT, text_limit, own_only=True)
        contexts[uid] = {
            **common,
            "unit": {"code": unit["code"], "name": unit["name"]},
            "emails": list(unit["emails"] or []),
            "counts": {
                "closed": int(rates.at[uid, "closed"]),
                "examined": examined,
                "recurred": len(own),
                "rate": _rate(len(own), examined),
                "reopened": sum(1 for i in own["item_id"] if int(i) in snap.reopened_ids),
            },
            "items": items,
            "items_total": len(own),
            "todo": todo(
                f"重新办理已重新开启的复发工单 {len(own)} 件，彻底解决群众诉求"
                if snap.request.reopen
                else f"逐件核实复发工单 {len(own)} 件的复发原因，举一反三，防止问题反弹",
                "按重新派单的办理时限" if snap.request.reopen else None,
            ),
        }
    return contexts


def _rates(frame: pd.DataFrame, by: str) -> list[dict[str, Any]]:
    return [
        {
            "code": getattr(row, f"{by}_code"),
            "name": getattr(row, f"{by}_name"),
            "closed": int(row.closed),
            "examined": int(row.examined),
            "recurred": int(row.recurred),
            "rate": None if pd.isna(row.recurrence_rate) else float(row.recurrence_rate),
        }
        for row in frame.itertuples(index=False)
    ]


RATE_COLUMNS = (("code", "编码"), ("name", "名称"), ("closed", "办结"), ("examined", "参与比对"),
                ("recurred", "复发"), ("rate", "复发率"))  # fmt: skip
ITEM_COLUMNS = (
    ("external_id", "工单编号"), ("unit_name", "承办单位"), ("problem", "问题"),
    ("received_at", "受理时间"), ("closed_at", "办结时间"), ("category", "类别"),
    ("place", "地点"), ("content", "原诉求"), ("recurrences", "复发次数"),
    ("first_external_id", "首次复发工单"), ("first_received_at", "首次复发时间"),
    ("first_content", "首次复发诉求"), ("status", "状态"),
)  # fmt: skip


def findings_file_name(request: LookbackRequest) -> str:
    return wb.file_name(
        "回头看复发清单", f"{request.closed_from:%Y-%m-%d}至{request.closed_to:%Y-%m-%d}",
        request.fingerprint().rsplit("-", 1)[-1], suffix=".xlsx",
    )  # fmt: skip


def write_findings_workbook(snap: LookbackSnapshot, folder: Path, text_limit: int) -> Path | None:
    """Every recurred ticket and the rates of every unit and problem, beside the office's
    notice (which lists the first TOP_ITEMS and the units with recurrences); None when
    nothing recurred."""
    if not len(snap.findings):
        return None
    request = snap.request
    items = _items(snap.findings, snap.reopened_ids, len(snap.findings), text_limit, own_only=False)
    sheets = [
        wb.DetailSheet("复发工单", ITEM_COLUMNS, items),
        wb.DetailSheet("各单位复发率", RATE_COLUMNS, _rates(snap.unit_rates, "unit")),
        wb.DetailSheet("各问题复发率", RATE_COLUMNS, _rates(snap.problem_rates, "problem")),
    ]
    note = (
        f"对 {request.closed_from:%Y-%m-%d} 至 {request.closed_to:%Y-%m-%d} 办结工单的“回头看”："
        f"复发工单 {len(items)} 件及各单位、各问题的复发率（通报正文仅列前 {TOP_ITEMS} 件）。"
    )
    stamp = datetime.combine(request.closed_to, datetime.min.time())
    return wb.write_detail_workbook(folder / findings_file_name(request), sheets, stamp, note=note)


def office_context(
    snap: LookbackSnapshot,
    subject_prefix: str,
    units_notified: int,
    text_limit: int,
    workbook: str | None = None,
) -> dict[str, Any]:
    """For the supervision office: totals, the rates of the units with recurrences and of
    every problem, the first TOP_ITEMS findings; everything in the attached `workbook`."""
    unit_rates = _rates(snap.unit_rates, "unit")
    return {
        **_common(snap, subject_prefix),
        "totals": {
            "closed": snap.closed,
            "examined": snap.examined,
            "recurred": snap.recurred,
            "rate": snap.rate,
            "reopened": len(snap.reopened_ids),
        },
        "unit_rates": [r for r in unit_rates if r["recurred"]],
        "unit_rates_total": len(unit_rates),
        "problem_rates": _rates(snap.problem_rates, "problem"),
        "items": _items(snap.findings, snap.reopened_ids, TOP_ITEMS, text_limit, own_only=False),
        "items_total": snap.recurred,
        "units_notified": units_notified,
        "workbook": workbook,
        "todo": todo(
            f"阅知复发情况：复发工单 {snap.recurred} 件，已通报 {units_notified} 个单位；"
            "督促复发较多的单位逐件核实原因、重新办理"
            if snap.recurred
            else "阅知：本次“回头看”未发现复发工单，无需处理"
        ),
    }


# ---------------------------------------------------------------- scheduled look-backs


def scheduled_request(schedule: LookbackSchedule, day: date) -> LookbackRequest:
    """The request of a scheduled look-back run on `day`: the `closed_days` days of closures
    whose whole window ended by the start of `day` — the last closing day is
    `day - window_days - 1` (a ticket closed that day at 23:59 has its window end on
    `day - 1` at 23:59). With window 30 on 2026-11-02: items closed on 2026-10-02."""
    closed_to = day - timedelta(days=schedule.window_days + 1)
    return build_request(
        closed_from=closed_to - timedelta(days=schedule.closed_days - 1),
        closed_to=closed_to,
        problems=schedule.problems or None,
        units=schedule.units or None,
        window_days=schedule.window_days,
        same_place=schedule.same_place,
        same_category=schedule.same_category,
        reopen=schedule.reopen,
        notify=schedule.notify,
    )
