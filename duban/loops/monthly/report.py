"""The monthly bulletin (月通报): the month's figures and the template contexts.

`measure_monthly()` runs the SQL (duban/queries/metrics.py, duban/queries/monthly.py) into a
`MonthlySnapshot` of small frames and ranks the units (duban/rules/ranking.py);
`office_context()` turns it into the office's context of templates/mail/monthly_bulletin.*.j2
(the whole bulletin), sections.py `unit_context()` into each unit's (its own section, its
peer group, the city's part). The bulletin is a notice among units: aggregate figures, unit
and street names, plan items and each unit's own ledger items — never a citizen's text.
docs/monthly-bulletin.md describes every section.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from duban.config import CityConfig, MetricsConfig
from duban.notices.todo import todo
from duban.periods import MonthPeriod
from duban.queries import metrics as qm
from duban.queries.metrics import metrics_frame
from duban.queries.monthly import open_ledger, open_ledger_by_unit
from duban.queries.units import directory
from duban.rules.coverage import RateNote, rate_notes, unsupported_rates
from duban.rules.exit_rule import StreetMonth, exit_verdict
from duban.rules.exit_rule import as_dict as exit_as_dict
from duban.rules.ranking import GROUP_NAMES, RATE_NAMES, RATES, RankedUnit, UnitRates, rank_units

LOOP = "monthly"
LIST_LIMIT = 200
KIND_NAMES = {"ticket": "工单", "plan_task": "任务", "policy": "政策"}
STATUS_NAMES = {"planned": "未开始", "in_progress": "推进中", "done": "已完成"}


@dataclass
class MonthlySnapshot:
    period: MonthPeriod
    settings: MetricsConfig
    rates: pd.DataFrame  # unit_rates(by="unit") of the month
    ranking: list[RankedUnit]
    volumes: pd.DataFrame  # problem_volumes of the month, problems of its year
    headline: str
    headline_en: str
    plan: pd.DataFrame  # plan_progress as of the month's last day
    overdue_tasks: pd.DataFrame
    hot_spots: pd.DataFrame
    ledger: pd.DataFrame  # open_ledger as of the month's last day
    ledger_by_unit: pd.DataFrame
    ledger_steps: list[str]
    units: dict[str, dict[str, Any]] = field(default_factory=dict)  # code → name, kind, emails
    supervised: list[dict[str, Any]] = field(default_factory=list)  # exit-rule verdicts
    rate_notes: list[RateNote] = field(default_factory=list)  # rates the data cannot support

    @property
    def lead_units(self) -> list[str]:
        """Lead units (主责单位) of the problems in the plan table, by code."""
        return sorted({str(u) for u in self.plan["lead_unit"]}) if len(self.plan) else []

    @property
    def ranked_units(self) -> list[str]:
        return [r.code for r in self.ranking if r.rank is not None]

    def recipients(self, code: str) -> list[str]:
        unit = self.units.get(code)
        return list(unit["emails"] or []) if unit and unit["active"] else []

    def active(self, code: str) -> bool:
        """An active unit gets its notice, with an address or without (then it is one
        refused delivery, counted and listed: duban/notices/outbox.py NO_RECIPIENT)."""
        unit = self.units.get(code)
        return bool(unit and unit["active"])


def ledger_steps(config: CityConfig) -> list[str]:
    """The ladder's steps that put an overdue item on the city ledger: those triggered by
    lateness in working days (挂账, 通报 in config/escalation.yaml), in ladder order."""
    return [s.step for s in config.escalation.steps if s.trigger == "overdue"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def opt(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def supervised_streets(
    engine: Engine,
    config: CityConfig,
    settings: MetricsConfig,
    period: MonthPeriod,
    unmeasured: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Each street under municipal supervision, this month against the previous one, with
    the verdict of the exit rule 降量、提率、去低 (duban/rules/exit_rule.py); the rates in
    `unmeasured` (the month's exports carry no data for them) take no part."""
    rule = settings.supervised_streets
    if not rule.streets:
        return []
    last_day = period.start - timedelta(days=1)
    frames = [
        metrics_frame(engine, config, "street", start, end).set_index("street")
        for start, end in ((period.start, period.as_of), (last_day.replace(day=1), last_day))
    ]

    def month(frame: pd.DataFrame, street: str) -> StreetMonth:
        if street not in frame.index:
            return StreetMonth(0, dict.fromkeys(RATES))
        row = frame.loc[street]
        return StreetMonth(int(row["tickets"]), {name: opt(row[name]) for name in RATES})

    out = []
    for street in rule.streets:
        this, last = month(frames[0], street), month(frames[1], street)
        verdict = exit_verdict(
            street, this, last, volume_fall=rule.volume_fall, rates=tuple(rule.rates),
            rate_floor=rule.rate_floor, min_satisfaction=rule.min_satisfaction,
            unmeasured=unmeasured,
        )  # fmt: skip
        out.append(exit_as_dict(verdict, this, last))
    return out


