"""The SQL behind the monthly bulletin (月通报): the three rates, problem volumes, hot spots,
repeat complaints and the progress of the plans.

Every figure is an aggregate computed by the database; Python only names and types the
columns of the small result. The definitions are in docs/metrics.md. A period is the
half-open interval ``[start, end)``; a date stands for its 00:00.

The dialect helpers and the typed frames come from duban.queries.kernel.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)

from duban.config import CityConfig
from duban.db.models import (
    ClockEvent,
    ItemKind,
    PlanTask,
    Policy,
    Problem,
    Satisfaction,
    Ticket,
    Unit,
)
from duban.periods import period
from duban.queries import kernel as k
from duban.queries.kernel import P, T, U

BY_VALUES: tuple[str, ...] = ("unit", "district", "street", "category", "problem")

# The figures of the response and on-time rates, and of the satisfaction rate, in this order:
# shared by `unit_rates` and the city's rates (duban/queries/weekly.py).
TIMELY_COLUMNS: tuple[str, ...] = (
    "tickets", "responded_in_time", "response_rate", "due", "closed_on_time", "on_time_rate",
)  # fmt: skip
SATISFACTION_COLUMNS: tuple[str, ...] = ("rated", "satisfied", "satisfaction_rate")
# The figures of `unit_rates`, in this order, after the key columns of `KEY_COLUMNS`.
RATE_COLUMNS: tuple[str, ...] = (
    *TIMELY_COLUMNS, "resolved", "resolution_rate", *SATISFACTION_COLUMNS, "returned",
    "excluded", "no_deadline",
)  # fmt: skip
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "unit": ("unit", "unit_name", "kind"),
    "district": ("district",),
    "street": ("street",),
    "category": ("category",),
    "problem": ("problem", "problem_name"),
}
COUNT_COLUMNS = ("tickets", "responded_in_time", "due", "closed_on_time", "resolved", "rated")
RATE_NAMES = ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate")


def rate_columns(by: str) -> list[str]:
    """The exact header of `unit_rates(..., by=by)`."""
    _check_by(by)
    return [*KEY_COLUMNS[by], *RATE_COLUMNS]


def _check_by(by: str) -> None:
    if by not in KEY_COLUMNS:
        raise ValueError(f"by: must be one of {', '.join(BY_VALUES)} (got {by!r})")


# ---------------------------------------------------------------- the three rates


def response_limit_seconds(response_hours: dict[int, float]) -> ColumnElement[Any]:
    """The ticket's response limit in seconds: a CASE on its urgency level (NULL if unknown)."""
    whens = [
        (T.urgency == level, literal(float(hours) * 3600.0, Float))
        for level, hours in sorted(response_hours.items())
    ]
    if not whens:
        return null()
    return case(*whens, else_=null())


def measured(rate: str, lacking: Mapping[str, Collection[str]] | None) -> ColumnElement[bool]:
    """The tickets that can count in `rate`'s denominator: not from a source whose mapping
    lacks the field the rate needs (`lacking`: CityConfig.sources_lacking)."""
    names = sorted((lacking or {}).get(rate, ()))
    return T.source.not_in(names) if names else true()


