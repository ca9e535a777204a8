"""Bringing the city of config/units.yaml and config/problems.yaml into the database.

Units and problems are upserted by code: a re-sync changes what changed and never
duplicates. A unit that disappeared from the config is marked inactive, not deleted,
because tickets and escalations still refer to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.config import CityConfig
from duban.db.models import Problem, Unit


@dataclass
class SyncSummary:
    units_added: int = 0
    units_updated: int = 0
    units_deactivated: int = 0
    problems_added: int = 0
    problems_updated: int = 0

    def line(self) -> str:
        return (
            f"units: {self.units_added} added, {self.units_updated} updated, "
            f"{self.units_deactivated} deactivated; problems: {self.problems_added} added, "
            f"{self.problems_updated} updated"
        )


def sync_city(session: Session, config: CityConfig) -> SyncSummary:
    summary = SyncSummary()
    units_cfg = config.units.units
    problems_cfg = config.problems
    existing = {u.code: u for u in session.scalars(select(Unit))}

    for uc in units_cfg:
        unit = existing.get(uc.code)
        values = {"name": uc.name, "kind": uc.kind, "emails": list(uc.emails), "active": True}
        if unit is None:
            unit = Unit(code=uc.code, **values)
            session.add(unit)
            existing[uc.code] = unit
            summary.units_added += 1
        elif any(getattr(unit, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(unit, k, v)
            summary.units_updated += 1
    session.flush()
    for uc in units_cfg:
        unit = existing[uc.code]
        parent = existing[uc.parent] if uc.parent else None
        supervisor_code = uc.supervisor or uc.parent
        supervisor = existing[supervisor_code] if supervisor_code else None
        new_ids = (parent.id if parent else None, supervisor.id if supervisor else None)
        if (unit.parent_id, unit.supervisor_id) != new_ids:
            unit.parent_id, unit.supervisor_id = new_ids
    configured = {uc.code for uc in units_cfg}
    for code, unit in existing.items():
        if code not in configured and unit.active:
            unit.active = False
            summary.units_deactivated += 1

    problems = {p.code: p for p in session.scalars(select(Problem))}
    for pc in problems_cfg.problems:
        values = {
            "name": pc.name,
            "category": pc.category,
            "approach": pc.approach,
            "year": problems_cfg.year,
            "focus_month": pc.focus_month,
            "lead_unit_id": existing[pc.lead].id,
            "ticket_categories": list(pc.ticket_categories),
        }
        if pc.plan is not None:  # else the plan text comes from the plan workbook
            values["plan"] = pc.plan
        problem = problems.get(pc.code)
        cooperating = [existing[c] for c in pc.cooperating]
        if problem is None:
            problem = Problem(code=pc.code, **values)
            problem.cooperating_units = cooperating
            session.add(problem)
            summary.problems_added += 1
        else:
            changed = any(getattr(problem, k) != v for k, v in values.items())
            if {u.id for u in problem.cooperating_units} != {u.id for u in cooperating}:
                problem.cooperating_units = cooperating
                changed = True
            for k, v in values.items():
                setattr(problem, k, v)
            summary.problems_updated += int(changed)
    session.flush()
    return summary


def unit_lookup(session: Session, config: CityConfig, by: str) -> dict[str, int]:
    """Export value -> unit id: by code, or by name and the configured aliases."""
    ids = {code: unit_id for code, unit_id in session.execute(select(Unit.code, Unit.id))}
    if by == "code":
        return ids
    lookup: dict[str, int] = {}
    for uc in config.units.units:
        if uc.code in ids:
            for name in (uc.name, *uc.aliases):
                lookup[name] = ids[uc.code]
    return lookup


def problem_by_category(session: Session) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for problem in session.scalars(select(Problem)):
        for category in problem.ticket_categories:
            lookup[category] = problem.id
    return lookup
