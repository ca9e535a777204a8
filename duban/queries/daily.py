"""The SQL behind the daily report: per-unit counts, the items each unit owes, the digest.

Everything is "as of" the start of the report day (`DailyWindow.now`), so that a re-run
for the same day gives the same figures whatever was imported since. Colours are
evaluated in SQL with the cut-offs of duban.rules.warnings (see `DailyWindow`); the tests
check that SQL and the pure rules agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)

from duban.db.models import (
    ClockEvent,
    ClockRefusal,
    Escalation,
    ItemKind,
    PlanItemStatus,
    PlanTask,
    Problem,
    Ticket,
    TicketStatus,
    Unit,
)
from duban.queries import kernel as k
from duban.queries.kernel import PT, T
from duban.queries.units import directory_frame


@dataclass(frozen=True)
class DailyWindow:
    day: date  # the report day (a working day)
    now: datetime  # start of the report day: the state the report describes
    since: datetime  # start of the window of "new": the day after the last report's window
    due_soon_until: datetime  # items due before this are "due within the next working days"
    blue_before: dict[int, datetime]  # urgency level -> blue when due before this
    yellow_before: dict[int, datetime]  # level -> yellow when received before this, no response
    month_start: date  # plan tasks due this month


def make_window(
    day: date,
    since_day: date,
    *,
    blue_cutoff: dict[int, date],
    response_hours: dict[int, float],
    due_soon_day: date,
) -> DailyWindow:
    now = datetime.combine(day, time())
    return DailyWindow(
        day=day,
        now=now,
        since=datetime.combine(since_day, time()),
        due_soon_until=datetime.combine(due_soon_day + timedelta(days=1), time()),
        blue_before={
            lv: datetime.combine(d + timedelta(days=1), time()) for lv, d in blue_cutoff.items()
        },
        yellow_before={lv: now - timedelta(hours=h) for lv, h in response_hours.items()},
        month_start=day.replace(day=1),
    )


def counts_in() -> ColumnElement[bool]:
    """Not cancelled or invalid, and counted for evaluation (an upheld appeal takes a ticket
    out): the others are in no count of open items and on no ladder (`kernel.counted`)."""
    return k.counted()


def open_at(w: DailyWindow) -> ColumnElement[bool]:
    """Received before the report and not closed by then (status or a later close time);
    never a cancelled or invalid ticket."""
    return and_(
        T.received_at < w.now,
        or_(T.status != TicketStatus.closed.value, T.closed_at >= w.now),
        counts_in(),
    )


def colour(w: DailyWindow) -> ColumnElement[str]:
    """The ticket's colour as of `w.now` (red > yellow > blue > green), for open tickets."""
    no_response = or_(T.first_response_at.is_(None), T.first_response_at >= w.now)
    yellow = or_(
        *(and_(T.urgency == lv, T.received_at < before) for lv, before in w.yellow_before.items())
    )
    blue = or_(*(and_(T.urgency == lv, T.due_at < before) for lv, before in w.blue_before.items()))
    return case(
        # a suspended ticket's clock is stopped: never late, no colour (docs/clock.md)
        (k.suspended_at(w.now), literal("suspended")),
        (T.due_at < w.now, literal("red")),
        (and_(no_response, yellow), literal("yellow")),
        (blue, literal("blue")),
        else_=literal("green"),
    )


def unit_counts(conn: Connection, w: DailyWindow) -> pd.DataFrame:
    """Per unit: new, responded, resolved in the window; open items by colour; due soon."""
    in_window = (w.since, w.now)
    new = (
        select(T.unit_id, func.count().label("new"))
        .where(T.received_at >= in_window[0], T.received_at < in_window[1])
        .group_by(T.unit_id)
    )
    responded = (
        select(T.unit_id, func.count().label("responded"))
        .where(T.first_response_at >= in_window[0], T.first_response_at < in_window[1])
        .group_by(T.unit_id)
    )
    resolved = (
        select(T.unit_id, func.count().label("resolved"))
        .where(T.closed_at >= in_window[0], T.closed_at < in_window[1], T.resolved.is_(True))
        .group_by(T.unit_id)
    )
    c = colour(w)
    open_counts = (
        select(
            T.unit_id,
            func.count().label("open"),
            func.sum(case((c == "red", 1), else_=0)).label("red"),
            func.sum(case((c == "yellow", 1), else_=0)).label("yellow"),
            func.sum(case((c == "blue", 1), else_=0)).label("blue"),
            func.sum(case((c == "suspended", 1), else_=0)).label("suspended"),
            func.sum(
                case(
                    (and_(c != "suspended", T.due_at >= w.now, T.due_at < w.due_soon_until), 1),
                    else_=0,
                )
            ).label("due_soon"),
            func.sum(case((T.due_at.is_(None), 1), else_=0)).label("no_deadline"),
        )
        .where(open_at(w))
        .group_by(T.unit_id)
    )
    frames = [
        k.frame(conn, q).set_index("unit_id") for q in (new, responded, resolved, open_counts)
    ]
    counts = pd.concat(frames, axis=1).fillna(0).astype("int64")
    for column in ("new", "responded", "resolved", "open", "red", "yellow", "blue", "suspended",
                   "due_soon", "no_deadline"):  # fmt: skip
        if column not in counts:
            counts[column] = 0
    return counts