def rate_counts(
    start: date | datetime,
    end: date | datetime,
    response_hours: dict[int, float],
    lacking: Mapping[str, Collection[str]] | None = None,
) -> tuple[ColumnElement[bool], dict[str, ColumnElement[Any]]]:
    """The counts behind the three rates (三率) for [start, end), by name (docs/metrics.md),
    and the condition of the tickets they count: received or due in the period.

    `lacking` (CityConfig.sources_lacking): the sources with no data for each rate; the
    `*_base` counts (and `rated`) are the denominators without their tickets: a rate with a
    denominator of 0 is missing, never 0."""
    start, end = k.as_datetime(start), k.as_datetime(end)
    received_any = and_(T.received_at >= start, T.received_at < end)
    # Cancelled and invalid tickets, and those an upheld appeal took out of the evaluation
    # (不纳入考核), count in no rate (only in `excluded`); a ticket without a deadline (due_at
    # NULL) is never due, so never in the on-time rate (only in `no_deadline`). `due_at` is
    # the effective deadline (docs/clock.md).
    counts_in = k.counted()
    received = and_(received_any, counts_in)
    due_in = and_(T.due_at >= start, T.due_at < end, counts_in)
    limit = response_limit_seconds(response_hours)
    in_time = and_(
        T.first_response_at.is_not(None),
        k.seconds_between(T.received_at, T.first_response_at) <= limit,
    )
    closed = T.closed_at.is_not(None)
    sat = T.satisfaction
    # A source lacking a rate's field counts in neither side of that rate, even if some of its
    # tickets carry a value (imported before the mapping dropped the column).
    response_in, on_time_in, resolution_in = (
        measured(rate, lacking) for rate in ("response_rate", "on_time_rate", "resolution_rate")
    )
    rated_in = and_(received, measured("satisfaction_rate", lacking))
    returns = func.coalesce(T.returned_count, 0) + func.coalesce(T.reassigned_count, 0)
    counts = {
        "tickets": k.count_if(received),
        "responded_in_time": k.count_if(and_(received, in_time, response_in)),
        "due": k.count_if(due_in),
        "closed_on_time": k.count_if(and_(due_in, closed, T.closed_at <= T.due_at, on_time_in)),
        "resolved": k.count_if(and_(received, T.resolved.is_(True), resolution_in)),
        "closed_resolved": k.count_if(and_(received, closed, T.resolved.is_(True), resolution_in)),
        "closed": k.count_if(and_(received, closed)),
        "rated": k.count_if(and_(rated_in, sat.is_not(None))),
        "n_satisfied": k.count_if(and_(rated_in, sat == Satisfaction.satisfied.value)),
        "n_basic": k.count_if(and_(rated_in, sat == Satisfaction.basically_satisfied.value)),
        "returned": func.coalesce(func.sum(case((received, returns), else_=0)), 0),
        "excluded": k.count_if(and_(received_any, ~counts_in)),
        "no_deadline": k.count_if(and_(received, T.due_at.is_(None))),
        # The denominators of the rates, without the tickets of sources lacking their data.
        "response_base": k.count_if(and_(received, response_in)),
        "on_time_base": k.count_if(and_(due_in, on_time_in)),
        "resolution_base": k.count_if(and_(received, closed, resolution_in)),
    }
    return or_(received_any, due_in), counts


def unit_rates(
    conn: Connection,
    start: date | datetime,
    end: date | datetime,
    response_hours: dict[int, float],
    basic_weight: float,
    by: str = "unit",
    lacking: Mapping[str, Collection[str]] | None = None,
) -> pd.DataFrame:
    """The three rates (三率) and the other figures of `RATE_COLUMNS` per `by`, for [start, end).

    `by`: unit (the dispatched unit, with its name and kind), district, street, category (the
    ticket's own text; tickets without a district/street form one group with an empty key),
    or problem (tickets linked to a problem only). One query, one pass over the tickets
    received or due in the period. See docs/metrics.md for the formulas; `lacking` as in
    `rate_counts` (a rate no ticket of the group can support is NaN).
    """
    _check_by(by)
    in_period, n = rate_counts(start, end, response_hours, lacking)

    keys: list[Any]
    source: Any = Ticket.__table__
    if by == "unit":
        source = source.join(Unit.__table__, U.id == T.unit_id)
        keys = [U.code.label("unit"), U.name.label("unit_name"), U.kind.label("kind")]
    elif by == "problem":
        source = source.join(Problem.__table__, P.id == T.problem_id)
        keys = [P.code.label("problem"), P.name.label("problem_name")]
    else:
        keys = [getattr(T, by).label(by)]

    counts = (
        select(
            *keys,
            *(count.label(name) for name, count in n.items()),
        )
        .select_from(source)
        .where(in_period)
        .group_by(*keys)
        .subquery()
    )
    c = counts.c
    satisfied = cast(c.n_satisfied, Float) + literal(float(basic_weight), Float) * cast(
        c.n_basic, Float
    )
    key_cols = [c[name] for name in KEY_COLUMNS[by]]
    first = c[KEY_COLUMNS[by][0]]
    stmt = select(
        *key_cols,
        c.tickets,
        c.responded_in_time,
        k.ratio(c.responded_in_time, c.response_base).label("response_rate"),
        c.due,
        c.closed_on_time,
        k.ratio(c.closed_on_time, c.on_time_base).label("on_time_rate"),
        c.resolved,
        k.ratio(c.closed_resolved, c.resolution_base).label("resolution_rate"),
        c.rated,
        satisfied.label("satisfied"),
        (satisfied / func.nullif(cast(c.rated, Float), 0.0)).label("satisfaction_rate"),
        c.returned,
        c.excluded,
        c.no_deadline,
    ).order_by(first.is_(None), k.ordered(conn, first))
    frame = k.frame(conn, stmt)
    if by == "unit":
        frame = k.plain(frame, "kind")
    frame = k.typed(
        frame,
        ints=(*COUNT_COLUMNS, "returned", "excluded", "no_deadline"),
        floats=(*RATE_NAMES, "satisfied"),
    )
    return frame[rate_columns(by)]


