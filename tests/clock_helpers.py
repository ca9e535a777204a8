"""Test helpers for the supervision clock (docs/clock.md): record a ticket's events in
`clock_events` and set the clock columns the events materialise on `tickets` (due_at the
effective deadline, base_due_at the import's, evaluated, suspended_since, ladder_round, …),
as `duban.clock.apply_clock` leaves them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from duban.db.models import ClockEvent, Escalation, ItemKind, Ticket


def ticket_id(engine: Engine, external_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(Ticket.id).where(Ticket.external_id == external_id)))


def add_event(
    engine: Engine,
    external_id: str,
    key: str,
    kind: str,
    at: datetime,
    *,
    actor: str = "office",
    reason: str = "",
    payload: dict[str, Any] | None = None,
    origin: str = "office",
) -> None:
    """One accepted event of the ticket's log."""
    row = {
        "item_kind": ItemKind.ticket.value, "item_id": ticket_id(engine, external_id),
        "key": key, "kind": kind, "at": at, "actor": actor, "reason": reason,
        "payload": payload or {}, "supersedes": [], "origin": origin, "origin_ref": None,
        "recorded_at": at,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(ClockEvent.__table__), [row])


def set_clock(engine: Engine, external_id: str, **columns: Any) -> None:
    """Set the ticket's materialised clock columns; `clock_events` = its events' count."""
    tid = ticket_id(engine, external_id)
    with engine.begin() as conn:
        n = conn.scalar(
            select(func.count())
            .select_from(ClockEvent)
            .where(ClockEvent.item_kind == ItemKind.ticket.value, ClockEvent.item_id == tid)
        )
        values = {"clock_events": int(n or 0), **columns}
        conn.execute(update(Ticket.__table__).where(Ticket.id == tid).values(**values))


def steps(engine: Engine, external_id: str) -> set[tuple[int, str, date]]:
    """The ticket's ladder steps as (round, step, due day)."""
    tid = ticket_id(engine, external_id)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Escalation.round, Escalation.step, Escalation.due_on).where(
                Escalation.item_kind == ItemKind.ticket.value, Escalation.item_id == tid
            )
        )
        return {(int(r), str(s), d) for r, s, d in rows}
