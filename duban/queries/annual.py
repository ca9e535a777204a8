"""The SQL of the year-end evaluation (年终绩效考评): one aggregate per component, by unit.

The year is the half-open interval ``[Jan 1, Jan 1 of the next year)``; "as of the year's
end" means at the end of December 31st. Definitions (docs/evaluation.md):

- **rates**: `unit_rates` of duban/queries/metrics.py over the year (not repeated here).
- **plan**: `plan_by_unit` — the plan tasks and policies whose due month is in the year, of
  the problems the unit **leads** (主责单位) or that it **owns** (the item's owner unit);
  an item counts once per unit even when the unit both leads and owns it. Done (issued) as
  of the year's end as in `plan_progress`.
- **spot-check failures**: `spot_checks_by_unit` — samples of the year's quarters
  (``quarter`` 'YYYY-Q1'..'YYYY-Q4') by the sampled unit: `checked` (a verdict recorded)
  and `failed` (``passed = false``).
- **escalations**: `escalations_by_unit` — ladder steps among `steps` (挂账, 通报: the steps
  with ``trigger: overdue``) whose `due_on` is in the year, by the step's unit: `steps`
  (each step counts, of every ladder round: a step taken stays taken when a redo restarts
  the ladder) and `items` (distinct items).
- **recurrences**: `recurrences_by_unit` — distinct tickets with a look-back finding
  (`lookback_findings`, by the finding's unit) whose closure (`closed_at`) is in the year.
- **old, hard items closed** (the credit): `old_items_by_unit` — tickets whose status is
  `closed` (a ticket reopened since is not counted), `closed_at` in the year, and that
  either **had been on the ledger** (a step among `steps`, any day) or were **long
  overdue**: closed more than `long_overdue_days` calendar days after `due_at`. By the
  ticket's unit: `items`, `on_ledger`, `long_overdue` (an item may be both).

Each `*_items` function lists the items behind a component, at most `limit` per unit
(``ROW_NUMBER() OVER (PARTITION BY unit …)``): the aggregate gives the full count.
Citizen text comes back raw: mask it before it leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union,
)

from duban.db.models import (
    Escalation,
    ItemKind,
    LookbackFinding,
    PlanTask,
    Policy,
    Problem,
    SpotCheckSample,
    Ticket,
    TicketStatus,
    Unit,
)
from duban.queries import kernel as k
from duban.queries.kernel import PO, PT, E, F, P, S, T, U


def year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1), datetime(year + 1, 1, 1)


def _year_end(year: int) -> date:
    return date(year, 12, 31)


def _closed_in(year: int) -> ColumnElement[bool]:
    start, end = year_bounds(year)
    return and_(T.closed_at >= start, T.closed_at < end)


def _by_unit(conn: Connection, counts: Any, columns: Sequence[Any]) -> Any:
    """SELECT unit code, name, kind and `columns` from `counts` (a subquery with unit_id)."""
    return (
        select(U.code.label("unit"), U.name.label("unit_name"), U.kind.label("kind"), *columns)
        .select_from(counts.join(Unit.__table__, U.id == counts.c.unit_id))
        .order_by(k.ordered(conn, U.code))
    )


def _finish(frame: pd.DataFrame, ints: tuple[str, ...], floats: tuple[str, ...] = ()) -> Any:
    return k.plain(k.typed(frame, ints=ints, floats=floats), "kind")


# ---------------------------------------------------------------- plan


def plan_by_unit(conn: Connection, year: int) -> pd.DataFrame:
    """Per unit: the plan tasks and policies due in `year` of the problems it leads or owns.

    Columns: unit, unit_name, kind, tasks, tasks_done, policies, policies_issued,
    task_completion (done / tasks), policy_issuance (issued / policies); by unit code.
    """
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    as_of = _year_end(year)
    pairs = []
    for table, c, on in ((PlanTask.__table__, PT, PT.completed_on),
                         (Policy.__table__, PO, PO.issued_on)):  # fmt: skip
        kind = literal("task" if table is PlanTask.__table__ else "policy")
        base = (
            select(kind.label("item_kind"), c.id.label("item_id"))
            .select_from(table.join(Problem.__table__, P.id == c.problem_id))
            .where(c.due_month >= start, c.due_month < end)
        )
        pairs.append(base.add_columns(c.owner_unit_id.label("unit_id"),
                                      _done_int(c.status, on, as_of).label("done")))  # fmt: skip
        pairs.append(base.add_columns(P.lead_unit_id.label("unit_id"),
                                      _done_int(c.status, on, as_of).label("done")))  # fmt: skip
    items = union(*pairs).subquery("items")  # UNION: owner = lead counts once
    i = items.c
    is_task = i.item_kind == "task"
    counts = (
        select(
            i.unit_id,
            k.count_if(is_task).label("tasks"),
            k.count_if(and_(is_task, i.done == 1)).label("tasks_done"),
            k.count_if(~is_task).label("policies"),
            k.count_if(and_(~is_task, i.done == 1)).label("policies_issued"),
        )
        .group_by(i.unit_id)
        .subquery()
    )
    c = counts.c
    stmt = _by_unit(conn, counts, [
        c.tasks, c.tasks_done, c.policies, c.policies_issued,
        k.ratio(c.tasks_done, c.tasks).label("task_completion"),
        k.ratio(c.policies_issued, c.policies).label("policy_issuance"),
    ])  # fmt: skip
    return _finish(
        k.frame(conn, stmt),
        ints=("tasks", "tasks_done", "policies", "policies_issued"),
        floats=("task_completion", "policy_issuance"),
    )


def _done_int(status: Any, on: Any, as_of: date) -> ColumnElement[int]:
    return case((k.done_by(status, on, as_of), 1), else_=0)


# ---------------------------------------------------------------- spot checks


def _quarter_of_year(year: int) -> ColumnElement[bool]:
    return S.quarter.in_([f"{year}-Q{q}" for q in range(1, 5)])


def spot_checks_by_unit(conn: Connection, year: int) -> pd.DataFrame:
    """Per sampled unit: spot-check samples of the year's quarters with a verdict (`checked`)
    and those that failed (`failed`: passed is false). Columns: unit, unit_name, kind,
    checked, failed; only units with a sample of the year."""
    counts = (
        select(
            S.unit_id,
            k.count_if(S.passed.is_not(None)).label("checked"),
            k.count_if(S.passed.is_(False)).label("failed"),
        )
        .where(_quarter_of_year(year))
        .group_by(S.unit_id)
        .subquery()
    )
    stmt = _by_unit(conn, counts, [counts.c.checked, counts.c.failed])
    return _finish(k.frame(conn, stmt), ints=("checked", "failed"))


def _item_ref(kind_col: Any, id_col: Any) -> tuple[Any, ColumnElement[Any]]:
    """Outer joins to the item's table and its reference: a ticket's external id, a plan
    task's or policy's code."""
    joins = [
        (Ticket.__table__, and_(kind_col == ItemKind.ticket.value, T.id == id_col)),
        (PlanTask.__table__, and_(kind_col == ItemKind.plan_task.value, PT.id == id_col)),
        (Policy.__table__, and_(kind_col == ItemKind.policy.value, PO.id == id_col)),
    ]
    return joins, func.coalesce(T.external_id, PT.code, PO.code)


def _capped(conn: Connection, stmt: Any, order: Sequence[Any], limit: int) -> pd.DataFrame:
    """`stmt` (with a `unit` column) limited to `limit` rows per unit, in `order`."""
    numbered = stmt.add_columns(
        func.row_number().over(partition_by=U.code, order_by=list(order)).label("n")
    ).subquery()
    out = select(*[c for c in numbered.c if c.name != "n"]).where(numbered.c.n <= limit)
    out = out.order_by(k.ordered(conn, numbered.c.unit), numbered.c.n)
    return k.frame(conn, out)


def spot_check_failure_items(conn: Connection, year: int, limit: int) -> pd.DataFrame:
    """The failed spot checks of the year, at most `limit` per unit. Columns: unit, quarter,
    item_kind, item_ref, note, checked_at; by unit, quarter, reference."""
    joins, ref = _item_ref(S.item_kind, S.item_id)
    source: Any = SpotCheckSample.__table__.join(Unit.__table__, U.id == S.unit_id)
    for table, on in joins:
        source = source.outerjoin(table, on)
    stmt = (
        select(U.code.label("unit"), S.quarter, S.item_kind, ref.label("item_ref"), S.note,
               S.checked_at)
        .select_from(source)
        .where(_quarter_of_year(year), S.passed.is_(False))
    )  # fmt: skip
    frame = _capped(conn, stmt, (S.quarter, k.ordered(conn, ref), S.item_id), limit)
    return k.plain(frame, "item_kind")


# ---------------------------------------------------------------- escalations


def _steps_in_year(year: int, steps: Sequence[str]) -> ColumnElement[bool]:
    """Steps among `steps` due in the year, but none of a ticket an upheld appeal took out of
    the evaluation (不纳入考核, docs/clock.md)."""
    # uncorrelated (the item lists join the tickets table themselves); the set is small
    excluded = Ticket.__table__.alias("not_evaluated")
    not_evaluated = and_(
        E.item_kind == ItemKind.ticket.value,
        E.item_id.in_(select(excluded.c.id).where(excluded.c.evaluated.is_(False))),
    )
    return and_(
        E.step.in_(list(steps)),
        E.due_on >= date(year, 1, 1),
        E.due_on < date(year + 1, 1, 1),
        ~not_evaluated,
    )


def escalations_by_unit(conn: Connection, year: int, steps: Sequence[str]) -> pd.DataFrame:
    """Per unit: the ladder steps among `steps` due in the year (`steps`) and the distinct
    items they concern (`items`). Columns: unit, unit_name, kind, steps, items."""
    if not steps:
        return pd.DataFrame(columns=["unit", "unit_name", "kind", "steps", "items"])
    per_item = (
        select(E.unit_id, E.item_kind, E.item_id, func.count().label("n"))
        .where(_steps_in_year(year, steps))
        .group_by(E.unit_id, E.item_kind, E.item_id)
        .subquery()
    )
    counts = (
        select(
            per_item.c.unit_id,
            func.sum(per_item.c.n).label("steps"),
            func.count().label("items"),
        )
        .group_by(per_item.c.unit_id)
        .subquery()
    )
    stmt = _by_unit(conn, counts, [counts.c.steps, counts.c["items"]])
    return _finish(k.frame(conn, stmt), ints=("steps", "items"))


def escalation_items(conn: Connection, year: int, steps: Sequence[str], limit: int) -> pd.DataFrame:
    """The ladder steps among `steps` due in the year, at most `limit` per unit. Columns:
    unit, item_kind, item_ref, step, due_on, closed (a ticket's closure, if any), round (the
    ladder round: every round's steps count, a redo restarts the ladder without undoing
    them)."""
    columns = ["unit", "item_kind", "item_ref", "step", "due_on", "closed_at", "round"]
    if not steps:
        return pd.DataFrame(columns=columns)
    joins, ref = _item_ref(E.item_kind, E.item_id)
    source: Any = Escalation.__table__.join(Unit.__table__, U.id == E.unit_id)
    for table, on in joins:
        source = source.outerjoin(table, on)
    stmt = (
        select(U.code.label("unit"), E.item_kind, ref.label("item_ref"), E.step, E.due_on,
               T.closed_at, E.round)
        .select_from(source)
        .where(_steps_in_year(year, steps))
    )  # fmt: skip
    frame = _capped(conn, stmt, (E.due_on, k.ordered(conn, ref), E.level), limit)
    return k.plain(frame, "item_kind")[columns]


# ---------------------------------------------------------------- look-back recurrences


def _recurred_tickets(year: int) -> Any:
    """(unit_id, ticket id, recurrences): distinct tickets with a finding, closed in the year;
    the most recurrences any look-back found for it."""
    return (
        select(F.unit_id, F.item_id, func.max(F.recurrences).label("recurrences"))
        .select_from(LookbackFinding.__table__.join(Ticket.__table__, T.id == F.item_id))
        .where(F.item_kind == ItemKind.ticket.value, T.evaluated.is_(True), _closed_in(year))
        .group_by(F.unit_id, F.item_id)
        .subquery("recurred")
    )


def recurrences_by_unit(conn: Connection, year: int) -> pd.DataFrame:
    """Per unit: the tickets closed in the year that a look-back found recurred (`items`).
    Columns: unit, unit_name, kind, items."""
    recurred = _recurred_tickets(year)
    counts = (
        select(recurred.c.unit_id, func.count().label("items"))
        .group_by(recurred.c.unit_id)
        .subquery()
    )
    stmt = _by_unit(conn, counts, [counts.c["items"]])
    return _finish(k.frame(conn, stmt), ints=("items",))


def recurrence_items(conn: Connection, year: int, limit: int) -> pd.DataFrame:
    """The recurred tickets, at most `limit` per unit. Columns: unit, external_id, category,
    closed_at, recurrences, content (raw citizen text)."""
    r = _recurred_tickets(year)
    stmt = (
        select(U.code.label("unit"), T.external_id, T.category, T.closed_at, r.c.recurrences,
               T.content)
        .select_from(r.join(Ticket.__table__, T.id == r.c.item_id)
                     .join(Unit.__table__, U.id == r.c.unit_id))
    )  # fmt: skip
    return _capped(conn, stmt, (T.closed_at, k.ordered(conn, T.external_id)), limit)


# ---------------------------------------------------------------- old, hard items closed


def _old_items(
    year: int, steps: Sequence[str], long_overdue_days: int, detail: bool = False
) -> Any:
    """Tickets closed (and still closed) in the year that had been on the ledger or were
    closed more than `long_overdue_days` after their deadline, with both flags; with
    `detail`, also the columns `old_items` lists (selected here: joining the tickets table a
    second time for them hashed all 12 million rows, 8 of the query's 19 s).

    The ledger items are one DISTINCT set joined by hash, not an EXISTS probed per ticket:
    on 12 million tickets the correlated form took 82 s, this one 15 s (bench/README.md)."""
    late = and_(
        T.closed_at > T.due_at,
        k.seconds_between(T.due_at, T.closed_at) > float(long_overdue_days) * 86400.0,
    )
    if not steps:
        on_ledger: ColumnElement[bool] = literal(False)
        source: Any = Ticket.__table__
    else:
        ledger = (
            select(E.item_id)
            .where(E.item_kind == ItemKind.ticket.value, E.step.in_(list(steps)))
            .distinct()
            .subquery("ledger")
        )
        on_ledger = ledger.c.item_id.is_not(None)
        source = Ticket.__table__.outerjoin(ledger, ledger.c.item_id == T.id)
    details = (
        (T.external_id, T.category, T.received_at, T.due_at, T.closed_at, T.content)
        if detail
        else ()
    )
    return (
        select(
            T.id,
            T.unit_id,
            case((on_ledger, 1), else_=0).label("on_ledger"),
            case((late, 1), else_=0).label("long_overdue"),
            *details,
        )
        .select_from(source)
        .where(
            T.status == TicketStatus.closed.value,
            T.evaluated.is_(True),  # an upheld appeal: out of the evaluation (docs/clock.md)
            _closed_in(year),
            or_(on_ledger, late),
        )
        .subquery("old")
    )


def old_items_by_unit(
    conn: Connection, year: int, steps: Sequence[str], long_overdue_days: int
) -> pd.DataFrame:
    """Per unit: old, hard tickets it closed in the year (the credit): `items`, of them
    `on_ledger` and `long_overdue`. Columns: unit, unit_name, kind, items, on_ledger,
    long_overdue."""
    old = _old_items(year, steps, long_overdue_days)
    counts = (
        select(
            old.c.unit_id,
            func.count().label("items"),
            func.sum(old.c.on_ledger).label("on_ledger"),
            func.sum(old.c.long_overdue).label("long_overdue"),
        )
        .group_by(old.c.unit_id)
        .subquery()
    )
    stmt = _by_unit(conn, counts, [counts.c["items"], counts.c.on_ledger, counts.c.long_overdue])
    return _finish(k.frame(conn, stmt), ints=("items", "on_ledger", "long_overdue"))


def old_items(
    conn: Connection, year: int, steps: Sequence[str], long_overdue_days: int, limit: int
) -> pd.DataFrame:
    """The old, hard tickets closed in the year, at most `limit` per unit (the longest late
    first). Columns: unit, external_id, category, received_at, due_at, closed_at, days_late
    (calendar days from deadline to closure, a float), on_ledger, long_overdue, content."""
    old = _old_items(year, steps, long_overdue_days, detail=True)
    days_late = k.seconds_between(old.c.due_at, old.c.closed_at) / 86400.0
    stmt = (
        select(U.code.label("unit"), old.c.external_id, old.c.category, old.c.received_at,
               old.c.due_at, old.c.closed_at, days_late.label("days_late"), old.c.on_ledger,
               old.c.long_overdue, old.c.content)
        .select_from(old.join(Unit.__table__, U.id == old.c.unit_id))
    )  # fmt: skip
    frame = _capped(conn, stmt, (days_late.desc(), k.ordered(conn, old.c.external_id)), limit)
    frame = k.typed(frame, ints=("on_ledger", "long_overdue"), floats=("days_late",))
    for column in ("on_ledger", "long_overdue"):
        frame[column] = frame[column].astype(bool)
    return frame