# ---------------------------------------------------------------- the clock's figures

# The figures of the supervision clock per unit (docs/clock.md "The figures"), in this order
# after `unit`: 退单率, 重办率, 一次解决率 and the extensions.
CLOCK_COLUMNS: tuple[str, ...] = (
    "not_evaluated", "dispatched", "returned_items", "return_rate", "closed", "redone",
    "redo_rate", "first_time_rate", "extensions", "extended_items", "extensions_per_item",
)  # fmt: skip
CLOCK_RATES: tuple[str, ...] = (
    "return_rate", "redo_rate", "first_time_rate", "extensions_per_item",
)  # fmt: skip
# The event kind whose presence in the period makes each figure measured (else missing).
CLOCK_EVIDENCE: dict[str, str] = {
    "return_rate": "returned",
    "redo_rate": "redo",
    "first_time_rate": "redo",
    "extensions_per_item": "extension_approved",
}
CE = ClockEvent.__table__.c


def clock_figures(conn: Connection, start: date | datetime, end: date | datetime) -> pd.DataFrame:
    """Per unit (code): the clock's figures of `CLOCK_COLUMNS` over the tickets received in
    [start, end) that count (`kernel.counted`; `not_evaluated`: those an upheld appeal took
    out, shown, not counted). Definitions in docs/clock.md:

    - 退单率 `return_rate` = `returned_items` / `dispatched`: the items the unit returned
      (an accepted `returned` event whose actor is the unit's code, else the ticket's unit)
      over the items dispatched to it (its own, and those it returned);
    - 重办率 `redo_rate` = `redone` / `closed` and 一次解决率 `first_time_rate` = (`closed` -
      `redone`) / `closed`: among the items the unit closed, those with at least one redo;
    - `extensions` (approved, in force), `extended_items` (with any) and
      `extensions_per_item` = extensions / items of the unit.

    A figure is NaN (missing, never 0 %) when no ticket received in the period carries an
    event of its kind (`CLOCK_EVIDENCE`): the data does not tell."""
    start, end = k.as_datetime(start), k.as_datetime(end)
    received_any = and_(T.received_at >= start, T.received_at < end)
    received = and_(received_any, k.counted())
    ticket_events = Ticket.__table__.join(
        ClockEvent.__table__, and_(CE.item_kind == ItemKind.ticket.value, CE.item_id == T.id)
    )
    kinds = set(
        conn.execute(
            select(CE.kind)
            .select_from(ticket_events)
            .where(received, CE.kind.in_(sorted(set(CLOCK_EVIDENCE.values()))))
            .distinct()
        ).scalars()
    )
    returner = Unit.__table__.alias("returner")
    owned = select(T.id.label("item"), T.unit_id.label("unit_id"), literal(0).label("ret")).where(
        received
    )
    returns = (
        select(
            T.id.label("item"),
            func.coalesce(returner.c.id, T.unit_id).label("unit_id"),
            literal(1).label("ret"),
        )
        .select_from(ticket_events.outerjoin(returner, returner.c.code == CE.actor))
        .where(received, CE.kind == "returned")
    )
    pairs = union_all(owned, returns).subquery("pairs")
    per_item = (
        select(pairs.c.item, pairs.c.unit_id, func.max(pairs.c.ret).label("ret"))
        .group_by(pairs.c.item, pairs.c.unit_id)
        .subquery("per_item")
    )
    dispatched = (
        select(
            per_item.c.unit_id,
            func.count().label("dispatched"),
            func.sum(per_item.c.ret).label("returned_items"),
        )
        .group_by(per_item.c.unit_id)
        .subquery("dispatched")
    )
    closed = and_(received, T.closed_at.is_not(None))
    own = (
        select(
            T.unit_id,
            k.count_if(and_(received_any, T.evaluated.is_(False))).label("not_evaluated"),
            k.count_if(received).label("items"),
            k.count_if(closed).label("closed"),
            k.count_if(and_(closed, T.redo_count > 0)).label("redone"),
            func.coalesce(func.sum(case((received, T.extension_count), else_=0)), 0).label(
                "extensions"
            ),
            k.count_if(and_(received, T.extension_count > 0)).label("extended_items"),
        )
        .where(received_any)
        .group_by(T.unit_id)
        .subquery("own")
    )
    own_counts = ("not_evaluated", "items", "closed", "redone", "extensions", "extended_items")
    n = {name: func.coalesce(own.c[name], 0) for name in own_counts}
    d = {name: func.coalesce(dispatched.c[name], 0) for name in ("dispatched", "returned_items")}
    stmt = (
        select(
            U.code.label("unit"),
            n["not_evaluated"].label("not_evaluated"),
            d["dispatched"].label("dispatched"),
            d["returned_items"].label("returned_items"),
            k.ratio(d["returned_items"], d["dispatched"]).label("return_rate"),
            n["closed"].label("closed"),
            n["redone"].label("redone"),
            k.ratio(n["redone"], n["closed"]).label("redo_rate"),
            k.ratio(n["closed"] - n["redone"], n["closed"]).label("first_time_rate"),
            n["extensions"].label("extensions"),
            n["extended_items"].label("extended_items"),
            k.ratio(n["extensions"], n["items"]).label("extensions_per_item"),
        )
        .select_from(
            Unit.__table__.outerjoin(own, own.c.unit_id == U.id).outerjoin(
                dispatched, dispatched.c.unit_id == U.id
            )
        )
        .where(or_(own.c.unit_id.is_not(None), dispatched.c.unit_id.is_not(None)))
        .order_by(k.ordered(conn, U.code))
    )
    frame = k.typed(
        k.frame(conn, stmt),
        ints=tuple(c for c in CLOCK_COLUMNS if c not in CLOCK_RATES),
        floats=CLOCK_RATES,
    )
    for rate, kind in CLOCK_EVIDENCE.items():
        if kind not in kinds:
            frame[rate] = float("nan")
    return frame[["unit", *CLOCK_COLUMNS]]


