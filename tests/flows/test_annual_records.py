"""The annual summary is a record too (issue 14, item 7), on SQLite and PostgreSQL: the run
that sends the year freezes every notice's files (summary, scores.csv, breakdowns); after the
year's tickets change, a re-run writes them back byte for byte, sends nothing again, and
counts the city's ticket total as changed (compared with a plain count)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from duban.db.models import Ticket
from flows.annual import annual_evaluation
from tests.flows.helpers import add_ticket
from tests.flows.test_annual_flow import YEAR, seed


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def plain_tickets(engine: Engine) -> int:
    """Tickets received in the year [1 January, next 1 January)."""
    with engine.connect() as conn:
        received = pd.to_datetime(pd.read_sql(select(Ticket.received_at), conn)["received_at"])
    return int(
        ((received >= pd.Timestamp(YEAR, 1, 1)) & (received < pd.Timestamp(YEAR + 1, 1, 1))).sum()
    )


def test_rerun_of_a_sent_year_reproduces_it_and_counts_the_changes(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    folder = city["reports"] / "annual" / str(YEAR)
    seed(city)
    first = annual_evaluation(year=YEAR)
    assert first["published_version"] == 0 and first["figures_recorded"] > 0
    sent = len(smtp.messages)
    published = folder_bytes(folder)
    assert any(n.endswith(".csv") for n in published) and len(published) >= 3
    before = plain_tickets(engine)

    received = datetime(YEAR, 6, 3, 9)
    add_ticket(engine, "ANNUAL-ADDED", "dc-jianguomen", received, received + timedelta(days=5))
    after = plain_tickets(engine)
    assert after == before + 1
    shutil.rmtree(folder)

    again = annual_evaluation(year=YEAR)
    assert again["files_reproduced"] == again["files_restored"] == len(published)
    assert folder_bytes(folder) == published
    assert again["figures_changed"] >= 1
    assert f"全市 tickets: {before} → {after}" in again["changed"]
    assert again["mail_sent"] == 0 and len(smtp.messages) == sent
