"""The clock's store on SQLite and PostgreSQL (duban/clock, docs/clock.md "Storing the
events"): recording is validated and idempotent, every refusal changes nothing, the
materialised clock agrees with `rules.clock.replay`, a calendar change corrects open
deadlines only."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select

from duban.clock import NewEvent, apply_clock, calendar_version, record_events
from duban.config import CityConfig, load_config
from duban.db import session_scope
from duban.db.models import ClockEvent as EventRow
from duban.db.models import Ticket
from duban.ingest.city import sync_city
from duban.ingest.tickets import import_tickets
from duban.rules.clock import ClockEvent, ClockStart, replay
from tests.db.test_ticket_import import write_csv

NOW = datetime(2026, 10, 12, 9, 0)  # Monday after National Day
RECEIVED = "2026-10-09 10:00:00"  # Friday, a make-up working day (调休)


def ticket_row(external_id: str, **values: str) -> dict[str, str]:
    base = {
        "external_id": external_id,
        "received_at": RECEIVED,
        "dispatched_at": RECEIVED,
        "category": "噪声扰民",
        "unit": "dc-jianguomen",
        "urgency": "2",
        "status": "in_progress",
    }
    base.update(values)
    return base


@pytest.fixture
def city(engine: Engine, city_config: CityConfig, tmp_path: Path) -> CityConfig:
    with session_scope(engine) as session:
        sync_city(session, city_config)
    rows = [
        ticket_row("T1"),
        ticket_row("T2"),
        ticket_row("T3", category="征地"),
        ticket_row("C1", status="closed", closed_at="2026-10-10 12:00:00"),
    ]
    export = write_csv(tmp_path / "export.csv", rows)
    import_tickets(engine, city_config, export, "duban", tmp_path / "reports")
    return city_config


def tickets(engine: Engine) -> dict[str, Ticket]:
    with session_scope(engine) as session:
        return {t.external_id: t for t in session.scalars(select(Ticket))}


def event(ref: str, key: str, kind: Any, at: datetime, **kw: Any) -> NewEvent:
    return NewEvent(
        item_kind="ticket",
        item_ref=f"duban:{ref}",
        key=key,
        kind=kind,
        at=at,
        actor=kw.pop("actor", "office"),
        reason=kw.pop("reason", ""),
        payload=kw.pop("payload", {}),
        supersedes=tuple(kw.pop("supersedes", ())),
        origin=kw.pop("origin", "office"),
        origin_ref=kw.pop("origin_ref", None),
    )


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(EventRow)) or 0)


def extension(ref: str = "T1", days: int = 2) -> list[NewEvent]:
    return [
        event(ref, "req1", "extension_requested", datetime(2026, 10, 12, 8, 0), actor="unit"),
        event(
            ref,
            "ok1",
            "extension_approved",
            datetime(2026, 10, 12, 8, 30),
            payload={"working_days": days, "request": "req1"},
        ),
    ]


def test_recording_moves_the_deadline_and_is_idempotent(engine: Engine, city: CityConfig) -> None:
    before = tickets(engine)["T1"]
    assert before.due_at == before.base_due_at and before.clock_events == 0
    result = record_events(engine, extension(), as_of=NOW, all_or_nothing=True, config=city)
    assert result.ok and len(result.recorded) == 2 and result.changed == 1
    after = tickets(engine)["T1"]
    assert after.base_due_at == before.base_due_at
    assert after.due_at == city.calendar.due_at(before.base_due_at, 2).replace(
        hour=before.base_due_at.hour, minute=before.base_due_at.minute
    )
    assert after.due_at > before.due_at
    assert after.extension_count == 1 and after.clock_events == 2
    assert after.clock_calendar == calendar_version(city.path("calendar.yaml"))
    again = record_events(engine, extension(), as_of=NOW, all_or_nothing=True, config=city)
    assert again.ok and not again.recorded and len(again.already) == 2 and again.changed == 0
    assert event_count(engine) == 2
    assert tickets(engine)["T1"].due_at == after.due_at


def test_the_store_agrees_with_replay(engine: Engine, city: CityConfig) -> None:
    """Many kinds of events through record_events: the columns are what replay says."""
    events = [
        *extension("T2", 3),
        event("T2", "s1", "suspended", datetime(2026, 10, 13, 9, 0)),
        event("T2", "r1", "resumed", datetime(2026, 10, 16, 9, 0)),
        event("T2", "redo1", "redo", datetime(2026, 10, 19, 9, 0), actor="callback"),
        event("T2", "ap1", "appeal_filed", datetime(2026, 10, 19, 10, 0), actor="unit"),
        event(
            "T2",
            "ap1-ok",
            "appeal_upheld",
            datetime(2026, 10, 19, 11, 0),
            reason="重复",
            payload={"request": "ap1"},
        ),
    ]
    as_of = datetime(2026, 10, 20, 9, 0)
    result = record_events(engine, events, as_of=as_of, all_or_nothing=True, config=city)
    assert result.ok, result.refused
    t2 = tickets(engine)["T2"]
    start = ClockStart(
        received_at=t2.received_at,
        dispatched_at=t2.dispatched_at,
        base_due=t2.base_due_at,
        level_days=city.urgency.limit(2).working_days,
        unit="dc-jianguomen",
        category=t2.category,
    )
    rule_events = [
        ClockEvent(e.key, e.kind, e.at, e.actor, e.reason, dict(e.payload)) for e in events
    ]
    state = replay(start, rule_events, city.calendar, city.clock, as_of)
    assert t2.due_at == state.due
    assert (t2.redo_count, t2.ladder_round, t2.extension_count) == (
        state.redo_count,
        state.ladder_round,
        state.extensions,
    )
    assert t2.evaluated is state.counts_for_evaluation is False
    assert t2.excluded_reason == state.excluded_reason
    assert t2.clock_events == len(events)


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([event("NOPE", "k", "suspended", NOW)], "unknown ticket"),
        ([event("C1", "k", "suspended", NOW)], "closed"),
        ([event("T1", "k", "resumed", NOW)], "resume without a suspension"),
        (
            [event("T1", "k", "extension_approved", datetime(2026, 11, 30), payload={})],
            "requested after the deadline",
        ),
        (
            [event("T1", "k", "extension_approved", NOW, payload={"working_days": 9})],
            "at most 3 working days",
        ),
        ([event("T1", "k", "extension_approved", NOW, payload={"days": 1})], "unknown payload"),
        (
            [event("T1", "k", "extension_approved", NOW, payload={"working_days": "2"})],
            "must be int",
        ),
        ([event("T1", "k", "bogus", NOW)], "unknown event kind"),
        (
            [
                event("T1", "a", "appeal_filed", NOW),
                event("T1", "b", "appeal_upheld", NOW, payload={"request": "a"}),
                event("T1", "c", "appeal_rejected", NOW, payload={"request": "a"}),
            ],
            "already decided",
        ),
        (
            [event("T1", "a", "appeal_filed", NOW), event("T1", "b", "appeal_upheld", NOW)],
            "name the request",
        ),
    ],
)
def test_a_refusal_changes_nothing(
    engine: Engine, city: CityConfig, events: list[NewEvent], reason: str
) -> None:
    before = {k: (t.due_at, t.evaluated, t.clock_events) for k, t in tickets(engine).items()}
    result = record_events(engine, events, as_of=NOW, all_or_nothing=True, config=city)
    assert not result.ok and not result.recorded
    assert any(reason in r.reason for r in result.refused), result.refused
    assert event_count(engine) == 0
    after = {k: (t.due_at, t.evaluated, t.clock_events) for k, t in tickets(engine).items()}
    assert after == before


def test_extensions_over_the_cap_are_refused(engine: Engine, city: CityConfig) -> None:
    events: list[NewEvent] = []
    for i in range(4):
        at = datetime(2026, 10, 12, 8 + i, 0)
        events.append(event("T1", f"q{i}", "extension_requested", at))
        events.append(
            event(
                "T1",
                f"a{i}",
                "extension_approved",
                at.replace(minute=30),
                payload={"working_days": 1, "request": f"q{i}"},
            )
        )
    noon = datetime(2026, 10, 12, 12, 0)
    result = record_events(engine, events, as_of=noon, all_or_nothing=False, config=city)
    assert [r.key for r in result.refused] == ["a3"]
    assert "at most 3 extensions" in result.refused[0].reason
    assert tickets(engine)["T1"].extension_count == 3


def test_a_decision_names_its_request(engine: Engine, city: CityConfig) -> None:
    first = extension()[:1]
    record_events(engine, first, as_of=NOW, all_or_nothing=True, config=city)
    unnamed = event("T1", "ok", "extension_approved", NOW, payload={"working_days": 1})
    result = record_events(engine, [unnamed], as_of=NOW, all_or_nothing=True, config=city)
    assert "name the request" in result.refused[0].reason
    unknown = event(
        "T1", "ok", "extension_approved", NOW, payload={"working_days": 1, "request": "x"}
    )
    result = record_events(engine, [unknown], as_of=NOW, all_or_nothing=True, config=city)
    assert "no pending request 'x'" in result.refused[0].reason
    assert record_events(engine, extension()[1:], as_of=NOW, all_or_nothing=True, config=city).ok
    twice = replace(extension()[1], key="ok-again")
    result = record_events(engine, [twice], as_of=NOW, all_or_nothing=True, config=city)
    assert "already decided" in result.refused[0].reason
    assert event_count(engine) == 2


def test_all_or_nothing_or_the_good_ones(engine: Engine, city: CityConfig) -> None:
    good = event("T1", "s", "suspended", NOW)
    bad = event("T2", "r", "resumed", NOW)
    assert not record_events(engine, [good, bad], as_of=NOW, all_or_nothing=True, config=city).ok
    assert event_count(engine) == 0
    some = record_events(engine, [good, bad], as_of=NOW, all_or_nothing=False, config=city)
    assert [e.key for e in some.recorded] == ["s"] and [r.key for r in some.refused] == ["r"]
    assert tickets(engine)["T1"].suspended_since == NOW


def test_a_correction_supersedes(engine: Engine, city: CityConfig) -> None:
    record_events(engine, extension(days=3), as_of=NOW, all_or_nothing=True, config=city)
    three = tickets(engine)["T1"].due_at
    fix = event(
        "T1",
        "ok1-fix",
        "extension_approved",
        datetime(2026, 10, 12, 8, 31),
        payload={"working_days": 1, "request": "req1"},
        supersedes=["ok1"],
    )
    assert record_events(engine, [fix], as_of=NOW, all_or_nothing=True, config=city).ok
    one = tickets(engine)["T1"]
    assert one.due_at < three and one.extension_count == 1 and one.clock_events == 2
    assert event_count(engine) == 3  # append-only: the superseded event stays


def test_calendar_change_corrects_open_deadlines_only(
    engine: Engine, city: CityConfig, config_dir: Path
) -> None:
    assert apply_clock(engine, None, as_of=NOW, config=city) >= 1  # stamps the version
    assert apply_clock(engine, None, as_of=NOW, config=city) == 0
    before = tickets(engine)
    due_day = before["T1"].due_at.date()
    # The office corrects the calendar: T1's deadline day becomes a holiday.
    path = config_dir / "calendar.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data.setdefault("holidays", []).append(due_day)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    changed = load_config(config_dir)
    assert apply_clock(engine, None, as_of=NOW, config=changed) >= 1
    after = tickets(engine)
    assert after["T1"].due_at > before["T1"].due_at
    assert after["T1"].base_due_at == before["T1"].base_due_at
    assert after["C1"].due_at == before["C1"].due_at  # closed: judged by its old deadline
    with session_scope(engine) as session:
        kinds = session.scalars(select(EventRow.kind).where(EventRow.origin == "calendar")).all()
    assert set(kinds) == {"calendar_correction"} and len(kinds) == 3  # T1, T2, T3
    assert apply_clock(engine, None, as_of=NOW, config=changed) == 0
    assert event_count(engine) == 3


def test_a_ticket_written_without_a_base_deadline_keeps_its_deadline(
    engine: Engine, city: CityConfig
) -> None:
    """Rows written before base_due_at existed (or by code that sets only due_at): the
    clock takes due_at as their base, never erases it."""
    with session_scope(engine) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.external_id == "T1")).one()
        ticket.base_due_at, ticket.clock_calendar = None, None
        due = ticket.due_at
    apply_clock(engine, None, as_of=NOW, config=city)
    after = tickets(engine)["T1"]
    assert after.due_at == after.base_due_at == due
    assert after.clock_calendar == calendar_version(city.path("calendar.yaml"))


def test_a_future_event_takes_effect_on_its_day(engine: Engine, city: CityConfig) -> None:
    later = datetime(2026, 10, 13, 9, 0)
    suspend = event("T1", "s", "suspended", later)
    assert record_events(engine, [suspend], as_of=NOW, all_or_nothing=True, config=city).ok
    assert tickets(engine)["T1"].suspended_since is None and tickets(engine)["T1"].clock_events == 1
    apply_clock(engine, None, as_of=NOW, config=city)  # stamps T1..T3
    # The previous run was after the event's time: nothing to replay.
    assert apply_clock(engine, None, as_of=later, since=later, config=city) == 0
    assert tickets(engine)["T1"].suspended_since is None
    # The previous run was before it: the event takes effect now.
    assert apply_clock(engine, None, as_of=later, since=NOW, config=city) == 1
    assert tickets(engine)["T1"].suspended_since == later
