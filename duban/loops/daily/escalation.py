"""Applying the escalation ladder to the database: each step once per item, in order.

The rules (which step is due when) are in duban.rules.ladder; this module finds the
candidates with SQL, asks the rules, and records new steps with INSERT … ON CONFLICT DO
NOTHING on (item_kind, item_id, step, round), so that a re-run or a parallel run never
records a step twice; a run reports as new only the steps its own INSERT returned
(RETURNING). A run after missed days catches up: every step that became due meanwhile, in
order, with the working day it became due (`due_on`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine

from duban.config import CityConfig
from duban.db import insert_returning
from duban.db.models import Escalation, ItemKind, PlanItemStatus, TicketStatus
from duban.queries import daily as q
from duban.rules.ladder import steps_to_apply
from duban.rules.warnings import blue_cutoff, plan_task_deadline

FIRST_RUN_CATCH_UP_DAYS = 31


@dataclass
class EscalationResult:
    candidates: int = 0
    new_steps: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.new_steps:
            out[row["step"]] = out.get(row["step"], 0) + 1
        return out


def apply_escalations(
    engine: Engine,
    config: CityConfig,
    day: date,
    *,
    last_run_day: date | None,
    dry_run: bool = False,
) -> EscalationResult:
    """Record every ladder step due on or before `day` that is not recorded yet."""
    calendar = config.calendar
    ladder = config.escalation
    steps = ladder.steps
    levels = [lv.level for lv in config.urgency.levels]
    max_blue = max(ladder.warnings.blue_days(lv) for lv in levels)
    latest_deadline = blue_cutoff(day, max_blue, calendar)
    closed_since = datetime.combine(
        last_run_day or day - timedelta(days=FIRST_RUN_CATCH_UP_DAYS), time()
    )
    last_step = steps[-1].step
    result = EscalationResult()
    now = datetime.now()

    @cache
    def due_steps(
        deadline: date, closed_on: date | None, applied: frozenset[str], blue: int
    ) -> list[Any]:
        # Items share few (deadline, closing day, applied steps) combinations: the rule is
        # pure, so one evaluation serves them all (a first run may see 10^5-10^6 items).
        return steps_to_apply(
            deadline=deadline,
            closed_on=closed_on,
            today=day,
            applied=applied,
            steps=steps,
            blue_working_days=blue,
            calendar=calendar,
        )

    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        tickets, ticket_steps = q.ladder_tickets(
            conn,
            due_before=datetime.combine(latest_deadline + timedelta(days=1), time()),
            received_before=datetime.combine(day + timedelta(days=1), time()),
            closed_since=closed_since,
            last_step=last_step,
        )
        for item_id, unit_id, due_at, closed_at, status, urgency, round_ in tickets:
            # the effective deadline (docs/clock.md): steps of this round wait for it
            closed_on = closed_at.date() if status == TicketStatus.closed and closed_at else None
            done_steps = frozenset(ticket_steps.get((item_id, round_), ()))
            blue = ladder.warnings.blue_days(urgency)
            for due in due_steps(due_at.date(), closed_on, done_steps, blue):
                rows.append(_row(ItemKind.ticket, item_id, unit_id, due, now, round_))
        result.candidates += len(tickets)

        tasks, applied = q.ladder_plan_tasks(
            conn,
            last_due_month=latest_deadline.replace(day=1),
            completed_since=closed_since.date(),
        )
        for item_id, unit_id, due_month, status, completed_on in tasks:
            done = status == PlanItemStatus.done
            closed_on = (completed_on or day) if done else None
            done_steps = frozenset(applied.get(item_id, ()))
            blue = ladder.warnings.blue_working_days
            for due in due_steps(plan_task_deadline(due_month), closed_on, done_steps, blue):
                rows.append(_row(ItemKind.plan_task, item_id, unit_id, due, now))
        result.candidates += len(tasks)

    rows.sort(key=lambda r: (r["due_on"], r["level"], r["item_kind"], r["item_id"]))
    result.new_steps = rows
    if not dry_run and rows:
        with engine.begin() as conn:
            inserted = insert_returning(conn, Escalation.__table__, rows, LADDER_KEY)
        # Only what this run recorded: a concurrent run may have recorded some steps first.
        mine = {(getattr(kind, "value", kind), int(item), step, int(round_))
                for kind, item, step, round_ in inserted}  # fmt: skip
        result.new_steps = [
            r for r in rows if (r["item_kind"], r["item_id"], r["step"], r["round"]) in mine
        ]
    return result


# One step of one round of an item's ladder is recorded once (a redo starts round 2).
LADDER_KEY = ["item_kind", "item_id", "step", "round"]


def _row(
    kind: ItemKind, item_id: int, unit_id: int, due: Any, now: datetime, round_: int = 1
) -> dict[str, Any]:
    return {
        "item_kind": kind.value,
        "item_id": item_id,
        "step": due.step,
        "level": due.level,
        "unit_id": unit_id,
        "due_on": due.due_on,
        "applied_at": now,
        "reason": due.reason,
        "round": round_,  # escalations.round = tickets.ladder_round
    }
