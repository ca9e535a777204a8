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
from sqlalchemy import Connection, Row, Select, case, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from duban.db.models import ItemKind, PlanItemStatus, TicketStatus
from duban.queries.kernel import PLAN_TASKS, PROBLEMS, PT, SAMPLES, TICKETS, UNITS, E, P, S, T, U

POPULATION_COLUMNS = ["item_kind", "item_id", "unit_id", "unit_code", "key", "done_on"]
FAILURE_COLUMNS = ["unit_id", "failed", "checked"]


KINDS = (ItemKind.ticket, ItemKind.plan_task)


def _reported_done(kind: ItemKind, start: date, end: date) -> Select[Any]:
    """The items of `kind` reported done in [start, end): (item_kind, item_id, unit_id,
    unit_code, key, done_at)."""
    item_id: Any
    key: Any
    if kind == ItemKind.ticket:
        item_id, unit_id, done_at = T.id, T.unit_id, T.closed_at
        key = T.source + literal(":") + T.external_id
        source = TICKETS.join(UNITS, U.id == T.unit_id)
        done = [
            T.status == TicketStatus.closed.value,
            T.resolved.is_(True),
            T.evaluated.is_(True),  # an upheld appeal: out of the sample (docs/clock.md)
            T.closed_at >= datetime.combine(start, time()),
            T.closed_at < datetime.combine(end, time()),
        ]
    else:
        item_id, unit_id, done_at = PT.id, PT.owner_unit_id, PT.completed_on
        key = P.code + literal(":") + PT.code
        source = PLAN_TASKS.join(UNITS, U.id == PT.owner_unit_id).join(
            PROBLEMS, P.id == PT.problem_id
        )
        done = [
            PT.status == PlanItemStatus.done.value,
            PT.completed_on >= start,
            PT.completed_on < end,
        ]
    return (
        select(
            literal(kind.value).label("item_kind"),
            item_id.label("item_id"),
            unit_id.label("unit_id"),
            U.code.label("unit_code"),
            key.label("key"),
            done_at.label("done_at"),
        )
        .select_from(source)
        .where(*done)
    )


def population_counts(conn: Connection, start: date, end: date) -> dict[tuple[str, str], int]:
    """(unit code, item kind) -> number of items reported done in [start, end)."""
    counts: dict[tuple[str, str], int] = {}
    for query in (_reported_done(kind, start, end) for kind in KINDS):
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
    for query in (_reported_done(kind, start, end) for kind in KINDS):
        result = conn.execute(query.execution_options(yield_per=chunk))
        for kind, item_id, unit_id, unit_code, key, _ in result:
            yield str(kind), int(item_id), int(unit_id), str(unit_code), str(key)


def population(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """The population as a frame (POPULATION_COLUMNS; done_on a date), by kind and id."""
    query = union_all(*(_reported_done(kind, start, end) for kind in KINDS))
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


# ---------------------------------------------------------------- the recorded sample


def sample_recorded(conn: Connection, quarter: str) -> bool:
    """Whether any sample of `quarter` is recorded."""
    return bool(conn.scalar(select(exists().where(S.quarter == quarter))))


def sample_size(conn: Connection, quarter: str) -> int:
    """The number of samples recorded for `quarter`."""
    return int(conn.scalar(select(func.count()).where(S.quarter == quarter)) or 0)


def step_recorded(conn: Connection | Session, kind: str, item_id: int, step: str) -> bool:
    """Whether the ladder step `step` is recorded for the item (`kind`, `item_id`)."""
    key = (E.item_kind == kind, E.item_id == item_id)
    return bool(conn.scalar(select(exists().where(*key, E.step == step))))


def _identity(kind: ItemKind) -> tuple[Any, Any, list[tuple[Any, Any]], tuple[Any, ...]]:
    """An item kind's table, its id column, the joins that identify an item, and its columns
    ref, done_on, category, text (a plan task: its problem's name and its title)."""
    columns: tuple[Any, ...]
    if kind == ItemKind.ticket:
        columns = (T.external_id, T.closed_at, T.category, T.content)
        return TICKETS, T.id, [], (*columns, T.status)
    columns = (P.code + ":" + PT.code, PT.completed_on, P.name, PT.title)
    return (
        PLAN_TASKS,
        PT.id,
        [(PROBLEMS, P.id == PT.problem_id)],
        (*columns, PT.status),
    )


def _named(columns: tuple[Any, ...]) -> list[Any]:
    names = ("ref", "done_on", "category", "text", "item_status")
    return [column.label(name) for column, name in zip(columns, names, strict=True)]


def sample_rows(conn: Connection, quarter: str) -> list[Row[Any]]:
    """The recorded sample of `quarter`: the tickets, then the plan tasks, each with what
    identifies it, named as SAMPLE_COLUMNS of duban/loops/quarterly/sample.py (citizen text
    raw: mask it before it leaves)."""
    rows: list[Row[Any]] = []
    for kind in KINDS:
        table, item_id, joins, columns = _identity(kind)
        source = SAMPLES.join(UNITS, U.id == S.unit_id).join(table, item_id == S.item_id)
        for other, on in joins:
            source = source.join(other, on)
        *identity, status = _named(columns)
        stmt = (
            select(
                S.id.label("sample_id"), S.item_kind, S.item_id, S.unit_id,
                U.code.label("unit_code"), U.name.label("unit_name"), *identity,
                S.seed, S.drawn_at, S.passed, S.note, S.checked_at, status,
            )
            .select_from(source)
            .where(S.quarter == quarter, S.item_kind == kind.value)
        )  # fmt: skip
        rows.extend(conn.execute(stmt).all())
    return rows


def item_details(conn: Connection, kind: ItemKind, ids: list[int]) -> dict[int, Row[Any]]:
    """id -> what identifies each item of `kind` among `ids` (ref, done_on, category, text,
    item_status: the columns of `sample_rows`)."""
    table, item_id, joins, columns = _identity(kind)
    source = table
    for other, on in joins:
        source = source.join(other, on)
    stmt = select(item_id, *_named(columns)).select_from(source).where(item_id.in_(ids))
    return {row.id: row for row in conn.execute(stmt)}