def unit_items(conn: Connection, w: DailyWindow, per_unit: int = 50) -> pd.DataFrame:
    """Open tickets that are not green, the most urgent first, at most `per_unit` per unit;
    with the highest escalation step each has reached."""
    c = colour(w).label("colour")
    level = (
        select(func.max(Escalation.level))
        .where(
            Escalation.item_kind == ItemKind.ticket.value,
            Escalation.item_id == T.id,
            Escalation.round == T.ladder_round,  # a redo starts a fresh ladder
            Escalation.due_on <= w.day,
        )
        .scalar_subquery()
    )
    ranked = (
        select(
            T.id, T.unit_id, T.external_id, T.received_at, T.due_at, T.category, T.street,
            T.address, T.content, T.urgency, c, level.label("escalation_level"),
            T.base_due_at, T.clock_events,
            func.row_number()
            .over(partition_by=T.unit_id, order_by=(T.due_at, T.id))
            .label("rank"),
        )
        .where(open_at(w), c != "suspended", or_(T.due_at < w.due_soon_until, c != "green"))
        .subquery()
    )  # fmt: skip
    return k.frame(conn, select(ranked).where(ranked.c.rank <= per_unit))


def new_items(conn: Connection, w: DailyWindow, per_unit: int = 50) -> pd.DataFrame:
    ranked = (
        select(
            T.id, T.unit_id, T.external_id, T.received_at, T.due_at, T.category, T.street,
            T.address, T.content, T.urgency,
            func.row_number()
            .over(partition_by=T.unit_id, order_by=(T.received_at, T.id))
            .label("rank"),
        )
        .where(T.received_at >= w.since, T.received_at < w.now)
        .subquery()
    )  # fmt: skip
    return k.frame(conn, select(ranked).where(ranked.c.rank <= per_unit))


def plan_tasks_this_month(conn: Connection, w: DailyWindow) -> pd.DataFrame:
    """Plan tasks due this month and not done, by owner unit, with their problem."""
    stmt = (
        select(
            PlanTask.id, PlanTask.owner_unit_id.label("unit_id"), PlanTask.code, PlanTask.title,
            PlanTask.due_month, PlanTask.status, PlanTask.progress,
            Problem.code.label("problem_code"), Problem.name.label("problem_name"),
        )
        .join(Problem, Problem.id == PlanTask.problem_id)
        .where(PlanTask.due_month == w.month_start, PlanTask.status != PlanItemStatus.done.value)
        .order_by(PlanTask.owner_unit_id, PlanTask.code)
    )  # fmt: skip
    return k.frame(conn, stmt)


def _is(kind: ItemKind) -> ColumnElement[bool]:
    return Escalation.item_kind == kind.value


def escalations_in_window(
    conn: Connection, since_day: date, day: date, recorded_since: datetime | None = None
) -> pd.DataFrame:
    """Escalation steps that became due in (since_day, day], with unit and item; and those
    recorded since `recorded_since` (a first run's catch-up of older steps) up to `day`."""
    window = and_(Escalation.due_on > since_day, Escalation.due_on <= day)
    if recorded_since is not None:
        window = or_(
            window, and_(Escalation.applied_at >= recorded_since, Escalation.due_on <= day)
        )
    stmt = (
        select(
            Escalation.id, Escalation.item_kind, Escalation.item_id, Escalation.step,
            Escalation.level, Escalation.unit_id, Escalation.due_on, Escalation.reason,
            Unit.code.label("unit_code"), Unit.name.label("unit_name"),
            func.coalesce(Ticket.external_id, PlanTask.code).label("item_ref"),
        )
        .join(Unit, Unit.id == Escalation.unit_id)
        .outerjoin(Ticket, and_(_is(ItemKind.ticket), Ticket.id == Escalation.item_id))
        .outerjoin(PlanTask, and_(_is(ItemKind.plan_task), PlanTask.id == Escalation.item_id))
        .where(window)
        .order_by(Escalation.level.desc(), Escalation.due_on, Escalation.id)
    )  # fmt: skip
    return k.frame(conn, stmt)


def units(conn: Connection) -> pd.DataFrame:
    return directory_frame(conn)


# ---------------------------------------------------------------- the supervision clock

