"""One colour rule (三色督办): the daily report's SQL (duban.queries.daily.colour, through the
window the report builds) and the pure rule (duban.rules.warnings.ticket_colour) give every
ticket the same colour, on the same rows in SQLite and PostgreSQL.

The pure rule is the definition (docs/daily-loop.md); the SQL is what production runs. If
either changes alone, this test fails.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import Ticket, TicketStatus, Unit
from duban.ingest.city import sync_city
from duban.loops.daily.report import make_daily_window
from duban.queries.daily import colour, open_at
from duban.rules.warnings import Colour, ticket_colour

T = Ticket.__table__.c
REPORT_DAYS = [date(2026, 2, 13), date(2026, 9, 30), date(2026, 10, 9), date(2026, 11, 2)]


def _tickets(config: CityConfig, unit_id: int, n: int = 1500) -> list[dict[str, Any]]:
    """Random tickets around the report days: every level, with and without a response,
    deadlines on either side of the blue window, some closed before or after the report."""
    rng = random.Random(20261202)
    levels = [lv.level for lv in config.urgency.levels]
    rows = []
    for i in range(n):
        day = rng.choice(REPORT_DAYS)
        received = datetime.combine(day, datetime.min.time()) - timedelta(
            minutes=rng.randint(1, 60 * 24 * 12)
        )
        due = datetime.combine(day + timedelta(days=rng.randint(-4, 14)), datetime.min.time())
        due += timedelta(hours=rng.choice([0, 9, 17, 23]), minutes=rng.choice([0, 59]))
        response = rng.choice([None, received + timedelta(minutes=rng.randint(0, 60 * 24 * 14))])
        closed_at = rng.choice([None, None, received + timedelta(hours=rng.randint(1, 400))])
        rows.append(
            {
                "source": "test",
                "external_id": f"C{i:05d}",
                "received_at": received,
                "due_at": due,
                "first_response_at": response,
                "closed_at": closed_at,
                "status": TicketStatus.closed if closed_at else TicketStatus.in_progress,
                "category": "噪声扰民",
                "unit_id": unit_id,
                "urgency": rng.choice(levels),
                "row_hash": 0,
            }
        )
    return rows


def test_the_sql_colour_is_the_pure_rule_on_every_ticket(
    engine: Engine, city_config: CityConfig
) -> None:
    with session_scope(engine) as session:
        sync_city(session, city_config)
        unit_id = session.scalars(select(Unit.id).order_by(Unit.id)).first()
    assert unit_id is not None
    rows = _tickets(city_config, unit_id)
    with engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    by_ref = {r["external_id"]: r for r in rows}
    warnings = city_config.escalation.warnings
    hours = {lv.level: lv.response_hours for lv in city_config.urgency.levels}
    seen: set[Colour] = set()
    for day in REPORT_DAYS:
        w = make_daily_window(city_config, day, day - timedelta(days=1))
        with engine.connect() as conn:
            sql = dict(
                conn.execute(select(T.external_id, colour(w).label("c")).where(open_at(w))).all()
            )
        expected = {}
        for ref, r in by_ref.items():
            if r["received_at"] >= w.now:
                continue  # not received yet as of the report
            closed = r["closed_at"] is not None and r["closed_at"] < w.now
            got = ticket_colour(
                now=w.now,
                received_at=r["received_at"],
                due_at=r["due_at"],
                first_response_at=r["first_response_at"],
                closed=closed,
                response_hours=hours[r["urgency"]],
                blue_working_days=warnings.blue_days(r["urgency"]),
                calendar=city_config.calendar,
            )
            if not closed:
                expected[ref] = got
        assert set(sql) == set(expected), day  # the same tickets are open
        differ = {ref: (sql[ref], expected[ref]) for ref in sql if sql[ref] != expected[ref]}
        assert not differ, (day, list(differ.items())[:5])
        seen.update(expected.values())
    assert seen == set(Colour)  # every colour was exercised
