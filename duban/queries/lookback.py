"""The SQL of the look-back (回头看): which closed tickets came back.

A ticket is *closed in the period* when its status is closed (or reopened since: it was
closed in the period all the same) and `closed_at` is in ``[closed_from, closed_until)``, and
it matches the unit and problem filters. It is *examined* when it has a place under the
chosen notion of "same place": "address" is the place key (district, street and normalised
address, rules/places.py); "community" the community within the same district and street;
"street" the street within the same district (a missing district or street matches only a
missing one). An empty or NULL place never matches anything. An examined ticket has
*recurred* when at least one other ticket was received strictly after its closure and at
most `window_days` days after it (``0 < received_at - closed_at <= window_days``; exactly
at the window's end counts), at the same place and, with `same_category`, of the same
category. Definitions: docs/lookback.md.

Everything is one statement per figure: a self-join of the tickets on the place, with window
functions for the count and the first recurrence; Python only names the columns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Row, Select, and_, case, func, literal, select
from sqlalchemy.sql.selectable import Subquery

from duban.db.models import ItemKind, LookbackFinding, Problem, Run, Ticket, TicketStatus, Unit
from duban.queries import kernel as k
from duban.queries.kernel import F, P, T, U

PLACES: tuple[str, ...] = ("address", "community", "street")
CLOSED_STATUSES = (TicketStatus.closed.value, TicketStatus.reopened.value)


@dataclass(frozen=True)
class LookbackCriteria:
    """What a look-back examines and what counts as the same problem coming back."""

    closed_from: datetime  # included
    closed_until: datetime  # excluded: the day after the last closing day, 00:00
    window_days: int
    same_place: str = "address"
    same_category: bool = True
    unit_ids: tuple[int, ...] = ()  # empty: every unit
    problem_ids: tuple[int, ...] = ()  # empty: every ticket, with or without a problem

    def __post_init__(self) -> None:
        if self.same_place not in PLACES:
            raise ValueError(f"same_place: must be one of {', '.join(PLACES)}")
        if self.window_days < 1:
            raise ValueError(f"window_days: must be at least 1 (got {self.window_days})")


# The column each notion of "same place" compares, and the columns that must be equal too
# (NULL-safely: a missing district matches a missing district only). "address" is the place
# key (district|street|normalised address, rules/places.py), which holds its qualifiers.
_PLACE_COLUMN = {"address": "place_key", "community": "community", "street": "street"}
_QUALIFIERS = {"address": (), "community": ("district", "street"), "street": ("district",)}


def _place(table: Any, criteria: LookbackCriteria) -> Any:
    return table.c[_PLACE_COLUMN[criteria.same_place]]


def _same_place(r: Any, e: Any, criteria: LookbackCriteria) -> list[ColumnElement[bool]]:
    qualifiers = _QUALIFIERS[criteria.same_place]
    return [_place(r, criteria) == e.c.place] + [
        r.c[name].is_not_distinct_from(e.c[f"place_{name}"]) for name in qualifiers
    ]


def _has_place(place: Any) -> ColumnElement[bool]:
    return and_(place.is_not(None), func.trim(place) != "")


def closed_in_period(criteria: LookbackCriteria) -> Select[Any]:
    """The tickets closed in the period that match the filters, with their place."""
    conditions: list[ColumnElement[bool]] = [
        T.status.in_(CLOSED_STATUSES),
        T.evaluated.is_(True),  # an upheld appeal: out of every population (docs/clock.md)
        T.closed_at >= criteria.closed_from,
        T.closed_at < criteria.closed_until,
    ]
    if criteria.unit_ids:
        conditions.append(T.unit_id.in_(criteria.unit_ids))
    if criteria.problem_ids:
        conditions.append(T.problem_id.in_(criteria.problem_ids))
    place = _place(Ticket.__table__, criteria)
    qualifiers = [T[name].label(f"place_{name}") for name in _QUALIFIERS[criteria.same_place]]
    return select(
        T.id, T.unit_id, T.problem_id, T.closed_at, T.category, place.label("place"), *qualifiers
    ).where(*conditions)


def recurrence_pairs(criteria: LookbackCriteria) -> Subquery:
    """(item_id, recurrence_id) for every examined ticket and each ticket that recurred it,
    with `recurrences` (per item) and `rank` (1 = the first recurrence received); `own` (1
    when the recurrence is a ticket of the item's own unit), `own_recurrences` (per item) and
    `own_rank` (1 with own = 1: the first recurrence among the unit's own tickets)."""
    e = closed_in_period(criteria).subquery("e")
    r = Ticket.__table__.alias("r")
    window_seconds = criteria.window_days * 86400
    on = [
        *_same_place(r, e, criteria),
        r.c.id != e.c.id,
        r.c.received_at > e.c.closed_at,
        k.seconds_between(e.c.closed_at, r.c.received_at) <= window_seconds,
        # The same bounds as constants, so that the index on received_at narrows the join.
        r.c.received_at > criteria.closed_from,
        r.c.received_at < criteria.closed_until + timedelta(days=criteria.window_days),
    ]
    if criteria.same_category:
        on.append(r.c.category == e.c.category)
    own = case((r.c.unit_id == e.c.unit_id, literal(1)), else_=literal(0))
    return (
        select(
            e.c.id.label("item_id"),
            r.c.id.label("recurrence_id"),
            func.count().over(partition_by=e.c.id).label("recurrences"),
            func.row_number()
            .over(partition_by=e.c.id, order_by=(r.c.received_at, r.c.id))
            .label("rank"),
            own.label("own"),
            func.sum(own).over(partition_by=e.c.id).label("own_recurrences"),
            func.row_number()
            .over(partition_by=(e.c.id, own), order_by=(r.c.received_at, r.c.id))
            .label("own_rank"),
        )
        .select_from(e.join(r, and_(*on)))
        .where(_has_place(e.c.place))
        .subquery("pairs")
    )


FINDING_COLUMNS: tuple[str, ...] = (
    "item_id", "external_id", "unit_id", "unit_code", "unit_name", "problem_code", "status",
    "received_at", "closed_at", "category", "district", "street", "community", "address",
    "content", "recurrences", "first_recurrence_id", "first_recurrence_external_id",
    "first_recurrence_received_at", "first_recurrence_category", "first_recurrence_content",
    "own_recurrences", "first_own_recurrence_external_id", "first_own_recurrence_received_at",
    "first_own_recurrence_content",
)  # fmt: skip


def findings(conn: Connection, criteria: LookbackCriteria) -> pd.DataFrame:
    """One row per recurred ticket (columns `FINDING_COLUMNS`), by unit code, closing time
    and id. Citizen text (`content`, `address`, …) is raw: mask it before it leaves.

    `first_recurrence_*` is the first recurrence whichever unit received it (for the
    office); `first_own_recurrence_*` the first among the item's own unit's tickets (NULL
    when every recurrence is another unit's) — all a unit's notice may show of them."""
    pairs = recurrence_pairs(criteria)
    first = select(pairs).where(pairs.c.rank == 1).subquery("first")
    own_first = select(pairs).where(pairs.c.own == 1, pairs.c.own_rank == 1).subquery("own")
    item = Ticket.__table__.alias("item")
    rec = Ticket.__table__.alias("rec")
    own_rec = Ticket.__table__.alias("own_rec")
    i = item.c
    stmt = (
        select(
            i.id.label("item_id"), i.external_id, i.unit_id, U.code.label("unit_code"),
            U.name.label("unit_name"), P.code.label("problem_code"), i.status, i.received_at,
            i.closed_at, i.category, i.district, i.street, i.community, i.address, i.content,
            first.c.recurrences, rec.c.id.label("first_recurrence_id"),
            rec.c.external_id.label("first_recurrence_external_id"),
            rec.c.received_at.label("first_recurrence_received_at"),
            rec.c.category.label("first_recurrence_category"),
            rec.c.content.label("first_recurrence_content"),
            first.c.own_recurrences,
            own_rec.c.external_id.label("first_own_recurrence_external_id"),
            own_rec.c.received_at.label("first_own_recurrence_received_at"),
            own_rec.c.content.label("first_own_recurrence_content"),
        )
        .select_from(
            first.join(item, item.c.id == first.c.item_id)
            .join(rec, rec.c.id == first.c.recurrence_id)
            .outerjoin(own_first, own_first.c.item_id == first.c.item_id)
            .outerjoin(own_rec, own_rec.c.id == own_first.c.recurrence_id)
            .join(Unit.__table__, U.id == i.unit_id)
            .outerjoin(Problem.__table__, P.id == i.problem_id)
        )
        .order_by(k.ordered(conn, U.code), i.closed_at, i.id)
    )  # fmt: skip
    frame = k.frame(conn, stmt)
    frame["status"] = [getattr(s, "value", s) for s in frame["status"]]
    for column in ("item_id", "unit_id", "recurrences", "first_recurrence_id", "own_recurrences"):
        frame[column] = frame[column].astype("int64")
    return frame


def problem_ids(conn: Connection, codes: Collection[str]) -> dict[str, int]:
    """code -> id of the problems of `codes` (the request's problem filter)."""
    return k.ids_by_code(conn, P, codes)


def tickets_found(run_id: int) -> Select[Any]:
    """The ids of the tickets the look-back run `run_id` found recurred (a subquery)."""
    return select(F.item_id).where(F.run_id == run_id, F.item_kind == ItemKind.ticket.value)


def reopened_before(loop: str, period: str, run_id: int) -> Select[Any]:
    """The ids of the tickets another run of `loop` for `period` found and reopened."""
    R = Run.__table__.c
    return (
        select(F.item_id)
        .select_from(LookbackFinding.__table__.join(Run.__table__, R.id == F.run_id))
        .where(
            R.loop == loop,
            R.period == period,
            F.run_id != run_id,
            F.item_kind == ItemKind.ticket.value,
            F.reopened.is_(True),
        )
    )


def findings_of_run(conn: Connection, run_id: int) -> list[Row[Any]]:
    """The item ids of every finding recorded by the run `run_id`."""
    return list(conn.execute(select(F.item_id).where(F.run_id == run_id)).all())


RATE_COLUMNS: tuple[str, ...] = ("closed", "examined", "recurred", "recurrence_rate")


def recurrence_rates(conn: Connection, criteria: LookbackCriteria, by: str) -> pd.DataFrame:
    """Per unit (`by="unit"`: unit_id, unit_code, unit_name) or per problem (`by="problem"`:
    problem_id, problem_code, problem_name; tickets without a problem are left out): closed
    (in the period, matching the filters), examined (of those, with a place), recurred, and
    recurrence_rate = recurred / examined (NaN when nothing was examined). Only groups with
    at least one closed ticket; the highest rate first, then by code."""
    if by not in ("unit", "problem"):
        raise ValueError(f"by: must be unit or problem (got {by!r})")
    e = closed_in_period(criteria).subquery("e")
    pairs = recurrence_pairs(criteria)
    recurred = select(pairs.c.item_id).where(pairs.c.rank == 1).subquery("recurred")
    if by == "unit":
        keys: Sequence[Any] = (U.id.label("unit_id"), U.code.label("unit_code"),
                               U.name.label("unit_name"))  # fmt: skip
        source = e.join(Unit.__table__, U.id == e.c.unit_id)
    else:
        keys = (P.id.label("problem_id"), P.code.label("problem_code"),
                P.name.label("problem_name"))  # fmt: skip
        source = e.join(Problem.__table__, P.id == e.c.problem_id)
    stmt = (
        select(
            *keys,
            func.count().label("closed"),
            func.coalesce(
                func.sum(case((_has_place(e.c.place), literal(1)), else_=literal(0))), 0
            ).label("examined"),
            func.count(recurred.c.item_id).label("recurred"),
        )
        .select_from(source.outerjoin(recurred, recurred.c.item_id == e.c.id))
        .group_by(*keys)
    )
    frame = k.frame(conn, stmt)
    for column in ("closed", "examined", "recurred"):
        frame[column] = frame[column].astype("int64")
    frame["recurrence_rate"] = (frame["recurred"] / frame["examined"].where(frame["examined"] > 0)
                                ).astype("float64")  # fmt: skip
    frame = frame.sort_values(
        ["recurrence_rate", f"{by}_code"], ascending=[False, True], na_position="last"
    )
    return frame.reset_index(drop=True)
