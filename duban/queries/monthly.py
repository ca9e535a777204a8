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

A ticket's steps count from its **current ladder round** only (`escalations.round` =
`tickets.ladder_round`, docs/clock.md): a redo restarts the ladder, so the steps of earlier
rounds stay recorded but neither put it on the ledger nor date it; `round` says which round
its standing is of (> 1: a redo restarted it). Plan tasks and policies have one round.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, String, and_, cast, func, null, or_, select, union_all

from duban.db.models import ItemKind, PlanTask, Policy, Problem, Ticket, Unit
from duban.queries import kernel as k
from duban.queries.kernel import PO, PT, E, T, U

LEDGER_COLUMNS: tuple[str, ...] = (
    "unit", "unit_name", "unit_kind", "item_kind", "item_id", "item_ref", "problem", "title",
    "step", "level", "since", "reason", "round",
)  # fmt: skip


def _top_steps(as_of: date, steps: Sequence[str]) -> Any:
    """One row per item and ladder round with a step among `steps` due by `as_of`: the
    round's highest step (by level), that step's unit and reason, and `since`, the round's
    earliest such step's due day (each item kind's branch keeps the item's current round).

    A window over the item's steps, not a join of the steps with their maximum: the planner
    cannot estimate such a self-join (it expected 1–6 rows where a city has 500,000) and
    nested loops over it."""
    item = (E.item_kind, E.item_id, E.round)
    ranked = (
        select(
            E.item_kind,
            E.item_id,
            E.step,
            E.level,
            E.unit_id,
            E.reason,
            E.round,
            func.min(E.due_on).over(partition_by=item).label("since"),
            func.row_number()
            .over(partition_by=item, order_by=(E.level.desc(), E.step))
            .label("rank"),
        )
        .where(E.step.in_(list(steps)), E.due_on <= as_of)
        .subquery("ranked")
    )
    columns = [c for c in ranked.c if c.name != "rank"]
    return select(*columns).where(ranked.c.rank == 1).cte("top")


def _ledger_rows(as_of: date, steps: Sequence[str]) -> Any:
    """The open items on the ledger, one SELECT per item kind (tickets, plan tasks, policies)
    joined to that kind's table alone, as a UNION ALL with the LEDGER_COLUMNS."""
    end_of_day = datetime.combine(as_of + timedelta(days=1), time())
    top = _top_steps(as_of, steps)
    problem = Problem.__table__.alias("problem")

    def branch(kind: ItemKind, table: Any, ref: Any, code: Any, title: Any, open_: Any) -> Any:
        return (
            select(
                U.code.label("unit"),
                U.name.label("unit_name"),
                U.kind.label("unit_kind"),
                top.c.item_kind,
                top.c.item_id,
                ref.label("item_ref"),
                code.label("problem"),
                title.label("title"),
                top.c.step,
                top.c.level,
                top.c.since,
                top.c.reason,
                top.c.round,
            )
            .select_from(
                top.join(table, table.c.id == top.c.item_id).join(
                    Unit.__table__, U.id == top.c.unit_id
                )
            )
            .where(top.c.item_kind == kind.value, open_)
        )

    tickets = branch(
        ItemKind.ticket, Ticket.__table__, T.external_id, cast(null(), String), T.category,
        # an upheld appeal (不纳入考核) takes a ticket off the ledger (docs/clock.md); its
        # current round only: a redo restarted its ladder
        and_(or_(T.closed_at.is_(None), T.closed_at >= end_of_day), T.evaluated.is_(True),
             top.c.round == T.ladder_round),
    )  # fmt: skip
    tasks = branch(
        ItemKind.plan_task, PlanTask.__table__, PT.code, problem.c.code, PT.title,
        and_(~k.done_by(PT.status, PT.completed_on, as_of), top.c.round == 1),
    ).outerjoin(problem, problem.c.id == PT.problem_id)  # fmt: skip
    policies = branch(
        ItemKind.policy, Policy.__table__, PO.code, problem.c.code, PO.title,
        and_(~k.done_by(PO.status, PO.issued_on, as_of), top.c.round == 1),
    ).outerjoin(problem, problem.c.id == PO.problem_id)  # fmt: skip
    return union_all(tickets, tasks, policies).subquery("ledger")


def open_ledger(conn: Connection, as_of: date, steps: Sequence[str]) -> pd.DataFrame:
    """The items on the ledger as of `as_of` and still open then (see the module docstring).

    Columns: unit, unit_name, unit_kind, item_kind (ticket, plan_task, policy), item_id,
    item_ref (the ticket's external id, the task's or policy's code), problem (code, for plan
    items), title (a ticket's category; a task's or policy's title), step, level, since,
    reason, round (the ladder round the standing is of). By unit code, since, item kind and
    reference.
    """
    if not steps:
        return pd.DataFrame({c: [] for c in LEDGER_COLUMNS})
    rows = _ledger_rows(as_of, steps)
    stmt = select(*(rows.c[name] for name in LEDGER_COLUMNS)).order_by(
        k.ordered(conn, rows.c.unit), rows.c.since, rows.c.item_kind,
        k.ordered(conn, rows.c.item_ref), rows.c.item_id,
    )  # fmt: skip
    frame = k.typed(k.frame(conn, stmt), ints=("item_id", "level", "round"))
    frame = k.plain(k.plain(frame, "unit_kind"), "item_kind")
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
    return k.typed(frame, ints=("items", *steps))[columns]
