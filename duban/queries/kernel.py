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
    "counted",
    "day_of",
    "done_by",
    "frame",
    "ids_by_code",
    "month_start",
    "none_for_missing",
    "ordered",
    "plain",
    "ratio",
    "seconds_between",
    "suspended_at",
    "typed",
]

# The tables the queries read, and their columns by the short names the queries use.
TICKETS, UNITS, PROBLEMS = m.Ticket.__table__, m.Unit.__table__, m.Problem.__table__
PLAN_TASKS, POLICIES = m.PlanTask.__table__, m.Policy.__table__
ESCALATIONS, SAMPLES, FINDINGS = (
    m.Escalation.__table__, m.SpotCheckSample.__table__, m.LookbackFinding.__table__,
)  # fmt: skip
T, U, P, PT, PO = TICKETS.c, UNITS.c, PROBLEMS.c, PLAN_TASKS.c, POLICIES.c
E, S, F = ESCALATIONS.c, SAMPLES.c, FINDINGS.c


# ---------------------------------------------------------------- dialect helpers


def _per_dialect(element: type[FunctionElement[Any]], **sql: str) -> None:
    """Compile `element` on each dialect named in `sql` from that template over the compiled
    arguments (``{0}``, ``{1}``); any other dialect is an error."""

    @compiles(element)
    def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
        raise NotImplementedError(f"{element.name}: dialect {compiler.dialect.name} not supported")

    for dialect, template in sql.items():

        def _compile(
            element: FunctionElement[Any], compiler: SQLCompiler, _sql: str = template, **kw: Any
        ) -> str:
            return _sql.format(*(compiler.process(arg, **kw) for arg in element.clauses))

        compiles(element, dialect)(_compile)


class seconds_between(FunctionElement[float]):
    """``b - a`` in seconds (a float), for two DATETIME/TIMESTAMP expressions.

    SQLite keeps julianday() as whole milliseconds internally; the difference is rounded back
    to milliseconds so that a response exactly at the limit compares equal to it.
    """

    type = Float()
    name = "seconds_between"
    inherit_cache = True


_per_dialect(
    seconds_between,
    sqlite="(ROUND((julianday({1}) - julianday({0})) * 86400000.0) / 1000.0)",
    postgresql="CAST(EXTRACT(EPOCH FROM ({1} - {0})) AS DOUBLE PRECISION)",
)


class day_of(FunctionElement[str]):
    """The calendar day of a DATETIME/TIMESTAMP as 'YYYY-MM-DD' text, on every dialect."""

    type = String()
    name = "day_of"
    inherit_cache = True


_per_dialect(day_of, sqlite="date({0})", postgresql="to_char({0}, 'YYYY-MM-DD')")


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


def counted() -> ColumnElement[bool]:
    """The tickets that count: not cancelled or invalid (EXCLUDED_STATUSES) and counted for
    evaluation (`evaluated`: an upheld appeal, 不纳入考核, takes a ticket out; docs/clock.md).
    Every rate, ranking, open-item count, ladder and sample population reads this."""
    return and_(T.status.not_in([s.value for s in m.EXCLUDED_STATUSES]), T.evaluated.is_(True))


def suspended_at(now: datetime) -> ColumnElement[bool]:
    """The ticket's clock is stopped at `now` (an open suspension, docs/clock.md): never
    late, no colour, no ladder step."""
    return and_(T.suspended_since.is_not(None), T.suspended_since <= now)


# ---------------------------------------------------------------- results


def frame(conn: Connection, stmt: Any) -> pd.DataFrame:
    """The rows of `stmt` as a frame with its column names (also when there is no row);
    a NULL in a text column is None (`none_for_missing`)."""
    result = conn.execute(stmt)
    # tuples, not Row objects: pandas probes each Row for a mapping (an exception raised and
    # caught per row in SQLAlchemy), which made a frame of 20,000 rows ~9x slower to build
    rows = [tuple(row) for row in result.fetchall()]
    return none_for_missing(pd.DataFrame(rows, columns=list(result.keys())))


def none_for_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text (or other object) column as object dtype, a missing value None.

    pandas 3 infers its `str` dtype for a column of strings and turns a None among them into
    NaN, which is truthy, not a `str`, and prints as ``nan``. Every frame built from database
    rows goes through here, so that optional text is a real None from the query to the
    templates. Numeric and datetime columns are left as they are (NaN, NaT).
    """
    for column in frame.columns:
        series = frame[column]
        if series.dtype != object and not isinstance(series.dtype, pd.StringDtype):
            continue
        values = series.to_numpy(dtype=object, copy=True)
        missing = pd.isna(values)
        if missing.any() or series.dtype != object:
            values[missing] = None
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame


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