def metrics_frame(
    engine: Engine, config: CityConfig, by: str, date_from: date, date_to: date
) -> pd.DataFrame:
    """The three rates and their counts per `by` (unit, problem, category, district, street)
    for the days date_from..date_to (both included); by unit also the clock's figures
    (`CLOCK_COLUMNS`, `clock_figures`)."""
    if by not in BY_VALUES:
        raise ValueError(f"--by: must be one of {', '.join(BY_VALUES)} (got {by!r})")
    start, end = period(date_from, date_to)
    response_hours = {lv.level: lv.response_hours for lv in config.urgency.levels}
    weight = config.metrics.basically_satisfied_weight
    with engine.connect() as conn:
        rates = unit_rates(
            conn, start, end, response_hours, weight, by=by, lacking=config.sources_lacking
        )
        if by != "unit":
            return rates
        return with_clock_figures(rates, clock_figures(conn, start, end))


def with_clock_figures(rates: pd.DataFrame, clock: pd.DataFrame) -> pd.DataFrame:
    """`unit_rates(by="unit")` with the clock's figures of each unit appended (0 items, a
    missing rate, for a unit the clock has no row for)."""
    out = rates.merge(clock, on="unit", how="left")
    for column in CLOCK_COLUMNS:
        if column in CLOCK_RATES:
            out[column] = out[column].astype("float64")
        else:
            out[column] = out[column].fillna(0).astype("int64")
    return out


# ---------------------------------------------------------------- problem volumes


