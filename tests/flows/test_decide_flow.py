"""The `decide` flow (an office decision from the deployment's form) and the daily report's
clock refresh, through Prefect, on SQLite and PostgreSQL (docs/clock.md)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from duban.clock.decide import Decision
from duban.db import session_scope
from duban.db.models import ClockEvent as EventRow
from duban.db.models import Ticket
from flows.daily import daily_report
from flows.decide import DecisionRefused, decide
from tests.flows.helpers import add_ticket

DAY = date(2026, 10, 12)  # a Monday
DUE = datetime(2026, 10, 14, 23, 59, 59)


def ticket(engine: Any, external_id: str = "J-1") -> Ticket:
    with session_scope(engine) as session:
        return session.scalars(select(Ticket).where(Ticket.external_id == external_id)).one()


def events(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(EventRow)) or 0)


def test_a_decision_through_the_flow(city: dict[str, Any]) -> None:
    engine = city["engine"]
    add_ticket(engine, "J-1", "dc-jianguomen", datetime(2026, 10, 9, 9), DUE, base_due_at=DUE)
    request = Decision(
        ticket="test:J-1", action="request_extension", at=datetime(2026, 10, 12, 9), actor="unit"
    )
    assert decide(decision=request)["recorded"] == 1
    approve = Decision(
        ticket="test:J-1",
        action="approve_extension",
        at=datetime(2026, 10, 12, 10),
        request=request.event_key(),
        working_days=2,
        reason="需协调供电部门",
    )
    assert decide(decision=approve)["recorded"] == 1
    moved = ticket(engine)
    assert moved.due_at == datetime(2026, 10, 16, 23, 59, 59) and moved.base_due_at == DUE
    assert decide(decision=approve)["already_recorded"] == 1  # the same form sent twice
    with pytest.raises(DecisionRefused, match="resume without a suspension"):
        decide(decision=Decision(ticket="test:J-1", action="resume", at=datetime(2026, 10, 12)))
    with pytest.raises(DecisionRefused, match="unknown ticket"):
        decide(decision=Decision(ticket="test:NOPE", action="suspend", at=datetime(2026, 10, 12)))
    assert events(engine) == 2


def test_the_daily_report_corrects_deadlines_of_a_changed_calendar(
    city: dict[str, Any], config_dir: Path
) -> None:
    engine = city["engine"]
    # Level 2 (3 working days) from Fri 9 Oct: Sat 10 (调休), Mon 12, Tue 13.
    due = datetime(2026, 10, 13, 23, 59, 59)
    add_ticket(engine, "J-1", "dc-jianguomen", datetime(2026, 10, 9, 9), due, urgency=2)
    daily_report(day=DAY)  # stamps the calendar version
    stamped = ticket(engine)
    assert stamped.clock_calendar and stamped.due_at == due and events(engine) == 0
    path = config_dir / "calendar.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data["holidays"] = [date(2026, 10, 13)]  # the office adds a holiday
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    daily_report(day=date(2026, 10, 14))
    corrected = ticket(engine)
    assert corrected.due_at == datetime(2026, 10, 14, 23, 59, 59)
    assert corrected.base_due_at == due  # what the import fixed stays
    assert corrected.clock_calendar != stamped.clock_calendar and events(engine) == 1
    daily_report(day=date(2026, 10, 14))  # again: nothing twice
    assert events(engine) == 1
