"""The quarterly spot check (季度抽查核验): draw a sample of what was reported done, record it
once, tell the office and the units, and act on the inspectors' verdicts.

1. `config.spot_check` (duban/config/quarterly.py) reads config/spot_check.yaml (the size
   rule and the secret; the environment variable DUBAN_SPOT_CHECK_SECRET overrides the
   file's secret).
2. `draw_sample` counts the population in SQL (duban/queries/quarterly.py), streams it
   through the pure draw (duban/rules/sampling.py) and records one `SpotCheckSample` per
   drawn item — once: a quarter with a recorded sample is never drawn again, a re-run gets
   the recorded sample back.
3. `load_sample` reads the recorded sample with what identifies each item; `office_context`
   and `unit_context` turn it into the contexts of templates/mail/quarterly_*.j2.
4. The inspectors' workbook comes back through duban/loops/quarterly/checklist.py, which records
   the verdicts; `fail_item` reopens a failed item and escalates its unit, exactly once.

See docs/spot-check.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from duban import workbooks as wb
from duban.clock.reopen import Reopening, record_reopenings
from duban.config import CityConfig, SpotCheckConfig, secret_bytes
from duban.db import insert_ignore
from duban.db.models import (
    AuditRecord,
    Escalation,
    ItemKind,
    PlanItemStatus,
    PlanTask,
    SpotCheckSample,
    Ticket,
    TicketStatus,
)
from duban.notices.todo import todo
from duban.periods import QuarterPeriod, parse_quarter
from duban.queries import quarterly as q
from duban.queries import units as qu
from duban.queries.kernel import none_for_missing
from duban.rules.masking import citizen_text, mask_personal_data
from duban.rules.sampling import Candidate, Draw, draw, draw_fingerprint

LOOP = "quarterly"
ACTOR = "季度抽查 spot check"
FAILED_STEP = "spot_check_failed"  # Escalation.step: once per (item kind, item id)
KIND_NAMES = {ItemKind.ticket.value: "工单", ItemKind.plan_task.value: "任务"}
RESULT_WORDS = {True: "通过", False: "不通过"}
TOP_ITEMS = 30  # items the office's report lists; all of them are in the checklist


# ---------------------------------------------------------------- the draw


@dataclass
class SampleDraw:
    """The quarter's sample: drawn now, or as recorded by an earlier run."""

    quarter: str
    fingerprint: str  # of the quarter's draw (sampling.draw_fingerprint)
    strata: list[dict[str, Any]]  # unit_code, item_kind, population, size, seed
    recorded_before: bool  # True: an earlier run drew it; nothing was drawn now
    inserted: int = 0  # samples recorded by this call
    items: pd.DataFrame = field(default_factory=pd.DataFrame)  # load_sample's columns

    @property
    def drawn(self) -> int:
        return len(self.items)

    @property
    def population(self) -> int:
        return sum(int(s["population"]) for s in self.strata)


