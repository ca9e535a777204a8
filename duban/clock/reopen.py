"""A reopened ticket is a redo (重办, docs/clock.md): a failed spot check (quarterly loop) or a
look-back recurrence (look-back loop) records a `redo` event, so that the ticket gets a fresh
deadline counted from the reopening and a fresh ladder round, and counts in 重办率 — instead of
keeping its old deadline, which would make the next daily run catch the whole ladder up at
once.

`record_reopenings` records them through `record_events` (the same validation and replay as
every event), in the caller's transaction: the change of status and its redo are written
together or not at all. The key names what reopened the ticket (`spot_check:<quarter>:<sample>`,
`lookback:<request>`), so re-importing a checklist or re-running a look-back records nothing
twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from duban.clock.store import NewEvent, RecordResult, record_events
from duban.config import CityConfig


@dataclass(frozen=True)
class Reopening:
    """One ticket reopened: its id, the event's key, time, who reopened it and why."""

    ticket_id: int
    key: str
    at: datetime
    actor: str
    reason: str


def record_reopenings(
    conn: Connection,
    reopenings: Iterable[Reopening],
    *,
    origin: str,
    origin_ref: str,
    as_of: datetime,
    config: CityConfig | None,
) -> RecordResult:
    """Record a `redo` per reopening (origin `spot_check` or `lookback`, origin_ref the
    check import or look-back run) in the transaction of `conn`. A refused one is in the
    result's `refused` (the others are recorded); a key recorded before is `already`."""
    events = [
        NewEvent(
            item_kind="ticket",
            item_ref=str(r.ticket_id),
            key=r.key[:200],
            kind="redo",
            at=r.at,
            actor=r.actor,
            reason=r.reason,
            origin=origin,
            origin_ref=origin_ref[-500:],
        )
        for r in reopenings
    ]
    if not events:
        return RecordResult()
    return record_events(conn, events, as_of=as_of, all_or_nothing=False, config=config)
