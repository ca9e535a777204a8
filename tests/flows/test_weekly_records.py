"""The weekly analysis is a record too (issue 14, item 7), on SQLite and PostgreSQL with a real
SMTP server: the run that sends a week freezes its files; after the week's tickets change, a
re-run writes them back byte for byte (its charts, drawn again from today's data, included),
sends what was still pending exactly as published, and counts the figures that changed
(compared with a plain count of the tickets)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from duban.db.models import Problem, Ticket
from flows.weekly import weekly_analysis
from tests.flows.helpers import add_ticket
from tests.flows.test_weekly_flow import MONDAY, WEEK, inline_images, seed_tickets


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def plain_week_counts(engine: Engine) -> tuple[int, int]:
    """Tickets received in the week [Monday, next Monday), all and those of problem P01."""
    with engine.connect() as conn:
        t = pd.read_sql(select(Ticket.received_at, Problem.code.label("problem"))
                        .outerjoin(Problem, Problem.id == Ticket.problem_id), conn)  # fmt: skip
    received = pd.to_datetime(t["received_at"])
    week = t[
        (received >= pd.Timestamp(MONDAY))
        & (received < pd.Timestamp(MONDAY) + pd.Timedelta(days=7))
    ]
    return len(week), int((week["problem"] == "P01").sum())


def test_rerun_of_a_sent_week_reproduces_it_and_counts_the_changes(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    folder = city["reports"] / "weekly" / WEEK
    seed_tickets(engine)
    smtp.fail_after(1)
    first = weekly_analysis(week=WEEK)
    assert first["published_version"] == 0 and first["figures_recorded"] > 0
    assert first["mail_sent"] == 1 and first["mail_pending"] == 2
    published = folder_bytes(folder)
    charts = {n: b for n, b in published.items() if n.endswith(".png")}
    assert len(charts) == 2
    tickets_before, p01_before = plain_week_counts(engine)

    add_ticket(engine, "LATE-ADDED", "housing", MONDAY + timedelta(days=2, hours=15),
               MONDAY + timedelta(days=7), problem_id=_p01(engine))  # fmt: skip
    tickets_after, p01_after = plain_week_counts(engine)
    assert (tickets_after, p01_after) == (tickets_before + 1, p01_before + 1)
    (folder / "office-analysis.txt").write_text("tampered", encoding="utf-8")
    smtp.recover()

    again = weekly_analysis(week=WEEK)
    assert again["notices_already_recorded"] == 3 and again["mail_sent"] == 2
    assert again["files_reproduced"] == len(published)
    assert again["files_restored"] == 1  # the tampered text; no chart is drawn again
    assert folder_bytes(folder) == published
    assert again["figures_changed"] >= 2
    assert f"本周 tickets: {tickets_before} → {tickets_after}" in again["changed"]
    assert f"本周工单: {p01_before} → {p01_after}" in again["changed"]
    late = smtp.messages[1:]
    assert len(late) == 2
    audience = {a: u.code for u in city["config"].units.units for a in u.emails or []}
    audience["office@duban.example"] = "office"
    for message in late:  # sent after the change, exactly as published
        assert sorted(inline_images(message.message).values()) == sorted(charts.values())
        text = published[f"{audience[message.rcpt_tos[0]]}-analysis.txt"].decode("utf-8")
        assert message.part("plain").replace("\r\n", "\n") == text
    third = weekly_analysis(week=WEEK)
    assert third["mail_sent"] == 0 and third["files_restored"] == 0
    assert len(smtp.messages) == 3
    shutil.rmtree(folder)
    weekly_analysis(week=WEEK)
    assert folder_bytes(folder) == published


def _p01(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(Problem.id).where(Problem.code == "P01")))
