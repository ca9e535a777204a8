"""The year-end evaluation flow end to end: Prefect, a real database (SQLite and PostgreSQL)
and a real SMTP server. The summary goes to the leadership and the office with the scores
CSV attached; each unit gets only its own breakdown; every delivered total is the sum of its
components; a re-run sends nothing new."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import Engine, func, insert, select

from duban.db import session_scope
from duban.db.models import (
    Delivery,
    Escalation,
    LookbackFinding,
    Notice,
    Run,
    SpotCheckSample,
    Ticket,
    TicketStatus,
)
from duban.loops.annual.evaluation import SCORE_HEADERS
from duban.rules.schedule import is_due
from duban.rules.scoring import COMPONENTS, RATE_COMPONENTS
from flows.annual import annual_evaluation
from tests.flows.helpers import by_recipient, unit_ids

YEAR = 2026
SCRIPT = "<script>alert('x')</script>"
UNITS = {  # unit → (tickets in the year, how many handled well)
    "dc-jianguomen": (8, 8),
    "dc-donghuamen": (6, 3),
    "cy-jianwai": (6, 5),
    "cy-sanlitun": (6, 1),
    "dc": (4, 4),
    "cy": (4, 2),
    "housing": (4, 3),
    "water": (3, 1),
}


def seed(city: dict[str, Any]) -> None:
    engine: Engine = city["engine"]
    root = city["config"].root
    (root / "evaluation.yaml").write_text(
        yaml.safe_dump({"min_tickets_to_rank": 2, "top_named": 1, "bottom_named": 1}),
        encoding="utf-8",
    )
    units = unit_ids(engine)
    rows: list[dict[str, Any]] = []
    n = 0
    for unit, (count, good) in UNITS.items():
        for i in range(count):
            n += 1
            received = datetime(YEAR, 1 + i % 12, 3, 9)
            ok = i < good
            rows.append({
                "source": "test", "external_id": f"A{n:03d}", "received_at": received,
                "first_response_at": received + timedelta(hours=1 if ok else 40),
                "due_at": received + timedelta(days=5),
                "closed_at": received + timedelta(days=2 if ok else 9),
                "status": TicketStatus.closed, "resolved": ok,
                "satisfaction": "satisfied" if ok else "dissatisfied",
                "category": "噪声扰民", "content": f"市民原话 {SCRIPT} 13812345678",
                "unit_id": units[unit], "urgency": 3, "row_hash": 0,
            })  # fmt: skip
    hard = {  # old, hard tickets: on the ledger and closed in the year, or still open
        "HARD-JW": ("cy-jianwai", datetime(YEAR, 4, 1), datetime(YEAR, 6, 20)),
        "HARD-JW2": ("cy-jianwai", datetime(YEAR, 5, 1), datetime(YEAR, 9, 1)),
        "HARD-OPEN": ("cy-sanlitun", datetime(YEAR, 4, 1), None),
    }
    for ext, (unit, due, closed) in hard.items():
        rows.append(dict(
            rows[0], external_id=ext, unit_id=units[unit], received_at=due - timedelta(days=7),
            due_at=due, closed_at=closed, first_response_at=None, resolved=closed is not None,
            status=TicketStatus.closed if closed else TicketStatus.in_progress,
            content=f"老旧小区漏水多年 {SCRIPT} 13912345678",
        ))  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Ticket.external_id, Ticket.id)).tuples().all())
        for ext, (unit, due, _closed) in hard.items():
            for step, level, days in (("ledger", 3, 5), ("bulletin", 4, 14)):
                session.add(Escalation(
                    item_kind="ticket", item_id=ids[ext], step=step, level=level,
                    unit_id=units[unit], due_on=due.date() + timedelta(days=days),
                    applied_at=due + timedelta(days=days), reason=step,
                ))  # fmt: skip
        session.add(SpotCheckSample(
            quarter=f"{YEAR}-Q2", item_kind="ticket", item_id=ids["A020"],
            unit_id=units["cy-sanlitun"], seed="s", drawn_at=datetime(YEAR, 7, 1), passed=False,
            note="现场核验：问题未解决，联系人 13700001111", checked_at=datetime(YEAR, 7, 10),
        ))  # fmt: skip
        run = Run(loop="lookback", period="x", started_at=datetime(YEAR, 8, 1), summary={},
                  parameters={})  # fmt: skip
        session.add(run)
        session.flush()
        session.add(LookbackFinding(
            run_id=run.id, item_kind="ticket", item_id=ids["A010"],
            unit_id=units["dc-donghuamen"], recurrences=2, reopened=False,
        ))  # fmt: skip


def points_and_total(text: str) -> tuple[list[Decimal], Decimal]:
    # A rate without data shows "—" for its points (it takes none), not 0.00.
    points = [Decimal(p) if p != "—" else Decimal(0)
              for p in re.findall(r"，得分 (-?\d+\.\d{2}|—)", text)]  # fmt: skip
    [total] = re.findall(r"总分 (-?\d+\.\d{2})（各项得分之和）", text)
    return points, Decimal(total)


def test_summary_breakdowns_and_rerun(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(city)
    summary = annual_evaluation(year=YEAR)
    assert summary["status"] == "ok" and summary["mail_sent"] == len(smtp.messages) > 0
    mail = by_recipient(smtp)
    assert all(len(messages) == 1 for messages in mail.values()), Counter(
        {k: len(v) for k, v in mail.items()}
    )

    # The summary: to the leadership and the office, the scores CSV attached.
    for address in ("leaders@duban.example", "office@duban.example"):
        [summary_mail] = mail[address]
        assert "年度接诉即办绩效考评总结" in summary_mail.message["Subject"]
    [office] = mail["office@duban.example"]
    text, html = office.part("plain"), office.part("html")
    assert "建外街道" in html and "<table" in html
    assert "建外街道" in text and "排名前列" in text and "排名靠后" in text
    assert "攻坚销号" in text and "HARD-JW" not in text  # aggregates only, no items
    [attachment] = list(office.message.iter_attachments())
    assert attachment.get_filename() == "评分.csv"  # RFC 2231 in the part, decoded here
    body = attachment.get_payload(decode=True).decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(body)))
    assert header == list(SCORE_HEADERS.values())  # Chinese column names
    assert header[:3] == ["年度", "考评组", "组内排名"] and "响应率·得分" in header
    english = dict(zip(SCORE_HEADERS.values(), SCORE_HEADERS.keys(), strict=True))
    scores = [{english[k]: v for k, v in row.items()} for row in csv.DictReader(io.StringIO(body))]
    by_unit = {row["unit"]: row for row in scores}
    assert set(UNITS) <= set(by_unit)
    for row in scores:  # the total is the sum of the components, to the cent
        # A rate without data has an empty value and empty points, never 0 (docs/metrics.md).
        for key in RATE_COMPONENTS:
            assert (row[f"{key}_value"] == "") == (row[f"{key}_points"] == ""), row["unit"]
        parts = [Decimal(v) for k, v in row.items() if k.endswith("_points") and v != ""]
        assert sum(parts, Decimal(0)) == Decimal(row["total"]), row["unit"]
    assert by_unit["cy-jianwai"]["old_items_closed_value"] == "2.0"
    assert Decimal(by_unit["cy-jianwai"]["old_items_closed_points"]) == Decimal("2.0")
    assert Decimal(by_unit["cy-sanlitun"]["old_items_closed_points"]) == 0  # still open
    assert Decimal(by_unit["cy-sanlitun"]["spot_check_failures_points"]) == Decimal("-2.0")
    assert Decimal(by_unit["cy-sanlitun"]["escalations_points"]) == Decimal("-1.0")
    assert Decimal(by_unit["dc-donghuamen"]["recurrences_points"]) == Decimal("-1.0")
    assert by_unit["commerce"]["rank"] == ""  # no record: listed, not ranked
    archived = city["reports"] / "annual" / str(YEAR) / "评分.csv"
    assert archived.read_text(encoding="utf-8-sig") == body

    # Each unit: only its own breakdown, its total the sum of its shown points.
    emails = {u.code: u.emails[0] for u in city["config"].units.units}
    for unit in UNITS:
        [message] = mail[emails[unit]]
        u_text, u_html = message.part("plain"), message.part("html")
        assert "绩效考评得分明细" in message.message["Subject"]
        points, total = points_and_total(u_text)
        assert len(points) == len(COMPONENTS) and sum(points, Decimal(0)) == total
        assert Decimal(by_unit[unit]["total"]) == total
        for part in (u_text, u_html):
            assert "13812345678" not in part and "13912345678" not in part
            assert "13700001111" not in part
        assert "<script>" not in u_html  # citizen text is escaped
        assert not list(message.message.iter_attachments())
    jianwai = mail["jianwai@duban.example"][0].part("plain")
    assert "HARD-JW" in jianwai and "HARD-JW2" in jianwai and "曾挂账" in jianwai
    assert "老旧小区漏水多年" in jianwai and "139****5678" in jianwai
    assert "&lt;script&gt;" in mail["jianwai@duban.example"][0].part("html")
    sanlitun = mail["sanlitun@duban.example"][0].part("plain")
    assert "A020" in sanlitun and "137****1111" in sanlitun and "HARD-OPEN" in sanlitun
    assert "HARD-JW" not in sanlitun
    for unit in UNITS:
        if unit != "cy-jianwai":
            assert "HARD-JW" not in mail[emails[unit]][0].part("plain")
        if unit != "cy-sanlitun":
            assert "A020" not in mail[emails[unit]][0].part("plain")

    # A re-run renders nothing new and sends nothing new.
    sent = len(smtp.messages)
    with session_scope(engine) as session:
        notices = session.scalar(select(func.count(Notice.id)).where(Notice.loop == "annual"))
    again = annual_evaluation(year=YEAR)
    assert again["status"] == "ok" and again["mail_sent"] == 0
    assert again["notices_already_recorded"] == notices
    assert len(smtp.messages) == sent
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Notice.id))) == notices
        deliveries = session.scalar(select(func.count(Delivery.id)))
        runs = session.scalars(select(Run.status).where(Run.loop == "annual")).all()
        first = session.scalars(select(Run.summary).where(Run.loop == "annual")).first()
    assert deliveries == sent and runs == ["ok", "ok"]
    assert first is not None and first["totals"]["cy-jianwai"] == float(
        by_unit["cy-jianwai"]["total"]
    )


def test_dry_run_and_unscheduled_day(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(city)
    dry = annual_evaluation(year=YEAR, dry_run=True)
    assert dry["status"] == "dry-run" and smtp.messages == []
    assert (city["reports"] / "dry-run" / "annual" / str(YEAR) / "评分.csv").exists()
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Notice.id))) == 0
    today = date.today()
    result = annual_evaluation()
    if is_due(today, "first_working_day_of_year", city["config"].calendar):
        assert result["status"] == "ok"
    else:
        assert result["status"] == "skipped" and smtp.messages == []
        with session_scope(engine) as session:
            statuses = session.scalars(select(Run.status).where(Run.loop == "annual")).all()
        assert "skipped" in statuses