def measure_monthly(engine: Engine, config: CityConfig, period: MonthPeriod) -> MonthlySnapshot:
    settings = config.metrics
    steps = ledger_steps(config)
    rates = metrics_frame(engine, config, "unit", period.start, period.as_of)
    period_bounds = (period.start, period.end)
    inputs = [
        UnitRates(
            code=str(row["unit"]), name=str(row["unit_name"]), kind=str(row["kind"]),
            tickets=int(row["tickets"]), rates={name: opt(row[name]) for name in RATES},
        )
        for row in rates.to_dict(orient="records")
    ]  # fmt: skip
    ranking = rank_units(
        inputs,
        settings.score_weights,
        min_tickets=settings.min_tickets_to_rank,
        lowest_named=settings.lowest_named,
        peer_groups=settings.peer_groups,
    )
    with engine.connect() as conn:
        volumes = qm.problem_volumes(conn, period.start, year=period.start.year)
        plan = qm.plan_progress(conn, period.as_of, period.start.year)
        overdue = qm.overdue_plan_tasks(conn, period.as_of)
        spots = qm.hot_spots(conn, period.start, period.end, settings.hot_spots_top_n)
        ledger = open_ledger(conn, period.as_of, steps)
        ledger_units = open_ledger_by_unit(conn, period.as_of, steps, ledger)
        units = {
            u.code: {"name": u.name, "kind": str(u.kind), "emails": u.emails or [],
                     "active": u.active}
            for u in directory(conn)
        }  # fmt: skip
        notes = rate_notes(config.sources_lacking, qm.ticket_sources(conn, *period_bounds))
    supervised = supervised_streets(engine, config, settings, period, unsupported_rates(notes))
    return MonthlySnapshot(
        rate_notes=notes,
        supervised=supervised,
        period=period,
        settings=settings,
        rates=rates,
        ranking=ranking,
        volumes=volumes,
        headline=qm.headline(volumes, settings.fall_threshold),
        headline_en=qm.headline_en(volumes, settings.fall_threshold),
        plan=plan,
        overdue_tasks=overdue,
        hot_spots=spots,
        ledger=ledger,
        ledger_by_unit=ledger_units,
        ledger_steps=steps,
        units=units,
    )


# ---------------------------------------------------------------- contexts


def unit_row(r: RankedUnit) -> dict[str, Any]:
    return {
        "code": r.code,
        "name": r.name,
        "rank": r.rank,
        "group_size": r.group_size,
        "tickets": r.tickets,
        "score": r.score,
        "rates": {name: r.rates.get(name) for name in RATES},
        "named": r.named,
        "drag": RATE_NAMES.get(r.drag or "", ""),
        "drag_value": r.drag_value,
        "drag_mean": r.drag_mean,
        "not_ranked": r.not_ranked or "",
    }


def groups(snap: MonthlySnapshot) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for r in snap.ranking:
        g = groups.setdefault(
            r.group,
            {"key": r.group, "name": GROUP_NAMES.get(r.group, r.group), "ranked": [],
             "unranked": [], "named": []},
        )  # fmt: skip
        row = unit_row(r)
        (g["ranked"] if r.rank is not None else g["unranked"]).append(row)
        if r.named:
            g["named"].append(row)
    return list(groups.values())


def records(frame: pd.DataFrame, limit: int | None = None) -> list[dict[str, Any]]:
    rows = frame.head(limit) if limit is not None else frame
    return [
        {str(k): (None if _missing(v) else v) for k, v in row.items()}
        for row in rows.to_dict(orient="records")
    ]


def clock_rows(rates: pd.DataFrame) -> list[dict[str, Any]]:
    """The clock's figures of each unit with tickets (docs/clock.md "The figures"): 退单率,
    重办率, 一次解决率, extensions (None where the month's data carries no such events) and
    the tickets an upheld appeal took out of the rates and the ranking."""
    if "return_rate" not in rates:
        return []
    shown = rates[(rates["tickets"] > 0) | (rates["not_evaluated"] > 0)]
    out = []
    for row in records(shown):
        measured = row["extensions_per_item"] is not None
        out.append({
            "code": row["unit"], "name": row["unit_name"],
            "not_evaluated": int(row["not_evaluated"]),
            "return_rate": row["return_rate"], "redo_rate": row["redo_rate"],
            "first_time_rate": row["first_time_rate"],
            "extensions": int(row["extensions"]) if measured else None,
            "extended_items": int(row["extended_items"]) if measured else None,
        })  # fmt: skip
    figures = ("return_rate", "redo_rate", "first_time_rate", "extensions")
    # nothing to say when the month's data has no clock events and no ticket is excluded
    if not any(r[f] is not None for r in out for f in figures) and not any(
        r["not_evaluated"] for r in out
    ):
        return []
    return out