def problem_volumes(conn: Connection, month_start: date, year: int | None = None) -> pd.DataFrame:
    """Per problem: tickets received this month, last month and the same month last year, and
    the month-on-month and year-on-year changes (NaN when the base month has no tickets).

    Every problem is listed (with zeros), or only those of `year` when it is given.
    """
    this_start = k.month_start(month_start)
    ranges = {
        "this_month": (this_start, k.add_months(this_start, 1)),
        "last_month": (k.add_months(this_start, -1), this_start),
        "same_month_last_year": (k.add_months(this_start, -12), k.add_months(this_start, -11)),
    }
    conds = {
        name: and_(T.received_at >= k.as_datetime(a), T.received_at < k.as_datetime(b))
        for name, (a, b) in ranges.items()
    }
    counts = (
        select(T.problem_id, *(k.count_if(cond).label(name) for name, cond in conds.items()))
        .where(T.problem_id.is_not(None), or_(*conds.values()))
        .group_by(T.problem_id)
        .subquery()
    )
    this, last, last_year = (func.coalesce(counts.c[name], 0) for name in ranges)
    stmt = (
        select(
            P.code.label("problem"),
            P.name.label("problem_name"),
            this.label("this_month"),
            last.label("last_month"),
            last_year.label("same_month_last_year"),
            k.ratio(this - last, last).label("mom_change"),
            k.ratio(this - last_year, last_year).label("yoy_change"),
        )
        .select_from(Problem.__table__.outerjoin(counts, counts.c.problem_id == P.id))
        .order_by(k.ordered(conn, P.code))
    )
    if year is not None:
        stmt = stmt.where(P.year == year)
    return k.typed(
        k.frame(conn, stmt),
        ints=("this_month", "last_month", "same_month_last_year"),
        floats=("mom_change", "yoy_change"),
    )


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100, 2):g}%"


def _fell(frame: pd.DataFrame, fall_threshold: float) -> tuple[int, int, int]:
    change = frame["mom_change"]
    return len(frame), int((change < 0).sum()), int((change < -fall_threshold).sum())


def headline(frame: pd.DataFrame, fall_threshold: float) -> str:
    """E.g. ``27个问题中15个环比下降，其中7个降幅超过10%`` (from `problem_volumes`)."""
    total, fell, steep = _fell(frame, fall_threshold)
    return f"{total}个问题中{fell}个环比下降，其中{steep}个降幅超过{_percent(fall_threshold)}"


def headline_en(frame: pd.DataFrame, fall_threshold: float) -> str:
    """E.g. ``15 of 27 problems fell month on month, 7 of them by more than 10 %``."""
    total, fell, steep = _fell(frame, fall_threshold)
    pct = _percent(fall_threshold)[:-1]
    return f"{fell} of {total} problems fell month on month, {steep} of them by more than {pct} %"


# ---------------------------------------------------------------- hot spots


def _street_counts(start: date | datetime, end: date | datetime, label: str) -> Any:
    return (
        select(T.district, T.street, func.count().label(label))
        .where(
            T.street.is_not(None),
            T.received_at >= k.as_datetime(start),
            T.received_at < k.as_datetime(end),
        )
        .group_by(T.district, T.street)
    )


def hot_spots(
    conn: Connection, start: date | datetime, end: date | datetime, top_n: int
) -> pd.DataFrame:
    """The `top_n` streets (street + district) by tickets received in [start, end); ties go to
    the street name, then the district, in code-point order. Columns: street, district,
    tickets, rank (1..top_n)."""
    counts = _street_counts(start, end, "tickets").subquery()
    c = counts.c
    order = (
        c.tickets.desc(),
        k.ordered(conn, c.street),
        c.district.is_(None),
        k.ordered(conn, c.district),
    )
    ranked = select(
        c.street, c.district, c.tickets, func.row_number().over(order_by=order).label("rank")
    ).subquery()
    stmt = select(ranked).where(ranked.c["rank"] <= top_n).order_by(ranked.c["rank"])
    return k.typed(k.frame(conn, stmt), ints=("tickets", "rank"))


def rising_streets(
    conn: Connection,
    start: date | datetime,
    end: date | datetime,
    prev_start: date | datetime,
    prev_end: date | datetime,
    top_n: int,
) -> pd.DataFrame:
    """Streets whose tickets rose most from [prev_start, prev_end) to [start, end): the
    `top_n` largest positive rises (this − previous), ties by street name. Columns: street,
    district, this, previous, change."""
    now = _street_counts(start, end, "n").subquery()
    before = _street_counts(prev_start, prev_end, "n").subquery()
    this = func.coalesce(now.c.n, 0)
    previous = func.coalesce(before.c.n, 0)
    same = and_(
        now.c.street == before.c.street,
        or_(now.c.district == before.c.district,
            and_(now.c.district.is_(None), before.c.district.is_(None))),
    )  # fmt: skip
    stmt = (
        select(
            now.c.street,
            now.c.district,
            this.label("this"),
            previous.label("previous"),
            (this - previous).label("change"),
        )
        .select_from(now.outerjoin(before, same))
        .where(this - previous > 0)
        .order_by(
            (this - previous).desc(),
            k.ordered(conn, now.c.street),
            now.c.district.is_(None),
            k.ordered(conn, now.c.district),
        )
        .limit(top_n)
    )
    return k.typed(k.frame(conn, stmt), ints=("this", "previous", "change"))


