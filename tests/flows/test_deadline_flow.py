"""A ticket without a deadline (无办理时限) and a cancelled or invalid one, through the daily
report on SQLite and PostgreSQL with the e-mails read at a real SMTP server: neither is ever
escalated nor counted as open-and-late; the no-deadline ticket is listed as such."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from duban.db import session_scope
from duban.db.models import Escalation, Ticket, TicketStatus
from flows.daily import daily_report
from tests.flows.helpers import add_ticket, by_recipient

DAY = date(2026, 10, 12)  # Mon; Oct 8, 9 and 10 (调休) are the working days before it
LONG_AGO = datetime(2026, 9, 1, 9)
WAS_DUE = datetime(2026, 9, 10, 23, 59, 59)  # overdue by far more than the whole ladder


def test_no_deadline_and_cancelled_tickets_are_never_escalated(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    unit = "dc-jianguomen"
    add_ticket(engine, "J-LATE", unit, LONG_AGO, WAS_DUE)  # the control: climbs the ladder
    add_ticket(engine, "J-NODUE", unit, LONG_AGO, None, content="无时限的诉求")  # type: ignore[arg-type]
    add_ticket(engine, "J-CANCEL", unit, LONG_AGO, WAS_DUE, status=TicketStatus.cancelled)
    add_ticket(engine, "J-INVALID", unit, LONG_AGO, WAS_DUE, status=TicketStatus.invalid)

    summary = daily_report(day=DAY)
    assert summary["mail_sent"] == summary["notices"]
    with session_scope(engine) as session:
        escalated = {
            ext
            for (ext,) in session.execute(
                select(Ticket.external_id).join(Escalation, Escalation.item_id == Ticket.id)
            )
        }
    assert escalated == {"J-LATE"}

    [mail] = by_recipient(smtp)["jianguomen@duban.example"]
    text, html = mail.part("plain"), mail.part("html")
    # Two open (J-LATE and J-NODUE), one red; the cancelled and invalid are not open.
    assert "在办 2（红色 1，" in text
    assert "无办理时限 1" in text
    assert "另有在办无办理时限工单 1 件" in html
    for excluded in ("J-CANCEL", "J-INVALID"):
        assert excluded not in text and excluded not in html
    assert "nan" not in text.lower() and "NaT" not in text

    # A re-run the same day applies nothing twice and still never escalates them.
    daily_report(day=DAY)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Ticket.external_id, Escalation.step).join(
                Escalation, Escalation.item_id == Ticket.id
            )
        ).all()
    assert {ext for ext, _ in rows} == {"J-LATE"}
    assert len(rows) == len(set(rows))
