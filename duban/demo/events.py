"""The demo city's supervision-clock events (docs/clock.md): every kind, on tickets of the
last days before the demo's end, recorded through `duban.clock.record_events` like any
other source (origin `demo`).

Each group of tickets gets one story: an extension requested and approved, one refused,
one still pending; a suspension resumed, one still open; a return and a re-dispatch to
another unit; a dissatisfied call-back (redo) of a closed ticket; an appeal upheld, one
rejected; a cancellation and an invalidation. A few requests the rules refuse (an extension
asked after the deadline, one approved beyond the cap) are stored as refusals and listed in
the office digest. The choice is seeded: the same demo gives the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select

from duban.clock import NewEvent
from duban.db.models import Ticket, TicketStatus, Unit

T = Ticket.__table__.c
STORIES = (
    "extension_approved", "extension_refused", "extension_pending", "suspension_resumed",
    "suspension_open", "returned", "appeal_upheld", "appeal_rejected", "cancelled",
    "invalidated",
)  # fmt: skip
HOUR = timedelta(hours=1)


def demo_events(engine: Engine, as_of: datetime, seed: int, per_story: int = 12) -> list[NewEvent]:
    """`per_story` tickets for each story of `STORIES` among the open tickets received 3 to
    8 days before `as_of` with a deadline a day or more after receipt, and as many redos of
    tickets closed in those days."""
    rng = random.Random(seed)
    window = and_(T.received_at >= as_of - timedelta(days=8), T.received_at < as_of - 3 * 24 * HOUR)
    # the import's deadline (the effective one moves with the events): a re-run picks the same
    due = func.coalesce(T.base_due_at, T.due_at)
    with engine.connect() as conn:
        units = list(conn.scalars(select(Unit.code).where(Unit.active.is_(True))))
        rows = conn.execute(
            select(T.source, T.external_id, T.received_at, due.label("due_at"), T.closed_at,
                   T.status, Unit.code)
            .join(Unit, Unit.id == T.unit_id)
            .where(window, due > T.received_at + 24 * HOUR)
            .order_by(T.id)
        ).all()  # fmt: skip
    open_ = [r for r in rows if r.status != TicketStatus.closed]
    closed = [r for r in rows if r.status == TicketStatus.closed and r.closed_at is not None]
    closed = [r for r in closed if r.closed_at < as_of - 2 * HOUR]
    rng.shuffle(open_)
    rng.shuffle(closed)
    # The approved extensions first take tickets due in the last two days before `as_of`:
    # late by the import's deadline, not by the extended one.
    open_.sort(key=lambda r: not (as_of - 48 * HOUR <= r.due_at < as_of))
    events: list[NewEvent] = []
    for i, story in enumerate(STORIES):
        for row in open_[i * per_story : (i + 1) * per_story]:
            events.extend(_story(story, row, rng.choice([u for u in units if u != row.code])))
    for row in closed[:per_story]:
        events.append(_event(row, "redo", "redo", row.closed_at + HOUR, "office", "回访不满意"))
    # Requests the rules refuse, on the last afternoon (the last digest lists them): an
    # extension asked after the deadline, and one approved beyond the cap.
    asked = as_of - 10 * HOUR
    rest = open_[len(STORIES) * per_story :]
    late = [r for r in rest if r.due_at < asked][:REFUSED_PER_STORY]
    ahead = [r for r in rest if r.due_at > as_of + 24 * HOUR][:REFUSED_PER_STORY]
    for row in late:
        events.extend(_refused_request(row, "late", asked, 1, "未及时办结，补报延期申请"))
    for row in ahead:
        days = OVER_CAP_WORKING_DAYS
        events.extend(_refused_request(row, "long", asked, days, "需多部门协调，申请延长办理时限"))
    return events


REFUSED_PER_STORY = 3
OVER_CAP_WORKING_DAYS = 10  # config/clock.yaml's cap: 3 working days an extension


def _refused_request(
    row: Any, key: str, at: datetime, working_days: int, reason: str
) -> Iterator[NewEvent]:
    """An extension asked at `at` and approved an hour later for `working_days`: the rules
    refuse the approval when `at` is after the deadline (逾期) or the days are over the cap
    (超过上限)."""
    yield _event(row, f"ask-{key}", "extension_requested", at, row.code, reason)
    yield _event(row, f"approve-{key}", "extension_approved", at + HOUR, "office", "同意延期",
                 working_days=working_days, request=f"demo:ask-{key}")  # fmt: skip


def _event(
    row: Any, key: str, kind: Any, at: datetime, actor: str, reason: str, **payload: Any
) -> NewEvent:
    return NewEvent(
        item_kind="ticket", item_ref=f"{row.source}:{row.external_id}", key=f"demo:{key}",
        kind=kind, at=at, actor=actor, reason=reason, payload=payload, origin="demo",
        origin_ref="duban demo",
    )  # fmt: skip


def _story(story: str, row: Any, other_unit: str) -> Iterator[NewEvent]:
    t0, unit = row.received_at, row.code
    if story.startswith("extension"):
        yield _event(row, "ask", "extension_requested", t0 + HOUR, unit, "需协调相关部门，申请延期")
        if story == "extension_approved":
            yield _event(row, "approve", "extension_approved", t0 + 3 * HOUR, "office",
                         "情况属实，同意延期", working_days=2, request="demo:ask")  # fmt: skip
        elif story == "extension_refused":
            yield _event(row, "refuse", "extension_refused", t0 + 3 * HOUR, "office",
                         "理由不充分，不予延期", request="demo:ask")  # fmt: skip
    elif story.startswith("suspension"):
        yield _event(row, "suspend", "suspended", t0 + 2 * HOUR, "office", "等待诉求人补充材料")
        if story == "suspension_resumed":
            yield _event(row, "resume", "resumed", t0 + 2 * timedelta(days=1) + 2 * HOUR,
                         "office", "材料已补齐")  # fmt: skip
    elif story == "returned":
        yield _event(row, "return", "returned", t0 + 2 * HOUR, unit, "非本单位职责")
        yield _event(row, "redispatch", "redispatched", t0 + 4 * HOUR, "office", "改派",
                     unit=other_unit)  # fmt: skip
    elif story.startswith("appeal"):
        yield _event(row, "appeal", "appeal_filed", t0 + timedelta(days=1), unit, "重复诉求")
        decision = "appeal_upheld" if story == "appeal_upheld" else "appeal_rejected"
        reason = "经核实属重复诉求，不纳入考核" if story == "appeal_upheld" else "不属于重复诉求"
        yield _event(row, "decide", decision, t0 + timedelta(days=1, hours=2), "office", reason,
                     request="demo:appeal")  # fmt: skip
    elif story == "cancelled":
        yield _event(row, "cancel", "cancelled", t0 + 5 * HOUR, "office", "诉求人撤回")
    elif story == "invalidated":
        yield _event(row, "invalid", "invalidated", t0 + 5 * HOUR, "office", "无效诉求")