# The events that move a deadline (docs/clock.md), for "why it moved".
MOVING_KINDS: tuple[str, ...] = (
    "extension_approved", "resumed", "redispatched", "redo", "calendar_correction",
)  # fmt: skip
# Requests, and the decisions that answer them.
REQUEST_ANSWERS: dict[str, tuple[str, ...]] = {
    "extension_requested": ("extension_approved", "extension_refused"),
    "appeal_filed": ("appeal_upheld", "appeal_rejected"),
}
_CE = ClockEvent.__table__.c


def _ticket_events() -> Any:
    return ClockEvent.__table__.join(
        Ticket.__table__, and_(_CE.item_kind == ItemKind.ticket.value, T.id == _CE.item_id)
    ).join(Unit.__table__, Unit.id == T.unit_id)


def deadline_moves(conn: Connection, ticket_ids: list[int], now: datetime) -> pd.DataFrame:
    """For each of `ticket_ids` with one: the latest deadline-moving event before `now`
    (item_id, kind, at, reason) — why the current deadline differs from the original."""
    if not ticket_ids:
        return pd.DataFrame(columns=["item_id", "kind", "at", "reason"])
    ranked = (
        select(
            _CE.item_id, _CE.kind, _CE.at, _CE.reason,
            func.row_number()
            .over(partition_by=_CE.item_id, order_by=(_CE.at.desc(), _CE.id.desc()))
            .label("rank"),
        )
        .where(
            _CE.item_kind == ItemKind.ticket.value, _CE.item_id.in_(ticket_ids),
            _CE.kind.in_(MOVING_KINDS), _CE.at < now,
        )
        .subquery()
    )  # fmt: skip
    return k.frame(
        conn,
        select(ranked.c.item_id, ranked.c.kind, ranked.c.at, ranked.c.reason).where(
            ranked.c.rank == 1
        ),
    )


def _event_list(
    conn: Connection, condition: ColumnElement[bool], limit: int
) -> tuple[pd.DataFrame, int]:
    """The ticket events matching `condition`, at most `limit` by time, and their total."""
    stmt = (
        select(T.external_id, Unit.name.label("unit_name"), _CE.kind, _CE.at, _CE.actor,
               _CE.reason)
        .select_from(_ticket_events())
        .where(condition)
        .order_by(_CE.at, _CE.id)
        .limit(limit)
    )  # fmt: skip
    total = conn.scalar(select(func.count()).select_from(_ticket_events()).where(condition))
    return k.frame(conn, stmt), int(total or 0)


def clock_decisions(
    conn: Connection, since: datetime, now: datetime, limit: int
) -> tuple[pd.DataFrame, int]:
    """The clock events in force that took effect in [since, now) other than requests (the
    day's decisions: extensions approved or refused, suspensions, returns, redos, appeals
    decided, …), at most `limit`, with their total. Columns: external_id, unit_name, kind,
    at, actor, reason."""
    window = and_(_CE.at >= since, _CE.at < now, _CE.kind.not_in(list(REQUEST_ANSWERS)))
    return _event_list(conn, window, limit)


def pending_requests(conn: Connection, now: datetime, limit: int) -> tuple[pd.DataFrame, int]:
    """Extension requests and appeals filed before `now` that no decision of the item has
    answered yet (none at or after the request), at most `limit`, with their total.
    Columns: external_id, unit_name, kind, at, actor, reason."""
    answer = ClockEvent.__table__.alias("answer")
    answered = or_(
        *(
            and_(
                _CE.kind == request,
                exists().where(
                    answer.c.item_kind == _CE.item_kind, answer.c.item_id == _CE.item_id,
                    answer.c.kind.in_(answers), answer.c.at >= _CE.at, answer.c.at < now,
                ),
            )
            for request, answers in REQUEST_ANSWERS.items()
        )
    )  # fmt: skip
    pending = and_(_CE.kind.in_(list(REQUEST_ANSWERS)), _CE.at < now, ~answered)
    return _event_list(conn, pending, limit)


_CR = ClockRefusal.__table__.c


def refusal_window(
    since: datetime,
    now: datetime,
    recorded_from: datetime | None = None,
    recorded_to: datetime | None = None,
) -> ColumnElement[bool]:
    """The refusals a report lists: asked in [since, now) (clock_refusals.at); and, when the
    report knows when it and the previous one were measured ([recorded_from, recorded_to)),
    those recorded meanwhile that were asked before `since` or at no readable time — a
    workbook read or an export imported after the report that covered their time. Asked in
    the window but recorded after this report was measured: the next report's window has
    their time no more, so the next report lists them by the time they were recorded. Each
    refusal is listed by exactly one report (docs/clock.md, "Refusals")."""
    asked = and_(_CR.at >= since, _CR.at < now)
    if recorded_to is None:
        return asked
    asked = and_(asked, _CR.recorded_at < recorded_to)
    if recorded_from is None:  # the first report: nothing before it to catch up
        return or_(asked, and_(_CR.at.is_(None), _CR.recorded_at < recorded_to))
    late = and_(
        _CR.recorded_at >= recorded_from,
        _CR.recorded_at < recorded_to,
        or_(_CR.at.is_(None), _CR.at < since),
    )
    return or_(asked, late)


