"""The SQL behind the weekly analysis (周分析): week-on-week ticket counts by problem, category
and district, tickets per day, and the three rates of the whole city.

Every figure is an aggregate computed by the database; Python only names and types the
columns of the small result. The definitions are in docs/weekly-analysis.md. A week is the
half-open interval ``[monday 00:00, next monday 00:00)``; hot spots, rising streets and
repeat complaints come from duban.queries.metrics.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, func, literal, select

from duban.db.models import Problem, Unit
from duban.queries import kernel as k
from duban.queries.kernel import P, T, U
from duban.queries.metrics import (
    SATISFACTION_COLUMNS,
    TIMELY_COLUMNS,
    problem_and_lead_unit,
    rate_counts,
)

WOW_BY: tuple[str, ...] = ("problem", "category", "district")
WOW_COLUMNS: dict[str, tuple[str, ...]] = {
    "problem": ("problem", "problem_name", "lead_unit", "lead_unit_name"),
    "category": ("category",),
    "district": ("district",),
}
CHANGE_COLUMNS = ("this_week", "last_week", "change", "change_rate")
CITY_RATE_COLUMNS: tuple[str, ...] = (
    *TIMELY_COLUMNS, "closed", "closed_resolved", "resolution_rate", *SATISFACTION_COLUMNS,
    "response_base", "on_time_base", "resolution_base",  # the denominators (docs/metrics.md)
)  # fmt: skip
CITY_COUNTS = (
    "tickets", "responded_in_time", "due", "closed_on_time", "closed", "closed_resolved",
    "rated", "n_satisfied", "n_basic", "response_base", "on_time_base", "resolution_base",
)  # fmt: skip


def week_on_week(
    conn: Connection, monday: date, by: str = "problem", year: int | None = None
) -> pd.DataFrame:
    """Tickets received in the week starting `monday` (this_week) and in the week before
    (last_week), per `by`, with change = this − last and change_rate = change / last (NaN
    when last is 0).

    by="problem": every problem (or those of `year`), with zeros, by problem code, with its
    lead unit. by="category" / "district": the groups with a ticket in either week, most
    tickets this week first, then by key; tickets without a district form one group with an
    empty key, listed last among equals.
    """
    if by not in WOW_COLUMNS:
        raise ValueError(f"by: must be one of {', '.join(WOW_BY)} (got {by!r})")
    this_start, this_end = k.as_datetime(monday), k.as_datetime(monday + timedelta(days=7))
    last_start = k.as_datetime(monday - timedelta(days=7))
    this_week = and_(T.received_at >= this_start, T.received_at < this_end)
    last_week = and_(T.received_at >= last_start, T.received_at < this_start)
    window = and_(T.received_at >= last_start, T.received_at < this_end)

    if by == "problem":
        counts = (
            select(
                T.problem_id,
                k.count_if(this_week).label("this_week"),
                k.count_if(last_week).label("last_week"),
            )
            .where(T.problem_id.is_not(None), window)
            .group_by(T.problem_id)
            .subquery()
        )
        this, last = (func.coalesce(counts.c[n], 0) for n in ("this_week", "last_week"))
        stmt = (
            select(
                *problem_and_lead_unit(),
                this.label("this_week"),
                last.label("last_week"),
                (this - last).label("change"),
                k.ratio(this - last, last).label("change_rate"),
            )
            .select_from(
                Problem.__table__.join(Unit.__table__, U.id == P.lead_unit_id).outerjoin(
                    counts, counts.c.problem_id == P.id
                )
            )
            .order_by(k.ordered(conn, P.code))
        )
        if year is not None:
            stmt = stmt.where(P.year == year)
    else:
        key = func.coalesce(getattr(T, by), literal("")).label(by)
        grouped = (
            select(
                key,
                k.count_if(this_week).label("this_week"),
                k.count_if(last_week).label("last_week"),
            )
            .where(window)
            .group_by(key)
            .subquery()
        )
        g = grouped.c
        stmt = select(
            g[by],
            g.this_week,
            g.last_week,
            (g.this_week - g.last_week).label("change"),
            k.ratio(g.this_week - g.last_week, g.last_week).label("change_rate"),
        ).order_by(g.this_week.desc(), g[by] == "", k.ordered(conn, g[by]))
    frame = k.frame(conn, stmt)
    frame = k.typed(frame, ints=("this_week", "last_week", "change"), floats=("change_rate",))
    return frame[[*WOW_COLUMNS[by], *CHANGE_COLUMNS]]


def daily_volume(conn: Connection, start: date, days: int = 7) -> pd.DataFrame:
    """Tickets received on each of the `days` days from `start`: columns day (a date) and
    tickets; a day without tickets is listed with 0."""
    begin, end = k.as_datetime(start), k.as_datetime(start + timedelta(days=days))
    day = k.day_of(T.received_at)
    stmt = (
        select(day.label("day"), func.count().label("tickets"))
        .where(T.received_at >= begin, T.received_at < end)
        .group_by(day)
    )
    found = {str(d): int(n) for d, n in conn.execute(stmt)}
    every = [start + timedelta(days=i) for i in range(days)]
    return pd.DataFrame(
        {"day": every, "tickets": [found.get(d.isoformat(), 0) for d in every]}
    ).astype({"tickets": "int64"})


def city_rates(
    conn: Connection,
    start: date | datetime,
    end: date | datetime,
    response_hours: dict[int, float],
    basic_weight: float,
    lacking: Mapping[str, Collection[str]] | None = None,
) -> dict[str, Any]:
    """The three rates (三率) of the whole city for [start, end), with their counts: the same
    definitions as `unit_rates` (docs/metrics.md), over all tickets. One row, as a dict;
    a rate whose denominator is 0 is None (`lacking` as in `rate_counts`)."""
    in_period, counts = rate_counts(start, end, response_hours, lacking)
    row = conn.execute(
        select(*(counts[name].label(name) for name in CITY_COUNTS)).where(in_period)
    ).one()
    n = {name: int(v or 0) for name, v in row._mapping.items()}
    satisfied = n["n_satisfied"] + float(basic_weight) * n["n_basic"]

    def rate(num: float, den: int) -> float | None:
        return num / den if den else None

    out: dict[str, Any] = {
        "tickets": n["tickets"],
        "responded_in_time": n["responded_in_time"],
        "response_rate": rate(n["responded_in_time"], n["response_base"]),
        "due": n["due"],
        "closed_on_time": n["closed_on_time"],
        "on_time_rate": rate(n["closed_on_time"], n["on_time_base"]),
        "closed": n["closed"],
        "closed_resolved": n["closed_resolved"],
        "resolution_rate": rate(n["closed_resolved"], n["resolution_base"]),
        "rated": n["rated"],
        "satisfied": satisfied,
        "satisfaction_rate": rate(satisfied, n["rated"]),
        **{name: n[name] for name in ("response_base", "on_time_base", "resolution_base")},
    }
    return {k: out[k] for k in CITY_RATE_COLUMNS}


def lead_units(conn: Connection, codes: list[str]) -> pd.DataFrame:
    """The units of `codes` that are active: code, name, emails; by code."""
    if not codes:
        return pd.DataFrame(columns=["code", "name", "emails"])
    stmt = (
        select(U.code, U.name, U.emails)
        .where(U.code.in_(sorted(set(codes))), U.active.is_(True))
        .order_by(k.ordered(conn, U.code))
    )
    return k.frame(conn, stmt)