def draw_sample(
    engine: Engine,
    config: CityConfig,
    spot: SpotCheckConfig,
    period: QuarterPeriod,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> SampleDraw:
    """Draw the quarter's sample and record it — or return the one recorded before.

    Insert-once: when any sample of the quarter is recorded, nothing is drawn again (the
    strata are then described from the recorded items; their population is counted again
    now). A dry run draws without recording. The check and the insert share a transaction,
    and the insert skips existing (quarter, kind, item) rows, so two runs at once record
    one sample (the draw is deterministic: both draw the same items)."""
    secret = secret_bytes(spot, config.root)
    now = now or datetime.now()
    with engine.begin() as conn:
        counts = q.population_counts(conn, period.start, period.end)
        if q.sample_recorded(conn, period.label):
            recorded = True
            inserted = 0
            result: Draw | None = None
        else:
            recorded = False
            populations = {f"{unit}|{kind}": n for (unit, kind), n in counts.items()}
            candidates = (
                Candidate(kind, item_id, unit_code, key)
                for kind, item_id, _, unit_code, key in q.population_rows(
                    conn, period.start, period.end
                )
            )
            result = draw(secret, period.label, candidates, spot.rule, populations)
            unit_ids = qu.unit_ids(conn)
            rows = [
                {
                    "quarter": period.label,
                    "item_kind": d.candidate.item_kind,
                    "item_id": d.candidate.item_id,
                    "unit_id": unit_ids[d.candidate.unit_code],
                    "seed": d.seed_fingerprint,
                    "drawn_at": now,
                }
                for d in result.items
            ]
            inserted = 0
            if not dry_run:
                insert_ignore(
                    conn, SpotCheckSample.__table__, rows, ["quarter", "item_kind", "item_id"]
                )
                # (executemany reports no row count on every driver: count them)
                inserted = q.sample_size(conn, period.label)
    if result is not None and dry_run:
        items = _drawn_items(engine, result, now)
    else:
        with engine.connect() as conn:
            items = load_sample(conn, period.label)
    if result is not None:
        strata = [
            {
                "unit_code": s.unit_code,
                "item_kind": s.item_kind,
                "population": s.population,
                "size": s.size,
                "seed": s.seed_fingerprint,
            }
            for s in result.strata
        ]
    else:
        strata = _recorded_strata(items, counts)
    return SampleDraw(
        quarter=period.label,
        fingerprint=draw_fingerprint(secret, period.label),
        strata=strata,
        recorded_before=recorded,
        inserted=inserted,
        items=items,
    )


def _recorded_strata(
    items: pd.DataFrame, counts: dict[tuple[str, str], int]
) -> list[dict[str, Any]]:
    out = []
    if len(items):
        for (unit_code, kind), own in items.groupby(["unit_code", "item_kind"], sort=True):
            out.append(
                {
                    "unit_code": str(unit_code),
                    "item_kind": str(kind),
                    "population": counts.get((str(unit_code), str(kind)), 0),
                    "size": len(own),
                    "seed": str(own["seed"].iloc[0]),
                }
            )
    return out


SAMPLE_COLUMNS = [
    "sample_id", "item_kind", "item_id", "unit_id", "unit_code", "unit_name", "ref",
    "done_on", "category", "text", "seed", "drawn_at", "passed", "note", "checked_at",
    "item_status",
]  # fmt: skip


def load_sample(conn: Connection, quarter: str) -> pd.DataFrame:
    """The recorded sample of `quarter` with what identifies each item (citizen text and
    titles masked), by unit code, kind and reference. SAMPLE_COLUMNS."""
    rows = []
    for r in q.sample_rows(conn, quarter):
        values = r._asdict()
        values["done_on"] = _day(values["done_on"])
        values["text"] = mask_personal_data(values["text"])
        values["item_kind"] = str(values["item_kind"])
        values["item_status"] = str(values["item_status"])
        rows.append([values[c] for c in SAMPLE_COLUMNS])
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    frame["passed"] = frame["passed"].astype(object)
    frame = none_for_missing(frame.where(frame.notna(), None))
    return frame.sort_values(["unit_code", "item_kind", "ref"], ignore_index=True)


def _day(done: Any) -> Any:
    """A ticket's closing time as its day; a plan task's completion day as it is."""
    return done.date() if isinstance(done, datetime) else done


def _drawn_items(engine: Engine, result: Draw, now: datetime) -> pd.DataFrame:
    """A dry run's draw in load_sample's shape (nothing is recorded: no sample ids)."""
    tickets = [d for d in result.items if d.candidate.item_kind == ItemKind.ticket.value]
    tasks = [d for d in result.items if d.candidate.item_kind == ItemKind.plan_task.value]
    with engine.connect() as conn:
        units = {u.code: u for u in qu.directory(conn)}
        t_rows = q.item_details(conn, ItemKind.ticket, [d.candidate.item_id for d in tickets])
        p_rows = q.item_details(conn, ItemKind.plan_task, [d.candidate.item_id for d in tasks])
    rows = []
    for d in result.items:
        c = d.candidate
        item = (t_rows if c.item_kind == ItemKind.ticket.value else p_rows)[c.item_id]
        unit = units[c.unit_code]
        rows.append(
            [None, c.item_kind, c.item_id, unit.id, c.unit_code, unit.name, item.ref,
             _day(item.done_on), item.category, mask_personal_data(item.text),
             d.seed_fingerprint, now, None, None, None, str(item.item_status)]
        )  # fmt: skip
    frame = none_for_missing(pd.DataFrame(rows, columns=SAMPLE_COLUMNS))
    return frame.sort_values(["unit_code", "item_kind", "ref"], ignore_index=True)


# ---------------------------------------------------------------- a failed check


def fail_item(
    session: Session,
    sample: SpotCheckSample,
    *,
    level: int,
    today: date,
    origin: str,
    at: datetime,
    config: CityConfig | None = None,
) -> list[str]:
    """Reopen the item of a failed check and escalate its unit; what was done, in words.

    - a ticket still `closed` goes back to `reopened`, and the reopening is a `redo` clock
      event (origin `spot_check`, key `spot_check:<quarter>:<sample id>`, effective at `at`
      on the day `today`): a fresh deadline from then with the ticket's level and a fresh
      ladder round (docs/clock.md); `config`: the city's (None: the settings');
    - a plan task still `done` goes back to `in_progress` and loses its completion date
      (the old date stays in the audit record);
    - one Escalation (step `spot_check_failed`, the level of config `escalate_to`) for the
      item, skipped when it exists: exactly once per item.
    Every change gets an AuditRecord (actor ACTOR, `origin`). Call it once, when the
    sample's verdict first becomes "failed" (the import does)."""
    done: list[str] = []

    def audit(entity: str, entity_id: int, name: str, old: str | None, new: str | None) -> None:
        session.add(
            AuditRecord(
                at=at, actor=ACTOR, entity=entity, entity_id=entity_id, field=name,
                old=old, new=new, origin=origin[-500:],
            )
        )  # fmt: skip

    if sample.item_kind == ItemKind.ticket:
        ticket = session.get(Ticket, sample.item_id, with_for_update=True)
        if ticket is not None and ticket.status == TicketStatus.closed:
            audit("ticket", ticket.id, "status", TicketStatus.closed.value, "reopened")
            ticket.status = TicketStatus.reopened
            done.append("reopened")
            session.flush()  # the clock's store reads and writes the ticket's row itself
            _record_redo(session, sample, ticket.id, origin, datetime.combine(today, at.time()),
                         config, done)  # fmt: skip
            session.expire(ticket)
    else:
        task = session.get(PlanTask, sample.item_id, with_for_update=True)
        if task is not None and task.status == PlanItemStatus.done:
            audit("plan_task", task.id, "status", PlanItemStatus.done.value, "in_progress")
            old = task.completed_on.isoformat() if task.completed_on else None
            audit("plan_task", task.id, "completed_on", old, None)
            task.status = PlanItemStatus.in_progress
            task.completed_on = None
            done.append("reopened")
    reason = f"季度抽查核验不通过（{sample.quarter}）"
    if sample.note:
        reason += f"：{sample.note}"
    kind = ItemKind(sample.item_kind).value
    had = q.step_recorded(session, kind, sample.item_id, FAILED_STEP)
    insert_ignore(
        session.connection(),
        Escalation.__table__,
        [
            {
                "item_kind": kind,
                "item_id": sample.item_id,
                "step": FAILED_STEP,
                "level": level,
                "unit_id": sample.unit_id,
                "due_on": today,
                "applied_at": at,
                "reason": reason[:2000],
                "round": 1,
            }
        ],
        ["item_kind", "item_id", "step", "round"],
    )  # fmt: skip
    if not had:
        done.append("escalated")
    return done


def _record_redo(
    session: Session,
    sample: SpotCheckSample,
    ticket_id: int,
    origin: str,
    at: datetime,
    config: CityConfig | None,
    done: list[str],
) -> None:
    """The failed check's reopening as a redo event, in the import's transaction."""
    reason = f"季度抽查核验不通过（{sample.quarter}）"
    if sample.note:
        reason += f"：{sample.note}"
    result = record_reopenings(
        session.connection(),
        [Reopening(ticket_id, f"spot_check:{sample.quarter}:{sample.id}", at, ACTOR, reason)],
        origin="spot_check",
        origin_ref=origin,
        as_of=max(at, datetime.now()),
        config=config,
    )
    if result.recorded:
        done.append("redo")
    done.extend(f"redo refused: {r.line()}" for r in result.refused)


# ---------------------------------------------------------------- notices


def _item(row: Any, text_limit: int) -> dict[str, Any]:
    passed = row.passed
    return {
        "sample_id": row.sample_id,
        "kind": KIND_NAMES.get(str(row.item_kind), str(row.item_kind)),
        "ref": row.ref,
        "unit_name": row.unit_name,
        "done_on": row.done_on,
        "category": row.category or "",
        "text": citizen_text(row.text, text_limit),  # in full in the attached checklist
        "result": "待核验" if passed is None else RESULT_WORDS[bool(passed)],
        "note": mask_personal_data(row.note) if row.note else "",
    }


def results(items: pd.DataFrame) -> dict[str, int]:
    if not len(items):
        return {"drawn": 0, "checked": 0, "passed": 0, "failed": 0, "pending": 0}
    passed = items["passed"]
    checked = int(passed.notna().sum())
    ok = int(sum(1 for p in passed if p is not None and bool(p)))
    return {
        "drawn": len(items),
        "checked": checked,
        "passed": ok,
        "failed": checked - ok,
        "pending": len(items) - checked,
    }


def _common(sample: SampleDraw, spot: SpotCheckConfig, subject_prefix: str) -> dict[str, Any]:
    period = parse_quarter(sample.quarter)
    return {
        "subject_prefix": subject_prefix,
        "generated_for": f"季度抽查 {sample.quarter}",
        "quarter": sample.quarter,
        "quarter_title": period.title,
        "start": period.start,
        "last_day": period.last_day,
        "fingerprint": sample.fingerprint,
        "rule": spot.describe(),
    }


def strata_rows(sample: SampleDraw, unit_names: dict[str, str]) -> list[dict[str, Any]]:
    """Every stratum (unit × kind) of the draw with its seed fingerprint: the office's
    attached workbook of strata (`write_strata_workbook`)."""
    return [
        {
            "unit_name": unit_names.get(s["unit_code"], s["unit_code"]),
            "unit_code": s["unit_code"],
            "kind": KIND_NAMES.get(s["item_kind"], s["item_kind"]),
            "population": s["population"],
            "size": s["size"],
            "seed": str(s["seed"])[:16],
        }
        for s in sample.strata
    ]


STRATA_COLUMNS = (
    ("unit_name", "单位"), ("unit_code", "单位编码"), ("kind", "类型"),
    ("population", "总数"), ("size", "抽取"), ("seed", "种子指纹"),
)  # fmt: skip


def strata_file_name(quarter: str) -> str:
    return wb.file_name("抽样分层", quarter, suffix=".xlsx")


def write_strata_workbook(
    sample: SampleDraw, unit_names: dict[str, str], path: Path
) -> Path | None:
    """Every stratum of the draw with its population, size and seed fingerprint, beside the
    office's report (which shows counts by unit only); None when nothing was drawn."""
    if not sample.strata:
        return None
    period = parse_quarter(sample.quarter)
    rows = strata_rows(sample, unit_names)
    note = (
        f"{period.title}（{sample.quarter}）抽查核验的抽样分层：每层（单位 × 类型）的总数、抽取数和"
        f"种子指纹，共 {len(rows)} 层。抽样指纹 {sample.fingerprint}。"
    )
    sheet = wb.DetailSheet("抽样分层", STRATA_COLUMNS, rows)
    stamp = datetime.combine(period.last_day, datetime.min.time())
    return wb.write_detail_workbook(path, [sheet], stamp, note=note)


def _order_for_office(items: pd.DataFrame) -> pd.DataFrame:
    """Failed first, then pending, then passed; within each, as drawn."""
    rank = items["passed"].map(lambda p: 1 if p is None or p != p else (2 if bool(p) else 0))
    return items.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank")


def office_context(
    sample: SampleDraw,
    spot: SpotCheckConfig,
    subject_prefix: str,
    unit_names: dict[str, str],
    workbook: str | None,
    units_notified: int,
    text_limit: int,
    strata_workbook: str | None = None,
) -> dict[str, Any]:
    """The quarter report for the supervision office: the totals, counts by unit, the first
    TOP_ITEMS items (failed first); the whole sample is in the attached checklist
    (`workbook`), the strata and their seeds in `strata_workbook`."""
    items = sample.items
    population: dict[str, int] = {}
    for s in sample.strata:
        population[s["unit_code"]] = population.get(s["unit_code"], 0) + int(s["population"])
    units = []
    if len(items):
        for unit_code, own in items.groupby("unit_code", sort=True):
            units.append(
                {
                    "code": unit_code,
                    "name": str(own["unit_name"].iloc[0]),
                    "population": population.get(str(unit_code)),
                    "counts": results(own),
                }
            )
    ordered = _order_for_office(items) if len(items) else items
    top = [_item(r, text_limit) for r in ordered.head(TOP_ITEMS).itertuples()]
    totals = {"population": sample.population, **results(items)}
    return {
        **_common(sample, spot, subject_prefix),
        "totals": totals,
        "strata_total": len(sample.strata),
        "strata_workbook": strata_workbook,
        "units": units,
        "items": top,
        "items_total": len(items),
        "workbook": workbook,
        "units_notified": units_notified,
        "todo": todo(
            f"组织对抽中的 {totals['drawn']} 项逐项现场核验（待核验 {totals['pending']} 项），"
            "在附件核验清单中填写结果后用 duban import checks 导入"
            if totals["pending"]
            else f"抽中的 {totals['drawn']} 项均已核验（不通过 {totals['failed']} 项），"
            "阅知并督促承办单位整改",
        ),
    }


def unit_context(
    sample: SampleDraw, spot: SpotCheckConfig, subject_prefix: str, unit_code: str,
    text_limit: int,
) -> dict[str, Any] | None:  # fmt: skip
    """The notice of one unit: its own sampled items only; None when it has none."""
    items = sample.items
    own = items[items["unit_code"] == unit_code] if len(items) else items
    if not len(own):
        return None
    strata = [s for s in sample.strata if s["unit_code"] == unit_code]
    return {
        **_common(sample, spot, subject_prefix),
        "unit": {"code": unit_code, "name": str(own["unit_name"].iloc[0])},
        "strata": [
            {
                "kind": KIND_NAMES.get(s["item_kind"], s["item_kind"]),
                "population": s["population"],
                "size": s["size"],
            }
            for s in strata
        ],
        "counts": results(own),
        "items": [_item(r, text_limit) for r in own.itertuples()],
        "todo": todo(
            f"配合督办室现场核验贵单位被抽中的 {len(own)} 项，备齐办理记录和佐证材料；"
            "核验不通过的事项将重新开启并督办"
        ),
    }