def clock_refusals(
    conn: Connection,
    since: datetime,
    now: datetime,
    codes: Sequence[str],
    limit: int,
    recorded: tuple[datetime | None, datetime | None] = (None, None),
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The refusals of the report's window (`refusal_window`; `recorded`: when the previous
    report and this one were measured) whose code is among `codes`, at most `limit` by time,
    with unit; and the count of every refusal of the window by code. Columns: external_id
    (the ticket, else the reference as asked), unit_name (none for an unknown ticket), kind,
    at, actor, code, reason."""
    window = refusal_window(since, now, *recorded)
    joined = ClockRefusal.__table__.outerjoin(Ticket.__table__, T.id == _CR.item_id).outerjoin(
        Unit.__table__, Unit.id == T.unit_id
    )
    stmt = (
        select(func.coalesce(T.external_id, _CR.item_ref).label("external_id"),
               Unit.name.label("unit_name"), _CR.kind, _CR.at, _CR.actor, _CR.code, _CR.reason)
        .select_from(joined)
        .where(window, _CR.code.in_(list(codes)))
        .order_by(_CR.at, _CR.id)
        .limit(limit)
    )  # fmt: skip
    counts = conn.execute(select(_CR.code, func.count()).where(window).group_by(_CR.code))
    return k.frame(conn, stmt), {str(c): int(n) for c, n in counts}


# ---------------------------------------------------------------- the escalation ladder


def _applied_steps(
    conn: Connection, kind: ItemKind, ids_query: Any
) -> dict[tuple[int, int], set[str]]:
    """(item id, ladder round) -> the steps recorded for it, for the items of `kind` among
    `ids_query`."""
    rows = conn.execute(
        select(Escalation.item_id, Escalation.round, Escalation.step).where(
            Escalation.item_kind == kind.value, Escalation.item_id.in_(ids_query)
        )
    )
    applied: dict[tuple[int, int], set[str]] = {}
    for item_id, round_, step in rows:
        applied.setdefault((item_id, round_), set()).add(step)
    return applied


def ladder_tickets(
    conn: Connection,
    *,
    due_before: datetime,
    received_before: datetime,
    closed_since: datetime,
    last_step: str,
) -> tuple[list[Row[Any]], dict[tuple[int, int], set[str]]]:
    """The tickets the ladder may have a step for — due (effective deadline) before
    `due_before`, received before `received_before`, open or closed since `closed_since`,
    not suspended, without the `last_step` in their current ladder round yet — as (id,
    unit_id, due_at, closed_at, status, urgency, ladder_round), and the steps each has by
    (id, round). A step of an earlier round stays recorded; the current round's steps
    follow the current deadline (docs/clock.md)."""
    done_with_ladder = exists().where(
        Escalation.item_kind == ItemKind.ticket.value,
        Escalation.item_id == T.id,
        Escalation.step == last_step,
        Escalation.round == T.ladder_round,
    )
    ticket_filter = and_(
        T.due_at < due_before,
        T.received_at < received_before,
        or_(T.status != TicketStatus.closed.value, T.closed_at >= closed_since),
        counts_in(),
        T.suspended_since.is_(None),  # no ladder step while suspended
        ~done_with_ladder,
    )
    tickets = conn.execute(
        select(T.id, T.unit_id, T.due_at, T.closed_at, T.status, T.urgency, T.ladder_round).where(
            ticket_filter
        )
    ).all()
    applied = _applied_steps(conn, ItemKind.ticket, select(T.id).where(ticket_filter))
    return list(tickets), applied


def ladder_plan_tasks(
    conn: Connection, *, last_due_month: date, completed_since: date
) -> tuple[list[Row[Any]], dict[int, set[str]]]:
    """The plan tasks the ladder may have a step for — due in or before `last_due_month`, not
    done or completed since `completed_since` — as (id, owner_unit_id, due_month, status,
    completed_on), and the steps each has."""
    plan_filter = and_(
        PT.due_month <= last_due_month,
        or_(PT.status != PlanItemStatus.done.value, PT.completed_on >= completed_since),
    )
    tasks = conn.execute(
        select(PT.id, PT.owner_unit_id, PT.due_month, PT.status, PT.completed_on).where(plan_filter)
    ).all()
    applied = _applied_steps(conn, ItemKind.plan_task, select(PT.id).where(plan_filter))
    return list(tasks), {item: steps for (item, _), steps in applied.items()}
