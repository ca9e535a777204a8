"""The SQL of the monthly bulletin (月通报) beyond duban/queries/metrics.py: the city ledger
(挂账) of overdue items the daily loop escalated that are still open at the end of the month.

An item is **on the ledger as of** day `as_of` when it has at least one escalation step among
`steps` (config/escalation.yaml: ``ledger`` 挂账, ``bulletin`` 通报) that became due on or
before `as_of` (`escalations.due_on <= as_of`), and it is **still open** at the end of that
day:

- a ticket: `closed_at` is NULL or later than `as_of` (`closed_at >= as_of + 1 day 00:00`);
- a plan task (policy): not done (issued) as of `as_of`, as in `plan_progress`: status
  `done` with `completed_on` (`issued_on`) on or before `as_of` or not recorded is done.

Its **step** is the highest of those steps (by the ladder's `level`), with that step's unit
and reason; `since` is the day its first such step became due. See docs/monthly-bulletin.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, func, or_, select

from duban.models import Escalation, ItemKind, PlanTask, Policy, Problem, Ticket, Unit
from duban.queries.metrics import _done_by, _frame, _ordered, _plain, _typed

E = Escalation.__table__.c
T = Ticket.__table__.c
U = Unit.__table__.c
PT = PlanTask.__table__.c
PO = Policy.__table__.c

LEDGER_COLUMNS: tuple[str, ...] = (
    "unit", "unit_name", "unit_kind", "item_kind", "item_id", "item_ref", "problem", "title",
    "step", "level", "since", "reason",
)  # fmt: skip


def _open_items(as_of: date, steps: Sequence[str]) -> Any:
    """One row per open item on the ledger as of `as_of`: its highest step's row."""
    end_of_day = datetime.combine(as_of + timedelta(days=1), time())
    top = (
        select(
            E.item_kind,
            E.item_id,
            func.max(E.level).label("level"),
            func.min(E.due_on).label("since"),
        )
        .where(E.step.in_(list(steps)), E.due_on <= as_of)
        .group_by(E.item_kind, E.item_id)
        .subquery("top")
    )
    step = Escalation.__table__.alias("step")
    problem_of_task = Problem.__table__.alias("task_problem")
    problem_of_policy = Problem.__table__.alias("policy_problem")
    is_ticket = top.c.item_kind == ItemKind.ticket.value
    is_task = top.c.item_kind == ItemKind.plan_task.value
    is_policy = top.c.item_kind == ItemKind.policy.value
    source = (
        top.join(
            step,
            and_(
                step.c.item_kind == top.c.item_kind,
                step.c.item_id == top.c.item_id,
                step.c.level == top.c.level,
                step.c.step.in_(list(steps)),
            ),
        )
        .join(Unit.__table__, U.id == step.c.unit_id)
        .outerjoin(Ticket.__table__, and_(is_ticket, T.id == top.c.item_id))
        .outerjoin(PlanTask.__table__, and_(is_task, PT.id == top.c.item_id))
        .outerjoin(problem_of_task, problem_of_task.c.id == PT.problem_id)
        .outerjoin(Policy.__table__, and_(is_policy, PO.id == top.c.item_id))
        .outerjoin(problem_of_policy, problem_of_policy.c.id == PO.problem_id)
    )
    still_open = or_(
        and_(is_ticket, T.id.is_not(None), or_(T.closed_at.is_(None), T.closed_at >= end_of_day)),
        and_(is_task, PT.id.is_not(None), ~_done_by(PT.status, PT.completed_on, as_of)),
        and_(is_policy, PO.id.is_not(None), ~_done_by(PO.status, PO.issued_on, as_of)),
    )
    return source, still_open, top, step, (problem_of_task, problem_of_policy)


def open_ledger(conn: Connection, as_of: date, steps: Sequence[str]) -> pd.DataFrame:
    """The items on the ledger as of `as_of` and still open then (see the module docstring).

    Columns: unit, unit_name, unit_kind, item_kind (ticket, plan_task, policy), item_id,
    item_ref (the ticket's external id, the task's or policy's code), problem (code, for plan
    items), title (a ticket's category; a task's or policy's title), step, level, since,
    reason. By unit code, since, item kind and reference.
    """
    if not steps:
        return pd.DataFrame({c: [] for c in LEDGER_COLUMNS})
    source, still_open, top, step, (tp, pp) = _open_items(as_of, steps)
    ref = func.coalesce(T.external_id, PT.code, PO.code)
    stmt = (
        select(
            U.code.label("unit"),
            U.name.label("unit_name"),
            U.kind.label("unit_kind"),
            top.c.item_kind,
            top.c.item_id,
            ref.label("item_ref"),
            func.coalesce(tp.c.code, pp.c.code).label("problem"),
            func.coalesce(T.category, PT.title, PO.title).label("title"),
            step.c.step,
            top.c.level,
            top.c.since,
            step.c.reason,
        )
        .select_from(source)
        .where(still_open)
        .order_by(
            _ordered(conn, U.code), top.c.since, top.c.item_kind, _ordered(conn, ref),
            top.c.item_id,
        )
    )  # fmt: skip
    frame = _typed(_frame(conn, stmt), ints=("item_id", "level"))
    frame = _plain(_plain(frame, "unit_kind"), "item_kind")
    frame["since"] = [_as_date(d) for d in frame["since"]]
    return frame[list(LEDGER_COLUMNS)]


def _as_date(value: Any) -> date:
    """MIN(date) comes back as text on SQLite."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def open_ledger_by_unit(
    conn: Connection, as_of: date, steps: Sequence[str], ledger: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per unit with items on the ledger as of `as_of` and still open: `items`, and for each
    step of `steps` the items whose highest step it is (columns named after the steps).
    Columns: unit, unit_name, unit_kind, items, *steps; by unit code.

    Counted from the rows of `open_ledger` (pass them as `ledger` when you have them): the
    join of items and steps is the expensive part, and it need not run twice."""
    columns = ["unit", "unit_name", "unit_kind", "items", *steps]
    if not steps:
        return pd.DataFrame({c: [] for c in columns})
    rows = open_ledger(conn, as_of, steps) if ledger is None else ledger
    if rows.empty:
        return pd.DataFrame({c: [] for c in columns})
    counts = pd.crosstab(
        [rows["unit"], rows["unit_name"], rows["unit_kind"]], rows["step"]
    ).reindex(columns=list(steps), fill_value=0)
    counts.columns = list(steps)
    counts.insert(0, "items", counts.sum(axis=1))
    frame = counts.reset_index().sort_values("unit", kind="stable", ignore_index=True)
    return _typed(frame, ints=("items", *steps))[columns]