# ---------------------------------------------------------------- repeat complaints


def repeat_complaints(
    conn: Connection,
    start: date | datetime,
    end: date | datetime,
    min_count: int,
    by: str = "address",
) -> pd.DataFrame:
    """Groups of tickets received in [start, end) at the same place (by="address": the same
    place key — district, street and normalised address, rules/places.py) or from the same
    caller phone (by="caller") AND of the same category, at least `min_count` of them.

    Columns: address|caller, category, tickets, first_received, last_received, units (the
    codes of the dispatched units, distinct, sorted, comma-separated); by="address" also
    district and street, and `address` is one spelling of the group's address (the first in
    code-point order). Empty keys are ignored. The most tickets first, then by key and
    category.
    """
    if by not in ("address", "caller"):
        raise ValueError(f"by: must be address or caller (got {by!r})")
    key = T.place_key if by == "address" else T.caller_phone
    in_period = and_(
        key.is_not(None),
        key != "",
        T.received_at >= k.as_datetime(start),
        T.received_at < k.as_datetime(end),
    )
    shown = (
        (func.min(T.address).label("address"), func.min(T.district).label("district"),
         func.min(T.street).label("street"))
        if by == "address" else ()
    )  # fmt: skip
    groups = (
        select(
            key.label("key"),
            T.category,
            func.count().label("tickets"),
            func.min(T.received_at).label("first_received"),
            func.max(T.received_at).label("last_received"),
            *shown,
        )
        .where(in_period)
        .group_by(key, T.category)
        .having(func.count() >= min_count)
        .subquery()
    )
    pairs = (
        select(key.label("key"), T.category, U.code)
        .select_from(Ticket.__table__.join(Unit.__table__, U.id == T.unit_id))
        .where(in_period)
        .distinct()
        .subquery()
    )
    units = (
        select(
            pairs.c.key, pairs.c.category, func.aggregate_strings(pairs.c.code, ",").label("units")
        )
        .group_by(pairs.c.key, pairs.c.category)
        .subquery()
    )
    g = groups.c
    label = (g.address, g.district, g.street) if by == "address" else (g.key.label("caller"),)
    stmt = (
        select(*label, g.category, g.tickets, g.first_received, g.last_received, units.c.units)
        .select_from(groups.join(units, and_(units.c.key == g.key, units.c.category == g.category)))
        .order_by(g.tickets.desc(), k.ordered(conn, g.key), k.ordered(conn, g.category))
    )
    frame = k.typed(k.frame(conn, stmt), ints=("tickets",))
    # The order of string aggregation is not defined in SQL: sort the few codes of each group.
    frame["units"] = [",".join(sorted(str(s).split(","))) for s in frame["units"]]
    for column in ("first_received", "last_received"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


# ---------------------------------------------------------------- plan progress


def problem_and_lead_unit() -> list[Any]:
    """The columns problem, problem_name, lead_unit, lead_unit_name of a problem joined to
    its lead unit (``U.id == P.lead_unit_id``)."""
    return [
        P.code.label("problem"),
        P.name.label("problem_name"),
        U.code.label("lead_unit"),
        U.name.label("lead_unit_name"),
    ]


def plan_progress(conn: Connection, as_of: date, year: int) -> pd.DataFrame:
    """Per problem and its lead unit: the plan tasks and policies of `year` (by due month) and
    their completion as of the end of day `as_of`.

    Columns: problem, problem_name, lead_unit, lead_unit_name, tasks, tasks_due (due month
    <= as_of's month), tasks_done, tasks_done_due, completion_to_date (done_due / due),
    completion_year (done / tasks), policies, policies_issued, issuance_rate.
    Problems of `year`, and any other problem with plan items due in `year`.
    """
    year_start, next_year = date(year, 1, 1), date(year + 1, 1, 1)
    month = k.month_start(as_of)
    PT, PO = PlanTask.__table__.c, Policy.__table__.c
    task_due = PT.due_month <= month
    task_done = k.done_by(PT.status, PT.completed_on, as_of)
    tasks = (
        select(
            PT.problem_id,
            func.count().label("tasks"),
            k.count_if(task_due).label("tasks_due"),
            k.count_if(task_done).label("tasks_done"),
            k.count_if(and_(task_due, task_done)).label("tasks_done_due"),
        )
        .where(PT.due_month >= year_start, PT.due_month < next_year)
        .group_by(PT.problem_id)
        .subquery()
    )
    policies = (
        select(
            PO.problem_id,
            func.count().label("policies"),
            k.count_if(k.done_by(PO.status, PO.issued_on, as_of)).label("policies_issued"),
        )
        .where(PO.due_month >= year_start, PO.due_month < next_year)
        .group_by(PO.problem_id)
        .subquery()
    )
    n = {
        name: func.coalesce(sub.c[name], 0)
        for sub, names in (
            (tasks, ("tasks", "tasks_due", "tasks_done", "tasks_done_due")),
            (policies, ("policies", "policies_issued")),
        )
        for name in names
    }
    stmt = (
        select(
            *problem_and_lead_unit(),
            *(n[name].label(name) for name in ("tasks", "tasks_due", "tasks_done")),
            n["tasks_done_due"].label("tasks_done_due"),
            k.ratio(n["tasks_done_due"], n["tasks_due"]).label("completion_to_date"),
            k.ratio(n["tasks_done"], n["tasks"]).label("completion_year"),
            n["policies"].label("policies"),
            n["policies_issued"].label("policies_issued"),
            k.ratio(n["policies_issued"], n["policies"]).label("issuance_rate"),
        )
        .select_from(
            Problem.__table__.join(Unit.__table__, U.id == P.lead_unit_id)
            .outerjoin(tasks, tasks.c.problem_id == P.id)
            .outerjoin(policies, policies.c.problem_id == P.id)
        )
        .where(or_(P.year == year, tasks.c.problem_id.is_not(None),
                   policies.c.problem_id.is_not(None)))
        .order_by(k.ordered(conn, P.code))
    )  # fmt: skip
    return k.typed(
        k.frame(conn, stmt),
        ints=("tasks", "tasks_due", "tasks_done", "tasks_done_due", "policies", "policies_issued"),
        floats=("completion_to_date", "completion_year", "issuance_rate"),
    )


def overdue_plan_tasks(conn: Connection, as_of: date) -> pd.DataFrame:
    """Plan tasks whose due month ended before `as_of` (due_month < as_of's month) and that are
    not done as of the end of `as_of`. Columns: problem, code, title, owner_unit,
    owner_unit_name, due_month, status, progress; by due month, problem, code."""
    PT = PlanTask.__table__.c
    stmt = (
        select(
            P.code.label("problem"), PT.code, PT.title, U.code.label("owner_unit"),
            U.name.label("owner_unit_name"), PT.due_month, PT.status, PT.progress,
        )
        .select_from(
            PlanTask.__table__.join(Problem.__table__, P.id == PT.problem_id)
            .join(Unit.__table__, U.id == PT.owner_unit_id)
        )
        .where(
            PT.due_month < k.month_start(as_of),
            ~k.done_by(PT.status, PT.completed_on, as_of),
        )
        .order_by(PT.due_month, k.ordered(conn, P.code), k.ordered(conn, PT.code))
    )  # fmt: skip
    return k.plain(k.frame(conn, stmt), "status")


# ---------------------------------------------------------------- data coverage


def ticket_sources(conn: Connection, start: date | datetime, end: date | datetime) -> list[str]:
    """The sources (export mappings) of the tickets received or due in [start, end), sorted:
    with CityConfig.sources_lacking they say which rates the period's data can support
    (duban/rules/coverage.py)."""
    start, end = k.as_datetime(start), k.as_datetime(end)
    stmt = (
        select(T.source)
        .where(or_(and_(T.received_at >= start, T.received_at < end),
                   and_(T.due_at >= start, T.due_at < end)))
        .distinct()
    )  # fmt: skip
    return sorted(str(s) for s in conn.execute(stmt).scalars())
