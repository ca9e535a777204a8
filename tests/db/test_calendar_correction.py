"""A calendar change recomputes every open deadline the calendar produced, as events of their
own, once (docs/clock.md, "calendar_correction"), on SQLite and PostgreSQL: config/calendar.yaml
(a copy) makes Wed 2026-10-14 a holiday."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select

from duban.clock import NewEvent, apply_clock, calendar_version, record_events
from duban.config import CityConfig, load_config
from duban.db import session_scope
from duban.db.models import ClockEvent as EventRow
from duban.db.models import Ticket, TicketStatus, Unit
from duban.ingest.city import sync_city

AS_OF = datetime(2026, 10, 15, 12)
RECEIVED = datetime(2026, 10, 12, 9)  # Mon: urgency 2 (3 working days) is due Thu 10-15
LEVEL_DUE = datetime(2026, 10, 15, 23, 59, 59)


def add(engine: Engine, config: CityConfig, ref: str, base: datetime, **kw: Any) -> None:
    version = calendar_version(config.path("calendar.yaml"))
    with session_scope(engine) as session:
        unit = session.scalar(select(Unit.id).where(Unit.code == "dc-jianguomen"))
        session.add(
            Ticket(
                source="test", external_id=ref, received_at=kw.pop("received", RECEIVED),
                dispatched_at=RECEIVED, due_at=base, base_due_at=base, category="噪声扰民",
                unit_id=unit, urgency=2, status=kw.pop("status", TicketStatus.in_progress),
                row_hash=0, clock_calendar=version, **kw,
            )
        )  # fmt: skip


def ev(ref: str, key: str, kind: Any, at: datetime, **payload: Any) -> NewEvent:
    return NewEvent("ticket", f"test:{ref}", key, kind, at, "office", payload=payload)


def corrections(engine: Engine) -> list[tuple[str, str, list[str]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Ticket.external_id, EventRow.key, EventRow.supersedes)
            .join(Ticket, Ticket.id == EventRow.item_id)
            .where(EventRow.kind == "calendar_correction")
            .order_by(Ticket.external_id, EventRow.id)
        )
        return [(str(r), str(k), list(s or [])) for r, k, s in rows]


def due(engine: Engine) -> dict[str, datetime]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Ticket.external_id, Ticket.due_at)).tuples().all())


def write_calendar(config_dir: Path, holidays: list[Any]) -> CityConfig:
    path = config_dir / "calendar.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data["holidays"] = holidays
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(config_dir)


def test_a_calendar_change_corrects_what_the_calendar_produced_once(
    engine: Engine, city_config: CityConfig, config_dir: Path
) -> None:
    config = city_config
    with session_scope(engine) as session:
        sync_city(session, config)
    fixed = datetime(2026, 10, 13, 18)  # an export's own time of day
    add(engine, config, "LEVEL", LEVEL_DUE)  # from the level: moves to Fri 10-16
    add(engine, config, "FAR", datetime(2026, 10, 22, 23, 59, 59),
        received=datetime(2026, 10, 19, 9))  # after the holiday: stays  # fmt: skip
    add(engine, config, "FIXED", fixed)  # the export's: kept
    add(engine, config, "EXT-DAYS", fixed)  # +2 working days: Thu 10-15, then Fri 10-16
    add(engine, config, "EXT-DUE", fixed)  # extended to a fixed deadline: kept
    add(engine, config, "SUSP", datetime(2026, 10, 16, 18))  # suspended Tue-Wed: one day less
    add(engine, config, "CLOSED", LEVEL_DUE, status=TicketStatus.closed,
        closed_at=datetime(2026, 10, 15, 16))  # judged by its deadline  # fmt: skip
    ask = datetime(2026, 10, 12, 10)
    events = [
        ev("EXT-DAYS", "req", "extension_requested", ask),
        ev("EXT-DAYS", "ok", "extension_approved", ask, working_days=2, request="req"),
        ev("EXT-DUE", "req", "extension_requested", ask),
        ev(
            "EXT-DUE",
            "ok",
            "extension_approved",
            ask,
            new_due=datetime(2026, 10, 15, 18),
            request="req",
        ),
        ev("SUSP", "s", "suspended", datetime(2026, 10, 13, 9)),
        ev("SUSP", "r", "resumed", datetime(2026, 10, 15, 9)),
    ]
    assert record_events(engine, events, as_of=AS_OF, all_or_nothing=True, config=config).ok
    assert apply_clock(engine, None, as_of=AS_OF, config=config) == 0  # all current
    before = due(engine)
    assert before["EXT-DAYS"] == before["EXT-DUE"] == datetime(2026, 10, 15, 18)
    assert before["SUSP"] == datetime(2026, 10, 20, 18)

    changed = write_calendar(config_dir, ["2026-10-14"])
    apply_clock(engine, None, as_of=AS_OF, config=changed)
    v2 = calendar_version(changed.path("calendar.yaml"))
    assert corrections(engine) == [
        ("EXT-DAYS", f"calendar:{v2}", []),
        ("LEVEL", f"calendar:{v2}", []),
        ("SUSP", f"calendar:{v2}", []),
    ]
    after = due(engine)
    assert after["LEVEL"] == datetime(2026, 10, 16, 23, 59, 59)
    assert after["EXT-DAYS"] == datetime(2026, 10, 16, 18)
    assert after["SUSP"] == datetime(2026, 10, 19, 18)
    for kept in ("FAR", "FIXED", "EXT-DUE", "CLOSED"):
        assert after[kept] == before[kept], kept
    with engine.connect() as conn:
        stamped = set(conn.scalars(select(Ticket.clock_calendar).where(
            Ticket.status != TicketStatus.closed)))  # fmt: skip
    assert stamped == {v2}

    # Once: a re-run records nothing and changes nothing.
    assert apply_clock(engine, None, as_of=AS_OF, config=changed) == 0
    assert len(corrections(engine)) == 3 and due(engine) == after

    # The holiday is withdrawn: the deadlines return, each correction superseding the last;
    # put back, a third one (the version's key taken: `:2`).
    withdrawn = write_calendar(config_dir, [])
    v1 = calendar_version(withdrawn.path("calendar.yaml"))
    apply_clock(engine, None, as_of=AS_OF, config=withdrawn)
    assert due(engine) == before
    apply_clock(engine, None, as_of=AS_OF, config=write_calendar(config_dir, ["2026-10-14"]))
    assert due(engine) == after
    assert [c for c in corrections(engine) if c[0] == "LEVEL"] == [
        ("LEVEL", f"calendar:{v2}", []),
        ("LEVEL", f"calendar:{v1}", [f"calendar:{v2}"]),
        ("LEVEL", f"calendar:{v2}:2", sorted([f"calendar:{v1}", f"calendar:{v2}"])),
    ]


def test_a_deadline_the_calendar_cannot_compute_refuses_that_event_only(
    engine: Engine, city_config: CityConfig
) -> None:
    """A redo on 2026-12-30 needs 2027, which chinese-calendar 1.11 does not know: that
    event is refused with the calendar's message, the other ticket's is recorded."""
    with session_scope(engine) as session:
        sync_city(session, city_config)
    add(engine, city_config, "DEC", LEVEL_DUE)
    add(engine, city_config, "OCT", LEVEL_DUE)
    late = ev("DEC", "redo", "redo", datetime(2026, 12, 30, 9))  # 3 working days
    fine = ev("OCT", "redo", "redo", datetime(2026, 10, 20, 9))
    result = record_events(
        engine, [late, fine], as_of=datetime(2026, 12, 30, 12), all_or_nothing=False,
        config=city_config,
    )  # fmt: skip
    assert [e.item_ref for e in result.recorded] == ["test:OCT"]
    [refused] = result.refused
    assert refused.item_ref == "test:DEC" and "2027" in refused.reason
    assert due(engine)["DEC"] == LEVEL_DUE


def test_an_event_dated_before_a_correction_still_moves_the_deadline(
    engine: Engine, city_config: CityConfig, config_dir: Path
) -> None:
    """The correction pins the deadline at its time; an extension approved before it but
    recorded after (an event export, `duban decide --at`) is not lost: the correction is
    recomputed with it, once."""
    with session_scope(engine) as session:
        sync_city(session, city_config)
    add(engine, city_config, "LEVEL", LEVEL_DUE)
    changed = write_calendar(config_dir, ["2026-10-14"])
    apply_clock(engine, None, as_of=AS_OF, config=changed)
    assert due(engine)["LEVEL"] == datetime(2026, 10, 16, 23, 59, 59)
    backdated = [
        ev("LEVEL", "req", "extension_requested", datetime(2026, 10, 13, 9)),
        ev("LEVEL", "ok", "extension_approved", datetime(2026, 10, 13, 10), working_days=1,
           request="req"),
    ]  # fmt: skip
    assert record_events(engine, backdated, as_of=AS_OF, all_or_nothing=True, config=changed).ok
    assert due(engine)["LEVEL"] == datetime(2026, 10, 19, 23, 59, 59)  # Fri + 1: Mon
    v2 = calendar_version(changed.path("calendar.yaml"))
    assert corrections(engine) == [
        ("LEVEL", f"calendar:{v2}", []),
        ("LEVEL", f"calendar:{v2}:2", [f"calendar:{v2}"]),
    ]
    assert apply_clock(engine, None, as_of=AS_OF, config=changed) == 0
    assert len(corrections(engine)) == 2
