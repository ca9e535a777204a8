"""Each unit's own bulletin (月通报): its section, its peer group, the city headline.

A unit's notice holds only what concerns it (docs/monthly-bulletin.md, "Audiences"):

- **its own section**: its tickets, the four rates (响应率, 按时办结率, 解决率, 满意率) and the
  score, its rank in its peer group (or why it is not ranked), the rate that got it named,
  its clock figures, and **its items** — the ledger items it carries at the end of the month
  and the plan tasks it owns that are overdue — listed up to `UNIT_LIST_LIMIT`, counted in
  full;
- **its peer group**: the units it is ranked among (`peer_groups` in config/metrics.yaml),
  with their ranks, rates and scores — never another unit's items;
- **the city headline**: the problem volumes, the plan totals, the hot spots, the streets
  under supervision and the ledger's total (no chart: the office's two charts are as large
  as a unit's whole notice).

The office gets the whole bulletin (report.office_context); its archived copy is the full
record (record.py records its figures).

`split(config, snap)` groups the month's rows by unit once (one pass per frame), so a unit's
context costs the same whatever the size of the city: `Sections.unit(code)` looks its rows
up by code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from duban.config import CityConfig
from duban.loops.monthly import report as r
from duban.notices.todo import todo
from duban.rules.ranking import GROUP_NAMES, RATES, RankedUnit

__all__ = ("UNIT_LIST_LIMIT", "Sections", "split", "unit_context", "unit_todo")

# A unit's own items listed in its notice; the rest are counted (lead units also get the
# whole list in their ledger workbook).
UNIT_LIST_LIMIT = 20
# What the office's context has that no unit's may: every group, every unit's clock figures,
# ledger counts and overdue tasks (a unit's template that asked for them would fail).
OFFICE_ONLY = ("groups", "clock", "overdue_by_unit", "ledger_by_unit")


@dataclass
class Sections:
    """The month's rows grouped by unit, and the peer groups by key."""

    base: dict[str, Any]  # what every unit's notice shares: the city's part, the settings
    groups: dict[str, dict[str, Any]]  # group key → report.groups' group
    group_of: dict[str, str]  # unit code → its group key
    ledger_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ≤ the limit
    ledger_counts: dict[str, int] = field(default_factory=dict)
    overdue_tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ≤ the limit
    overdue_counts: dict[str, int] = field(default_factory=dict)
    clock: dict[str, dict[str, Any]] = field(default_factory=dict)  # unit code → its clock row
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # code → tickets, rates
    ranked: dict[str, RankedUnit] = field(default_factory=dict)  # code → its place

    def group(self, code: str) -> dict[str, Any] | None:
        key = self.group_of.get(code)
        return self.groups.get(key) if key is not None else None


def _by_unit(
    rows: Iterable[dict[str, Any]], column: str, limit: int
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        listed = out.setdefault(str(row[column]), [])
        if len(listed) < limit:
            listed.append(row)
    return out


def _first(frame: pd.DataFrame, column: str, limit: int) -> pd.DataFrame:
    """The first `limit` rows of each value of `column`, in the frame's order."""
    return frame.groupby(column, sort=False).head(limit) if len(frame) else frame


def _counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    if not len(frame):
        return {}
    return {str(k): int(v) for k, v in frame[column].value_counts(sort=False).items()}


def split(
    config: CityConfig,
    snap: r.MonthlySnapshot,
    charts: list[str],
    limit: int = UNIT_LIST_LIMIT,
) -> Sections:
    """The month's rows grouped by unit (one pass over each frame) and what every unit's
    notice shares (`base`: report.common without the office-only keys)."""
    base = {k: v for k, v in r.common(config, snap, charts).items() if k not in OFFICE_ONLY}
    step_names = {st.step: st.name for st in config.escalation.steps}
    groups = {g["key"]: g for g in r.groups(snap)}
    group_of = {u.code: u.group for u in snap.ranking}
    clock = {row["code"]: row for row in r.clock_rows(snap.rates)}
    ledger = [
        {**row, "kind_name": r.KIND_NAMES.get(row["item_kind"], row["item_kind"]),
         "step_name": step_names.get(row["step"], row["step"])}
        for row in r.records(_first(snap.ledger, "unit", limit))
    ]  # fmt: skip
    overdue = [
        {**row, "status_name": r.STATUS_NAMES.get(str(row["status"]), str(row["status"]))}
        for row in r.records(_first(snap.overdue_tasks, "owner_unit", limit))
    ]
    figures = {
        str(row["unit"]): {"tickets": int(row["tickets"]),
                           "rates": {k: r.opt(row[k]) for k in RATES}}
        for row in snap.rates.to_dict(orient="records")
    }  # fmt: skip
    return Sections(
        base=base,
        groups=groups,
        group_of=group_of,
        ledger_items=_by_unit(ledger, "unit", limit),
        ledger_counts=_counts(snap.ledger, "unit"),
        overdue_tasks=_by_unit(overdue, "owner_unit", limit),
        overdue_counts=_counts(snap.overdue_tasks, "owner_unit"),
        clock=clock,
        figures=figures,
        ranked={u.code: u for u in snap.ranking},
    )


def unit_todo(own: dict[str, Any], lead: dict[str, Any] | None, as_of: Any) -> dict[str, Any]:
    """A unit's monthly summary: its ledger items, its overdue tasks, its named rank, its
    ledger workbook."""
    parts = []
    if own.get("named"):
        parts.append(f"针对主要失分指标（{own.get('drag')}）分析原因、制定整改措施")
    if own["ledger_items"]:
        parts.append(f"办结月末仍挂账的 {own['ledger_items']} 项事项")
    if own["overdue_tasks"]:
        parts.append(f"推进逾期未完成的 {own['overdue_tasks']} 项任务")
    if lead and lead.get("workbook"):
        parts.append(f"核对附件台账《{lead['workbook']}》，更新任务进度和政策出台情况后回传督办室")
    if not parts:
        return todo("阅知本月通报，保持工作成效")
    return todo("；".join(parts), f"下期月通报前（{r.next_month_end(as_of):%Y-%m-%d}）")


def unit_context(
    snap: r.MonthlySnapshot,
    sections: Sections,
    code: str,
    workbook: str | None = None,
) -> dict[str, Any]:
    """One unit's bulletin: its own section (figures, rank, items), its peer group
    (`group`, rendered once per group as `peers_html`) and the city's part (`base`), and —
    for a lead unit — the progress of the problems it leads and its ledger workbook."""
    unit = snap.units[code]
    mine = sections.ranked.get(code)
    lead = None
    if code in snap.lead_units:
        problems = snap.plan[snap.plan["lead_unit"] == code]
        lead = {"problems": r.records(problems), "workbook": workbook}
    own = {
        **(r.unit_row(mine) if mine else {"rank": None, "score": None,
                                          "not_ranked": "本单位不参与同类排名"}),
        "group_name": GROUP_NAMES.get(mine.group, mine.group) if mine else "",
        "figures": sections.figures.get(code),
        "clock": sections.clock.get(code),
        "ledger_items": sections.ledger_counts.get(code, 0),
        "ledger_list": sections.ledger_items.get(code, []),
        "overdue_tasks": sections.overdue_counts.get(code, 0),
        "task_list": sections.overdue_tasks.get(code, []),
    }  # fmt: skip
    return {
        **sections.base,
        "audience": "unit",
        "unit": {"code": code, "name": unit["name"]},
        "own": own,
        "lead": lead,
        "group": sections.group(code),
        "todo": unit_todo(own, lead, snap.period.as_of),
    }
