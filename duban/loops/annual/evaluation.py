"""The year-end evaluation (年终绩效考评) and annual summary (年总结): settings, the year's
record per unit, the scores, the template contexts and the scores CSV.

`measure_annual()` runs the SQL (duban/queries/annual.py, `unit_rates` of
duban/queries/metrics.py) into an `AnnualSnapshot` of small frames and scores the units with
the pure rules of duban/rules/scoring.py. `summary_context()` (the leadership and the office)
and `unit_context()` (each unit: only its own items) feed templates/mail/annual_*.j2.
docs/evaluation.md describes every component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from duban.config import CityConfig, EvaluationConfig
from duban.notices.todo import todo
from duban.queries import annual as qe
from duban.queries.metrics import CLOCK_EVIDENCE, clock_figures, ticket_sources, unit_rates
from duban.queries.units import directory
from duban.queries.weekly import city_rates
from duban.rules.coverage import RateNote, rate_notes
from duban.rules.formulas import csv_safe
from duban.rules.masking import mask_personal_data
from duban.rules.ranking import GROUP_NAMES, RATES
from duban.rules.scoring import (
    CLOCK_COMPONENTS,
    COMPONENT_NAMES,
    COMPONENTS,
    CREDITS,
    PENALTIES,
    RATE_COMPONENTS,
    Component,
    UnitRecord,
    UnitScore,
    rank_scores,
)

LOOP = "annual"
SCORES_CSV = "评分.csv"  # sent RFC 2231-encoded (duban/notices/mailer.py)
CONTENT_CHARS = 60
KIND_NAMES = {"ticket": "工单", "plan_task": "任务", "policy": "政策"}


# ---------------------------------------------------------------- the year's record


@dataclass
class AnnualSnapshot:
    year: int
    settings: EvaluationConfig
    ledger_steps: list[str]
    step_names: dict[str, str]
    rates: pd.DataFrame  # unit_rates(by="unit") of the year
    plan: pd.DataFrame  # plan_by_unit
    spot_checks: pd.DataFrame  # spot_checks_by_unit
    escalations: pd.DataFrame  # escalations_by_unit
    recurrences: pd.DataFrame  # recurrences_by_unit
    old_items: pd.DataFrame  # old_items_by_unit
    items: dict[str, pd.DataFrame]  # the capped lists behind the components, by component
    scores: list[UnitScore]
    units: dict[str, dict[str, Any]] = field(default_factory=dict)  # code → name, kind, emails
    city_rates: dict[str, Any] = field(default_factory=dict)  # queries.weekly.city_rates
    rate_notes: list[RateNote] = field(default_factory=list)  # rates the data cannot support
    clock: pd.DataFrame = field(default_factory=pd.DataFrame)  # clock_figures of the year

    def missing_clock(self, code: str) -> dict[str, str]:
        """The unit's clock figures the data cannot support, and why (CLOCK_COMPONENTS)."""
        return clock_missing(self.clock, code)

    @property
    def period(self) -> str:
        return str(self.year)

    @property
    def ranked(self) -> list[UnitScore]:
        return [s for s in self.scores if s.rank is not None]

    def recipients(self, code: str) -> list[str]:
        unit = self.units.get(code)
        return list(unit["emails"] or []) if unit and unit["active"] else []

    def active(self, code: str) -> bool:
        """An active unit gets its notice, with an address or without (then it is one
        refused delivery, counted and listed: duban/notices/outbox.py NO_RECIPIENT)."""
        unit = self.units.get(code)
        return bool(unit and unit["active"])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _opt(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _indexed(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(row["unit"]): row for row in frame.to_dict(orient="records")}


# Why a clock figure is missing (docs/clock.md "The figures"): the year's data carries no
# event of its kind at all, or the unit has none of its denominator.
_NO_EVENTS = {"returned": "全年无退单记录", "redo": "全年无重办记录",
              "extension_approved": "全年无批准延期记录"}  # fmt: skip
_CLOCK_FIGURE = {"first_time_rate": "first_time_rate", "return_rate": "return_rate",
                 "redo_rate": "redo_rate", "extensions": "extensions_per_item"}  # fmt: skip
_NO_BASE = {"first_time_rate": "本单位全年无办结工单", "return_rate": "本单位全年无派发工单",
            "redo_rate": "本单位全年无办结工单", "extensions": "本单位全年无工单"}  # fmt: skip


def clock_missing(clock: pd.DataFrame, code: str) -> dict[str, str]:
    """component -> why the unit's clock figure is missing (no value, no points), for the
    figures of CLOCK_COMPONENTS the year's data cannot support for the unit."""
    rows = clock[clock["unit"] == code] if len(clock) else clock
    row = rows.iloc[0].to_dict() if len(rows) else {}
    out: dict[str, str] = {}
    for key in CLOCK_COMPONENTS:
        column = _CLOCK_FIGURE[key]
        value = row.get(column)
        if value is not None and not _missing(value):
            continue
        evidence = CLOCK_EVIDENCE[column]
        measured = len(clock) and not clock[column].isna().all()
        out[key] = _NO_BASE[key] if measured else _NO_EVENTS[evidence]
    return out


def records_of(
    units: dict[str, dict[str, Any]],
    rates: pd.DataFrame,
    plan: pd.DataFrame,
    spot_checks: pd.DataFrame,
    escalations: pd.DataFrame,
    recurrences: pd.DataFrame,
    old_items: pd.DataFrame,
    clock: pd.DataFrame | None = None,
) -> list[UnitRecord]:
    """One `UnitRecord` per active unit (a unit with no record at all has no rates and zero
    counts), from the per-unit aggregates; `clock`: `clock_figures` of the year (its rates,
    and the approved extensions as a count; missing where the data cannot tell)."""
    clock = pd.DataFrame(columns=["unit"]) if clock is None else clock
    r, p, s = _indexed(rates), _indexed(plan), _indexed(spot_checks)
    c = _indexed(clock)
    e, rec, old = _indexed(escalations), _indexed(recurrences), _indexed(old_items)
    out: list[UnitRecord] = []
    for code in sorted(units):
        unit = units[code]
        if not unit["active"]:
            continue
        mine_r, mine_p = r.get(code, {}), p.get(code, {})
        values: dict[str, float | None] = {name: _opt(mine_r.get(name)) for name in RATES}
        values["plan_task_completion"] = _opt(mine_p.get("task_completion"))
        values["policy_issuance"] = _opt(mine_p.get("policy_issuance"))
        mine_c = c.get(code, {})
        for name in ("first_time_rate", "return_rate", "redo_rate"):
            values[name] = _opt(mine_c.get(name))
        measured = _opt(mine_c.get("extensions_per_item")) is not None
        counts: dict[str, int | None] = {
            "spot_check_failures": int(s.get(code, {}).get("failed", 0)),
            "escalations": int(e.get(code, {}).get("steps", 0)),
            "recurrences": int(rec.get(code, {}).get("items", 0)),
            "old_items_closed": int(old.get(code, {}).get("items", 0)),
            "extensions": int(mine_c.get("extensions") or 0) if measured else None,
        }
        out.append(
            UnitRecord(
                code=code, name=str(unit["name"]), kind=str(unit["kind"]),
                tickets=int(mine_r.get("tickets", 0)), rates=values, counts=counts,
                plan_items=int(mine_p.get("tasks", 0)) + int(mine_p.get("policies", 0)),
            )
        )  # fmt: skip
    return out


def measure_annual(engine: Engine, config: CityConfig, year: int) -> AnnualSnapshot:
    settings = config.evaluation
    metrics = config.metrics
    steps = [s.step for s in config.escalation.steps if s.trigger == "overdue"]
    response_hours = {lv.level: lv.response_hours for lv in config.urgency.levels}
    start, end = qe.year_bounds(year)
    days = settings.old_items_closed.long_overdue_days
    limit = settings.list_limit
    with engine.connect() as conn:
        rates = unit_rates(
            conn, start, end, response_hours, metrics.basically_satisfied_weight, by="unit",
            lacking=config.sources_lacking,
        )  # fmt: skip
        plan = qe.plan_by_unit(conn, year)
        spot = qe.spot_checks_by_unit(conn, year)
        esc = qe.escalations_by_unit(conn, year, steps)
        rec = qe.recurrences_by_unit(conn, year)
        old = qe.old_items_by_unit(conn, year, steps, days)
        items = {
            "old_items_closed": qe.old_items(conn, year, steps, days, limit),
            "spot_check_failures": qe.spot_check_failure_items(conn, year, limit),
            "escalations": qe.escalation_items(conn, year, steps, limit),
            "recurrences": qe.recurrence_items(conn, year, limit),
        }
        names = config.units.display_names()  # a shared name with its parent's
        units = {
            u.code: {"name": names.get(u.code, u.name),
                     "kind": str(getattr(u.kind, "value", u.kind)),
                     "emails": u.emails or [], "active": u.active}
            for u in directory(conn)
        }  # fmt: skip
        city = city_rates(conn, start, end, response_hours, metrics.basically_satisfied_weight,
                          config.sources_lacking)  # fmt: skip
        notes = rate_notes(config.sources_lacking, ticket_sources(conn, start, end))
        clock = clock_figures(conn, start, end)
    records = records_of(units, rates, plan, spot, esc, rec, old, clock)
    scores = rank_scores(
        records,
        settings.rule(),
        peer_groups=metrics.peer_groups,
        min_tickets=settings.min_tickets_to_rank,
        top_named=settings.top_named,
        bottom_named=settings.bottom_named,
    )
    return AnnualSnapshot(
        year=year, settings=settings, ledger_steps=steps,
        step_names={s.step: s.name for s in config.escalation.steps}, rates=rates, plan=plan,
        spot_checks=spot, escalations=esc, recurrences=rec, old_items=old, items=items,
        scores=scores, units=units, city_rates=city, rate_notes=notes, clock=clock,
    )  # fmt: skip


# ---------------------------------------------------------------- the scores CSV


def _unmeasured(c: Component) -> bool:
    """A component without data: no value, no points (a rate's weight went to the others)."""
    return c.value is None


def scores_frame(snap: AnnualSnapshot) -> pd.DataFrame:
    """Every unit's score: its place, and per component its value, weight and points."""
    rows: list[dict[str, Any]] = []
    for s in snap.scores:
        row: dict[str, Any] = {
            "year": snap.year, "group": s.group or "", "rank": s.rank, "group_size": s.group_size,
            "unit": s.code, "unit_name": s.name, "kind": s.kind, "tickets": s.tickets,
        }  # fmt: skip
        for c in s.components:
            row[f"{c.key}_value"] = c.value
            row[f"{c.key}_weight"] = round(c.weight, 6)
            # A rate the data lacks: empty cells, not 0 points (its weight went to the others).
            row[f"{c.key}_points"] = None if _unmeasured(c) else c.points
        missing = snap.missing_clock(s.code)
        why = "；".join(f"{COMPONENT_NAMES[k]}：{text}" for k, text in missing.items())
        row |= {"total": s.total, "top": s.top, "bottom": s.bottom,
                "not_ranked": s.not_ranked or "", "missing": why}  # fmt: skip
        rows.append(row)
    columns = ["year", "group", "rank", "group_size", "unit", "unit_name", "kind", "tickets"]
    columns += [f"{k}_{part}" for k in COMPONENTS for part in ("value", "weight", "points")]
    columns += ["total", "top", "bottom", "not_ranked", "missing"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


# The scores CSV's Chinese headers: the columns of `scores_frame`, in its order.
SCORE_HEADERS: dict[str, str] = {
    "year": "年度", "group": "考评组", "rank": "组内排名", "group_size": "组内单位数",
    "unit": "单位编码", "unit_name": "单位", "kind": "单位类型", "tickets": "工单数",
    **{f"{k}_{part}": f"{COMPONENT_NAMES[k]}{zh}" for k in COMPONENTS
       for part, zh in (("value", "·数值"), ("weight", "·权重"), ("points", "·得分"))},
    "total": "总分", "top": "排名前列", "bottom": "排名靠后", "not_ranked": "不参与排名原因",
    "missing": "无数据的指标及原因",
}  # fmt: skip


def write_scores_csv(snap: AnnualSnapshot, path: Path) -> Path:
    """The scores as CSV (UTF-8 with a BOM, for Excel) with Chinese headers (SCORE_HEADERS),
    written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        out.write("\ufeff")
        frame = scores_frame(snap).map(csv_safe)  # no formula from data
        frame.rename(columns=SCORE_HEADERS).to_csv(out, index=False, na_rep="", lineterminator="\n")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- contexts


def _fmt_value(kind: str, value: float | None) -> str:
    if value is None:
        return "—（无数据）"
    return f"{value:.1f}" if kind == "rate" else f"{int(value)} 项"


def _fmt_weight(kind: str, weight: float) -> str:
    if kind == "rate":
        return f"{100 * weight:.1f}%"
    return f"{weight:+.2f} 分/项"


def _component_rows(s: UnitScore, missing: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The components as the notices show them; `missing`: why a clock figure has no value
    (`clock_missing`), shown in its place."""
    why = missing or {}

    def value(c: Component) -> str:
        if c.value is None and c.key in why:
            return f"—（无数据：{why[c.key]}）"
        return _fmt_value(c.kind, c.value)

    return [
        {
            "key": c.key, "name": c.name, "kind": c.kind, "value": value(c),
            "weight": "—" if _unmeasured(c) else _fmt_weight(c.kind, c.weight),
            "points": "—" if _unmeasured(c) else f"{c.points:.2f}",
            "cap": None if c.cap is None or c.cap == 0 else f"{c.cap:g}", "capped": c.capped,
            # a rate of the block without data (its weight went to the others)
            "missing": _unmeasured(c) and c.key not in CLOCK_COMPONENTS,
        }
        for c in s.components
    ]  # fmt: skip


def _clock_cells(s: UnitScore) -> dict[str, str]:
    """The clock's figures of a unit for the ranking tables: "—" where the data lacks them."""
    out: dict[str, str] = {}
    for key in CLOCK_COMPONENTS:
        v = s.component(key).value
        out[key] = "—" if v is None else (f"{int(v)}" if key == "extensions" else f"{v:.1f}%")
    return out


def _block_sums(s: UnitScore) -> dict[str, str]:
    def total(keys: tuple[str, ...]) -> float:
        return round(sum(c.points for c in s.components if c.key in keys), 2)

    return {
        "rates": f"{total(RATE_COMPONENTS):.2f}",
        "penalties": f"{total(PENALTIES):.2f}",
        "credit": f"{total(CREDITS):.2f}",
    }


def _score_row(s: UnitScore) -> dict[str, Any]:
    return {
        "code": s.code, "name": s.name, "kind": s.kind, "rank": s.rank,
        "group_size": s.group_size, "tickets": s.tickets, "total": f"{s.total:.2f}",
        "top": s.top, "bottom": s.bottom, "not_ranked": s.not_ranked or "", **_block_sums(s),
        "clock": _clock_cells(s),
    }  # fmt: skip


def _groups(snap: AnnualSnapshot) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for s in snap.scores:
        if s.group is None:
            continue
        g = groups.setdefault(
            s.group,
            {"key": s.group, "name": GROUP_NAMES.get(s.group, s.group), "ranked": [],
             "unranked": [], "top": [], "bottom": []},
        )  # fmt: skip
        row = _score_row(s)
        (g["ranked"] if s.rank is not None else g["unranked"]).append(row)
        if s.top:
            g["top"].append(row)
        if s.bottom:
            g["bottom"].append(row)
    return list(groups.values())


def _sum(frame: pd.DataFrame, column: str) -> int:
    return int(frame[column].sum()) if len(frame) else 0


def city_figures(snap: AnnualSnapshot) -> dict[str, Any]:
    """The city-wide figures of the year: counts from the per-unit aggregates, the rates over
    every ticket without those of sources that lack their data (`city_rates`)."""
    r = snap.rates
    tickets = _sum(r, "tickets")
    tasks, policies = _sum(snap.plan, "tasks"), _sum(snap.plan, "policies")
    city = snap.city_rates
    return {
        "tickets": tickets,
        "response_rate": city.get("response_rate"),
        "on_time_rate": city.get("on_time_rate"),
        "resolved": _sum(r, "resolved"),
        "resolution_rate": city.get("resolution_rate"),
        "satisfaction_rate": city.get("satisfaction_rate"),
        "units_ranked": len(snap.ranked),
        "plan_tasks": tasks,
        "plan_tasks_done": _sum(snap.plan, "tasks_done"),
        "policies": policies,
        "policies_issued": _sum(snap.plan, "policies_issued"),
        "spot_checks": _sum(snap.spot_checks, "checked"),
        "spot_check_failures": _sum(snap.spot_checks, "failed"),
        "escalation_steps": _sum(snap.escalations, "steps"),
        "recurrences": _sum(snap.recurrences, "items"),
        "old_items_closed": _sum(snap.old_items, "items"),
        "old_items_on_ledger": _sum(snap.old_items, "on_ledger"),
        "old_items_long_overdue": _sum(snap.old_items, "long_overdue"),
    }


def _weights(snap: AnnualSnapshot) -> dict[str, Any]:
    s = snap.settings
    return {
        "rates": [
            {"name": COMPONENT_NAMES[k], "weight": float(s.rate_weights.get(k, 0.0))}
            for k in RATE_COMPONENTS
        ],
        "per_item": [
            {
                "name": COMPONENT_NAMES[k],
                "points": getattr(s, k).points_per_item,
                "cap": getattr(s, k).cap,
                "sign": "-" if k in PENALTIES else "+",
            }
            for k in (*PENALTIES, *CREDITS)
        ],
        "long_overdue_days": s.old_items_closed.long_overdue_days,
    }


def _common(config: CityConfig, snap: AnnualSnapshot) -> dict[str, Any]:
    return {
        "year": snap.year,
        "subject_prefix": config.mail.subject_prefix,
        "generated_for": f"年终考评 {snap.year}",
        "weights": _weights(snap),
        "ledger_step_names": "、".join(snap.step_names.get(s, s) for s in snap.ledger_steps),
        "rate_notes": [n.text for n in snap.rate_notes],
    }


def summary_context(config: CityConfig, snap: AnnualSnapshot, csv_name: str) -> dict[str, Any]:
    """The annual summary (年总结) for the leadership and the office: the ranking of every peer
    group, its top and bottom units, the city's figures; the full scores in the CSV."""
    return {
        **_common(config, snap),
        "groups": _groups(snap),
        "city": city_figures(snap),
        "csv_name": csv_name,
        "todo": todo(
            f"审阅{snap.year}年度考评结果（各单位得分明细见附件《{csv_name}》），"
            "对排名靠后的单位约谈督导"
        ),
    }


def _text(value: Any) -> str:
    """Citizen text for a notice: masked, shortened (autoescape does the escaping)."""
    text = mask_personal_data(None if _missing(value) else str(value))
    return text if len(text) <= CONTENT_CHARS else text[:CONTENT_CHARS] + "…"


def _mine(frame: pd.DataFrame, code: str) -> list[dict[str, Any]]:
    if not len(frame):
        return []
    rows = frame[frame["unit"] == code].to_dict(orient="records")
    return [{str(k): (None if _missing(v) else v) for k, v in row.items()} for row in rows]


def _unit_items(snap: AnnualSnapshot, code: str, s: UnitScore) -> dict[str, Any]:
    old = [
        {"external_id": r["external_id"], "category": r["category"], "due_at": r["due_at"],
         "closed_at": r["closed_at"], "days_late": f"{max(0.0, r['days_late'] or 0.0):.0f}",
         "on_ledger": bool(r["on_ledger"]), "long_overdue": bool(r["long_overdue"]),
         "content": _text(r["content"])}
        for r in _mine(snap.items["old_items_closed"], code)
    ]  # fmt: skip
    spot = [
        {"quarter": r["quarter"], "kind": KIND_NAMES.get(str(r["item_kind"]), r["item_kind"]),
         "ref": r["item_ref"] or "", "note": _text(r["note"]), "checked_at": r["checked_at"]}
        for r in _mine(snap.items["spot_check_failures"], code)
    ]  # fmt: skip
    esc = [
        {"kind": KIND_NAMES.get(str(r["item_kind"]), r["item_kind"]), "ref": r["item_ref"] or "",
         "step": snap.step_names.get(str(r["step"]), r["step"]), "due_on": r["due_on"],
         "round": int(r["round"]) if r.get("round") is not None else 1}
        for r in _mine(snap.items["escalations"], code)
    ]  # fmt: skip
    rec = [
        {"external_id": r["external_id"], "category": r["category"], "closed_at": r["closed_at"],
         "recurrences": int(r["recurrences"]), "content": _text(r["content"])}
        for r in _mine(snap.items["recurrences"], code)
    ]  # fmt: skip

    def total(key: str) -> int:
        return int(s.component(key).value or 0)

    return {
        "old_items_closed": {"rows": old, "total": total("old_items_closed")},
        "spot_check_failures": {"rows": spot, "total": total("spot_check_failures")},
        "escalations": {"rows": esc, "total": total("escalations")},
        "recurrences": {"rows": rec, "total": total("recurrences")},
    }


def has_record(s: UnitScore) -> bool:
    """Whether a unit has anything to report for the year (tickets, plan items, counts)."""
    return (
        s.tickets > 0
        or any(c.value is not None and c.value != 0 for c in s.components if c.kind != "rate")
        or any(c.value is not None for c in s.components if c.kind == "rate")
    )


def unit_context(config: CityConfig, snap: AnnualSnapshot, code: str) -> dict[str, Any]:
    """One unit's breakdown: its place, every component (value, weight, points) and the items
    behind its penalties and its credit — its own items only."""
    s = next(x for x in snap.scores if x.code == code)
    rates = _mine(snap.rates, code)
    plan = _mine(snap.plan, code)
    return {
        **_common(config, snap),
        "unit": {"code": code, "name": s.name},
        "own": {
            **_score_row(s),
            "group_name": GROUP_NAMES.get(s.group or "", s.group or ""),
            "components": _component_rows(s, snap.missing_clock(code)),
        },
        "counts": rates[0] if rates else None,
        "plan": plan[0] if plan else None,
        "items": _unit_items(snap, code, s),
        "list_limit": snap.settings.list_limit,
        "todo": todo(
            f"核对本单位{snap.year}年度考评得分明细"
            + ("；排名靠后，请认真分析原因、制定整改措施" if s.bottom else "")
            + "；如有异议，按程序向督办室提出"
        ),
    }


def breakdown_units(snap: AnnualSnapshot) -> list[str]:
    """Units that get their own breakdown: active, with a record (without an address: one
    refused delivery, counted in mail_refused)."""
    return [s.code for s in snap.scores if snap.active(s.code) and has_record(s)]
