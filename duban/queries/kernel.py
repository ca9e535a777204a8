"""The SQL kernel every query module of duban/queries builds on: the tables' columns, the
dialect helpers, the aggregates and the small steps that turn a result into a typed frame.

Portability: durations are compared in seconds with `seconds_between`, compiled to
``julianday()`` arithmetic on SQLite and ``EXTRACT(EPOCH FROM …)`` on PostgreSQL; `day_of`
gives a timestamp's calendar day as text on both; ties are broken by code point with
`ordered` (``COLLATE "C"`` on PostgreSQL, SQLite's default BINARY).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Float, and_, case, cast, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from duban.db import models as m

__all__ = [
    "PO",
    "PT",
    "E",
    "F",
    "P",
    "S",
    "T",
    "U",
    "add_months",
    "as_datetime",
    "count_if",
    "day_of",
    "done_by",
    "frame",
    "ids_by_code",
    "month_start",
    "ordered",
    "plain",
    "ratio",
    "seconds_between",
    "typed",
]

# The columns of the tables the queries read, by the short names the queries use.
T = m.Ticket.__table__.c
U = m.Unit.__table__.c
P = m.Problem.__table__.c
PT = m.PlanTask.__table__.c
PO = m.Policy.__table__.c
E = m.Escalation.__table__.c
S = m.SpotCheckSample.__table__.c
F = m.LookbackFinding.__table__.c


# ---------------------------------------------------------------- dialect helpers


class seconds_between(FunctionElement[float]):
    """``b - a`` in seconds (a float), for two DATETIME/TIMESTAMP expressions.

    SQLite keeps julianday() as whole milliseconds internally; the difference is rounded back
    to milliseconds so that a response exactly at the limit compares equal to it.
    """

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between)
def _seconds_between_default(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"seconds_between: dialect {compiler.dialect.name} not supported")


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(ROUND((julianday({b}) - julianday({a})) * 86400000.0) / 1000.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS DOUBLE PRECISION)"


class day_of(FunctionElement[str]):
    """The calendar day of a DATETIME/TIMESTAMP as 'YYYY-MM-DD' text, on every dialect."""

    type = String()
    name = "day_of"
    inherit_cache = True


@compiles(day_of)
def _day_of_default(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"day_of: dialect {compiler.dialect.name} not supported")


@compiles(day_of, "sqlite")
def _day_of_sqlite(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = (compiler.process(a, **kw) for a in element.clauses)
    return f"date({arg})"


@compiles(day_of, "postgresql")
def _day_of_pg(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = (compiler.process(a, **kw) for a in element.clauses)
    return f"to_char({arg}, 'YYYY-MM-DD')"


def ordered(conn: Connection, column: Any) -> Any:
    """`column` for ORDER BY in code-point order on every dialect."""
    return column.collate("C") if conn.dialect.name == "postgresql" else column


# ---------------------------------------------------------------- periods


def as_datetime(value: date | datetime) -> datetime:
    """A date stands for its 00:00."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time())


def month_start(value: date) -> date:
    return date(value.year, value.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


# ---------------------------------------------------------------- aggregates


def ratio(numerator: Any, denominator: Any) -> ColumnElement[Any]:
    """numerator / denominator as a float; NULL when the denominator is 0."""
    return cast(numerator, Float) / func.nullif(cast(denominator, Float), 0.0)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """The number of rows where `condition` holds (0, not NULL, for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def done_by(status: Any, on: Any, as_of: date) -> ColumnElement[bool]:
    """Done as of the end of `as_of`: status done, completed (issued) on or before it or on an
    unrecorded date."""
    return and_(status == m.PlanItemStatus.done.value, or_(on.is_(None), on <= as_of))


# ---------------------------------------------------------------- results


def frame(conn: Connection, stmt: Any) -> pd.DataFrame:
    """The rows of `stmt` as a frame with its column names (also when there is no row)."""
    result = conn.execute(stmt)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def typed(
    frame: pd.DataFrame, ints: tuple[str, ...] = (), floats: tuple[str, ...] = ()
) -> pd.DataFrame:
    """int64 for counts and float64 (NaN for NULL) for rates, even when the frame is empty."""
    for column in ints:
        frame[column] = frame[column].astype("int64")
    for column in floats:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def plain(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Enum members (UnitKind, PlanItemStatus) as their plain string values."""
    frame[column] = pd.Series(
        [getattr(v, "value", v) for v in frame[column]], index=frame.index, dtype=object
    )
    return frame


def ids_by_code(
    conn: Connection, columns: Any, codes: Collection[str] | None = None
) -> dict[str, int]:
    """code -> id of the rows of a table with `code` and `id` columns (`columns`: U, P, …)
    whose code is among `codes` (every row when None)."""
    stmt = select(columns.code, columns.id)
    if codes is not None:
        stmt = stmt.where(columns.code.in_(codes))
    return dict(conn.execute(stmt).tuples().all())