def _plan_totals(plan: pd.DataFrame) -> dict[str, Any]:
    names = ("tasks", "tasks_due", "tasks_done", "tasks_done_due", "policies", "policies_issued")
    sums = {c: int(plan[c].sum()) if len(plan) else 0 for c in names}
    return {
        **sums,
        "completion_to_date": sums["tasks_done_due"] / sums["tasks_due"]
        if sums["tasks_due"]
        else None,
        "completion_year": sums["tasks_done"] / sums["tasks"] if sums["tasks"] else None,
        "issuance_rate": sums["policies_issued"] / sums["policies"] if sums["policies"] else None,
    }


def common(config: CityConfig, snap: MonthlySnapshot, charts: list[str]) -> dict[str, Any]:
    p = snap.period
    s = snap.settings
    step_names = {st.step: st.name for st in config.escalation.steps}
    overdue = snap.overdue_tasks
    overdue_by_unit = (
        overdue.groupby(["owner_unit", "owner_unit_name"]).size().reset_index(name="tasks")
        .sort_values(["tasks", "owner_unit"], ascending=[False, True])
        if len(overdue) else pd.DataFrame(columns=["owner_unit", "owner_unit_name", "tasks"])
    )  # fmt: skip
    return {
        "month": p.label,
        "month_title": p.title,
        "start": p.start,
        "as_of": p.as_of,
        "subject_prefix": config.mail.subject_prefix,
        "generated_for": f"月通报 {p.label}",
        "charts": charts,
        "headline": snap.headline,
        "headline_en": snap.headline_en,
        "fall_threshold": s.fall_threshold,
        "weights": [
            {"name": RATE_NAMES[n], "weight": float(s.score_weights.get(n, 0.0))} for n in RATES
        ],
        "min_tickets": s.min_tickets_to_rank,
        "lowest_named": s.lowest_named,
        "rate_names": [RATE_NAMES[n] for n in RATES],
        "rate_keys": list(RATES),
        "rate_notes": [n.text for n in snap.rate_notes],
        "groups": groups(snap),
        "clock": clock_rows(snap.rates),
        "volumes": records(snap.volumes),
        "plan": records(snap.plan),
        "plan_totals": _plan_totals(snap.plan),
        "overdue_total": len(overdue),
        "overdue_by_unit": records(overdue_by_unit),
        "hot_spots": records(snap.hot_spots),
        "supervised": snap.supervised,
        "ledger_steps": [{"step": st, "name": step_names.get(st, st)} for st in snap.ledger_steps],
        "ledger_by_unit": records(snap.ledger_by_unit),
        "ledger_total": len(snap.ledger),
    }


def office_context(config: CityConfig, snap: MonthlySnapshot, charts: list[str]) -> dict[str, Any]:
    """The full bulletin for the supervision office: everything, with the item lists."""
    step_names = {st.step: st.name for st in config.escalation.steps}
    ledger = [
        {**row, "kind_name": KIND_NAMES.get(row["item_kind"], row["item_kind"]),
         "step_name": step_names.get(row["step"], row["step"])}
        for row in records(snap.ledger, LIST_LIMIT)
    ]  # fmt: skip
    overdue = [
        {**row, "status_name": STATUS_NAMES.get(str(row["status"]), str(row["status"]))}
        for row in records(snap.overdue_tasks, LIST_LIMIT)
    ]
    return {
        **common(config, snap, charts),
        "audience": "office",
        "own": None,
        "lead": None,
        "ledger_items": ledger,
        "overdue_tasks": overdue,
        "list_limit": LIST_LIMIT,
        "todo": todo(
            f"督办月末仍挂账的 {len(snap.ledger)} 项事项和逾期未完成的“每月一题”任务 "
            f"{len(snap.overdue_tasks)} 项；对排名靠后、被通报的单位跟踪整改",
            f"下期月通报前（{next_month_end(snap.period.as_of):%Y-%m-%d}）",
        ),
    }


def next_month_end(as_of: date) -> date:
    """The last day of the month after `as_of`'s: when the next bulletin measures again."""
    first = (as_of.replace(day=1) + timedelta(days=32)).replace(day=1)
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
