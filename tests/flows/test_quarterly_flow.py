"""The quarterly spot check end to end: Prefect, a real database (SQLite and PostgreSQL) and a
real SMTP server. The office gets the quarter report with the checklist attached, each unit
only its own sampled items; a re-run draws the same sample and sends nothing new."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from duban.db import session_scope
from duban.db.models import Run, SpotCheckSample, Ticket, TicketStatus
from flows.quarterly import quarterly_spot_check
from tests.flows.helpers import add_ticket, by_recipient

SCRIPT = "<script>alert('x')</script>"
OFFICE = "office@duban.example"


def closed(engine: Any, ext: str, unit: str, closed_at: datetime, **kw: Any) -> None:
    received = closed_at - timedelta(days=3)
    add_ticket(engine, ext, unit, received, received + timedelta(days=5),
               status=TicketStatus.closed, closed_at=closed_at, resolved=True, **kw)  # fmt: skip


def seed(engine: Any) -> None:
    """Jianguomen: 5 closed as resolved in Q3 (3 drawn); Sanlitun: 1 (drawn), with personal
    data and markup; Donghuamen: closed in Q2 and one unresolved — it receives nothing."""
    for i in range(5):
        closed(engine, f"J-{i}", "dc-jianguomen", datetime(2026, 7, 6, 17) + timedelta(days=7 * i))
    closed(engine, "S-1", "cy-sanlitun", datetime(2026, 8, 20, 17), street="三里屯街道",
           content=f"请回电13812345678，身份证110101199003071234 {SCRIPT}")  # fmt: skip
    closed(engine, "D-Q2", "dc-donghuamen", datetime(2026, 6, 20, 17))
    closed(engine, "D-NO", "dc-donghuamen", datetime(2026, 8, 20, 17))
    with session_scope(engine) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.external_id == "D-NO")).one()
        ticket.resolved = False


def sample_of(engine: Any) -> list[tuple[str, int]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(SpotCheckSample.item_kind, SpotCheckSample.item_id).order_by(
                SpotCheckSample.item_id
            )
        ).all()
    return [(str(k), int(i)) for k, i in rows]


def test_office_gets_the_checklist_units_their_own_items_and_a_rerun_sends_nothing(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(engine)
    summary = quarterly_spot_check(quarter="2026-Q3")
    assert (summary["population"], summary["drawn"], summary["drawn_now"]) == (6, 4, True)
    assert summary["pending"] == 4 and summary["failed"] == 0
    assert summary["notices"] == 3 and summary["mail_sent"] == 3
    fingerprint = summary["fingerprint"]

    mail = by_recipient(smtp)
    assert set(mail) == {"jianguomen@duban.example", "sanlitun@duban.example", OFFICE}
    [office] = mail[OFFICE]
    assert "抽查核验" in office.message["Subject"] and "2026-Q3" in office.message["Subject"]
    text, html = office.part("plain"), office.part("html")
    assert fingerprint in text and fingerprint in html
    assert "S-1" in text and "J-" in text and "D-Q2" not in text and "D-NO" not in text
    assert "13812345678" not in text and "138****5678" in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    # The checklist and the strata (their seeds), with Chinese names (RFC 2231, decoded here).
    attachment, strata = list(office.message.iter_attachments())
    assert attachment.get_filename() == "抽查核验清单-2026-Q3.xlsx"
    assert strata.get_filename() == "抽样分层-2026-Q3.xlsx"
    assert "抽样分层-2026-Q3.xlsx" in text  # the notice says where the strata are
    seeds = load_workbook(BytesIO(strata.get_payload(decode=True)))["抽样分层"]
    assert [c.value for c in seeds[1]] == ["单位", "单位编码", "类型", "总数", "抽取", "种子指纹"]
    assert seeds.max_row == 3  # two strata
    book = load_workbook(BytesIO(attachment.get_payload(decode=True)))
    rows = list(book["抽查清单"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == 4 and {r[2] for r in rows} >= {"S-1"}
    assert all(r[-3:] == (None, None, None) for r in rows)  # for the inspectors to fill

    [jianguomen] = mail["jianguomen@duban.example"]
    text, html = jianguomen.part("plain"), jianguomen.part("html")
    assert "建国门街道" in jianguomen.message["Subject"]
    drawn_j = [e for e in (f"J-{i}" for i in range(5)) if e in text]
    assert len(drawn_j) == 3 and all(e in html for e in drawn_j)
    assert "S-1" not in text and "S-1" not in html
    assert not list(jianguomen.message.iter_attachments())
    [sanlitun] = mail["sanlitun@duban.example"]
    text, html = sanlitun.part("plain"), sanlitun.part("html")
    assert "S-1" in text and "J-" not in text and "J-" not in html
    for secret in ("13812345678", "110101199003071234", "19900307"):
        assert secret not in text and secret not in html
    assert "<script>" not in html and "&lt;script&gt;" in html

    first_sample = sample_of(engine)
    assert len(first_sample) == 4
    # Late closures of Q3 arrive; the re-run draws nothing new and sends nothing new.
    closed(engine, "J-LATE", "dc-jianguomen", datetime(2026, 9, 29, 17))
    sent = len(smtp.messages)
    again = quarterly_spot_check(quarter="2026-Q3")
    assert again["drawn_now"] is False and again["drawn"] == 4 and again["mail_sent"] == 0
    assert again["notices_already_recorded"] == 3 and again["fingerprint"] == fingerprint
    assert len(smtp.messages) == sent and sample_of(engine) == first_sample
    with session_scope(engine) as session:
        runs = session.scalars(select(Run).where(Run.loop == "quarterly")).all()
    assert [r.status for r in runs] == ["ok", "ok"] and runs[0].period == "2026-Q3"
    assert runs[0].summary["strata_drawn"][0]["seed"]  # the fingerprints, for the audit


def test_dry_run_records_and_sends_nothing_and_a_quarter_not_over_is_refused(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(engine)
    dry = quarterly_spot_check(quarter="2026-Q3", dry_run=True)
    assert dry["drawn"] == 4 and dry["mail_sent"] == 0 and "dry-run" in dry["archive"]
    assert sample_of(engine) == [] and smtp.messages == []
    real = quarterly_spot_check(quarter="2026-Q3")
    assert real["fingerprint"] == dry["fingerprint"] and real["drawn"] == 4
    future = date.today().year + 1
    with pytest.raises(ValueError, match="ends on"):
        quarterly_spot_check(quarter=f"{future}-Q1")


def test_a_scheduled_run_on_another_day_records_a_skipped_run(city: dict[str, Any]) -> None:
    from duban.config import load_config
    from duban.rules.schedule import is_due
    from duban.settings import get_settings

    settings = get_settings()
    today = datetime.now(settings.zone).date()
    calendar = load_config(settings.config_dir).calendar
    if is_due(today, "first_working_day_of_quarter", calendar):  # pragma: no cover
        pytest.skip("today is the first working day of a quarter: the run would draw")
    summary = quarterly_spot_check()
    assert summary["status"] == "skipped"
    with session_scope(city["engine"]) as session:
        runs = session.scalars(select(Run).where(Run.loop == "quarterly")).all()
        assert session.scalar(select(func.count()).select_from(SpotCheckSample)) == 0
    assert [r.status for r in runs] == ["skipped"]
