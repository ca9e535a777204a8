"""The SQL of the quarterly spot check (季度抽查核验).

The **population** of a quarter is every item reported done in it:

- a ticket whose status is `closed`, marked resolved (`resolved` true) and closed within the
  quarter (`closed_at` in [start, end));
- a plan task whose status is `done` and completed within the quarter (`completed_on` in
  [start, end)).

A ticket or plan task reopened since (by a look-back or an earlier check) is not reported
done any more and is not in the population. Each item belongs to the stratum of its unit
(the ticket's `unit_id`, the plan task's `owner_unit_id`) and its kind. Definitions:
docs/spot-check.md.

`population_counts` counts the strata in the database; `population_rows` streams the items
for the draw; `population` gives them as a frame (tests, small cities).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, case, func, literal, select, union_all

from duban.db.models import (
    ItemKind,
    PlanItemStatus,
    PlanTask,
    Problem,
    Ticket,
    TicketStatus,
    Unit,
)
from duban.queries.kernel import PT, P, S, T, U

POPULATION_COLUMNS = ["item_kind", "item_id", "unit_id", "unit_code", "key", "done_on"]
FAILURE_COLUMNS = ["unit_id", "failed", "checked"]


def _tickets(start: date, end: date) -> Select[Any]:
    return (
        select(
            literal(ItemKind.ticket.value).label("item_kind"),
            T.id.label("item_id"),
            T.unit_id.label("unit_id"),
            U.code.label("unit_code"),
            (T.source + literal(":") + T.external_id).label("key"),
            T.closed_at.label("done_at"),
        )
        .select_from(Ticket.__table__.join(Unit.__table__, U.id == T.unit_id))
        .where(
            T.status == TicketStatus.closed.value,
            T.resolved.is_(True),
            T.closed_at >= datetime.combine(start, time()),
            T.closed_at < datetime.combine(end, time()),
        )
    )


def _plan_tasks(start: date, end: date) -> Select[Any]:
    return (
        select(
            literal(ItemKind.plan_task.value).label("item_kind"),
            PT.id.label("item_id"),
            PT.owner_unit_id.label("unit_id"),
            U.code.label("unit_code"),
            (P.code + literal(":") + PT.code).label("key"),
            PT.completed_on.label("done_at"),
        )
        .select_from(
            PlanTask.__table__.join(Unit.__table__, U.id == PT.owner_unit_id).join(
                Problem.__table__, P.id == PT.problem_id
            )
        )
        .where(
            PT.status == PlanItemStatus.done.value,
            PT.completed_on >= start,
            PT.completed_on < end,
        )
    )


def population_counts(conn: Connection, start: date, end: date) -> dict[tuple[str, str], int]:
    """(unit code, item kind) -> number of items reported done in [start, end)."""
    counts: dict[tuple[str, str], int] = {}
    for query in (_tickets(start, end), _plan_tasks(start, end)):
        sub = query.subquery()
        rows = conn.execute(
            select(sub.c.unit_code, sub.c.item_kind, func.count()).group_by(
                sub.c.unit_code, sub.c.item_kind
            )
        )
        for unit_code, kind, n in rows:
            counts[(str(unit_code), str(kind))] = int(n)
    return counts


def population_rows(
    conn: Connection, start: date, end: date, chunk: int = 20_000
) -> Iterator[tuple[str, int, int, str, str]]:
    """(item kind, item id, unit id, unit code, key) of every item of the population,
    streamed in chunks (a quarter of a large city holds millions of closed tickets)."""
    for query in (_tickets(start, end), _plan_tasks(start, end)):
        result = conn.execute(query.execution_options(yield_per=chunk))
        for kind, item_id, unit_id, unit_code, key, _ in result:
            yield str(kind), int(item_id), int(unit_id), str(unit_code), str(key)


def population(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """The population as a frame (POPULATION_COLUMNS; done_on a date), by kind and id."""
    query = union_all(_tickets(start, end), _plan_tasks(start, end))
    rows = conn.execute(query).all()
    frame = pd.DataFrame(
        [
            (kind, int(i), int(u), code, key, d.date() if isinstance(d, datetime) else d)
            for kind, i, u, code, key, d in rows
        ],
        columns=POPULATION_COLUMNS,
    )
    return frame.sort_values(["item_kind", "item_id"], ignore_index=True)


def quarters_of(year: int) -> list[str]:
    return [f"{year}-Q{q}" for q in range(1, 5)]


def spot_check_failures(conn: Connection, year: int) -> pd.DataFrame:
    """Per unit with items sampled in `year`'s quarters: how many were checked (a verdict
    recorded) and how many of those failed. For the year-end evaluation (年终考评)."""
    checked = func.count(S.passed)
    failed = func.coalesce(func.sum(case((S.passed.is_(False), 1), else_=0)), 0)
    rows = conn.execute(
        select(S.unit_id, failed.label("failed"), checked.label("checked"))
        .where(S.quarter.in_(quarters_of(year)))
        .group_by(S.unit_id)
        .order_by(S.unit_id)
    ).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=FAILURE_COLUMNS)
    return frame.astype({"unit_id": "int64", "failed": "int64", "checked": "int64"})
