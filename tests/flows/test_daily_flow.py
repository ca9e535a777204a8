"""The daily report flow, end to end: Prefect, a real database (SQLite and PostgreSQL) and a
real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update

from duban.db import session_scope
from duban.db.models import (
    Delivery,
    DeliveryStatus,
    Escalation,
    Notice,
    Run,
    Ticket,
    TicketStatus,
    Unit,
)
from duban.notices.outbox import NO_RECIPIENT
from flows.daily import daily_report
from tests.flows.helpers import add_ticket, by_recipient

# Mon 2026-10-12; Thu Oct 8, Fri Oct 9 and Sat Oct 10 (调休) are the working days before it.
DAY = date(2026, 10, 12)
SCRIPT = "<script>alert('x')</script>"
DAY_END = datetime(2026, 10, 12, 23, 59, 59)
LATER = datetime(2026, 10, 21, 23, 59, 59)


def seed_tickets(engine: Engine) -> None:
    """Jianguomen: one overdue, one due today, one new; Sanlitun: one new with personal
    data and markup; Donghuamen: nothing at all (it must receive nothing)."""
    add_ticket(
        engine,
        "J-LATE",
        "dc-jianguomen",
        datetime(2026, 9, 28, 9),
        datetime(2026, 10, 8, 23, 59, 59),
    )
    add_ticket(engine, "J-TODAY", "dc-jianguomen", datetime(2026, 10, 1, 9), DAY_END)
    add_ticket(
        engine,
        "J-NEW",
        "dc-jianguomen",
        datetime(2026, 10, 10, 15),
        datetime(2026, 10, 21, 23, 59, 59),
    )
    add_ticket(
        engine, "S-NEW", "cy-sanlitun", datetime(2026, 10, 11, 20), LATER,
        content=f"请回电13812345678，身份证110101199003071234 {SCRIPT}",
        address="三里屯路<b>19</b>号",
    )  # fmt: skip
    # Closed long ago, on time: nothing to report.
    add_ticket(
        engine, "D-OLD", "dc-donghuamen", datetime(2026, 9, 1, 9), datetime(2026, 9, 10, 23, 59),
        status=TicketStatus.closed, closed_at=datetime(2026, 9, 2, 9), resolved=True,
    )  # fmt: skip


def test_each_unit_gets_exactly_its_own_items(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    summary = daily_report(day=DAY)
    assert summary["mail_sent"] == summary["notices"]

    mail = by_recipient(smtp)
    assert set(mail) == {
        "jianguomen@duban.example",
        "sanlitun@duban.example",
        "dongcheng@duban.example",
        "office@duban.example",
    }  # fmt: skip  (dongcheng supervises Jianguomen: its late item was escalated)
    assert "donghuamen@duban.example" not in mail  # nothing to report: nothing sent
    [jianguomen] = mail["jianguomen@duban.example"]
    text, html = jianguomen.part("plain"), jianguomen.part("html")
    for own in ("J-LATE", "J-TODAY", "J-NEW"):
        assert own in text and own in html
    assert "S-NEW" not in text and "S-NEW" not in html
    assert "红色" in html and "督办" in text

    [sanlitun] = mail["sanlitun@duban.example"]
    text, html = sanlitun.part("plain"), sanlitun.part("html")
    assert "S-NEW" in text and "J-" not in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>19</b>" not in html
    for secret in ("13812345678", "110101199003071234", "19900307"):
        assert secret not in text and secret not in html
    assert "138****5678" in text

    [digest] = mail["office@duban.example"]
    assert "全市" in digest.message["Subject"]
    assert "S-NEW" not in digest.part("plain")  # the digest has figures, not citizen text


def test_rerun_for_the_same_day_sends_nothing_new(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    first = daily_report(day=DAY)
    sent = len(smtp.messages)
    again = daily_report(day=DAY)
    assert len(smtp.messages) == sent
    assert again["mail_sent"] == 0 and again["notices_already_recorded"] == first["notices"]
    with session_scope(engine) as session:
        steps = session.execute(select(Escalation.item_id, Escalation.step)).all()
    assert len(steps) == len(set(steps)) > 0


def test_smtp_down_loses_nothing_and_the_next_run_delivers_once(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    smtp.down()
    first = daily_report(day=DAY)
    assert first["mail_sent"] == 0 and first["mail_pending"] == first["notices"]
    with session_scope(engine) as session:
        pending = session.scalars(select(Delivery)).all()
    assert pending and all(d.status == DeliveryStatus.pending and d.last_error for d in pending)

    smtp.up()
    second = daily_report(day=DAY)
    assert second["mail_sent"] == len(pending)
    assert set(smtp.message_ids().values()) == {1}
    assert len(smtp.messages) == len(pending)


def test_smtp_failing_after_k_messages_then_recovering(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    smtp.fail_after(2)
    daily_report(day=DAY)
    assert len(smtp.messages) == 2
    smtp.recover()
    daily_report(day=DAY)
    with session_scope(engine) as session:
        deliveries = session.scalar(select(func.count()).select_from(Delivery))
    assert len(smtp.messages) == deliveries
    assert set(smtp.message_ids().values()) == {1}


def test_a_failed_delivery_appears_in_the_next_digest(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    smtp.reject("sanlitun@duban.example")
    daily_report(day=DAY)
    add_ticket(
        engine,
        "J-TUE",
        "dc-jianguomen",
        datetime(2026, 10, 12, 10),
        datetime(2026, 10, 22, 23, 59, 59),
    )
    daily_report(day=DAY + timedelta(days=1))
    digests = [m for m in smtp.messages if "office@duban.example" in m.rcpt_tos]
    assert "sanlitun@duban.example" in digests[-1].part("plain")


def test_units_without_an_address_are_refused_counted_and_named_in_the_digest(
    city: dict[str, Any],
) -> None:
    """Sanlitun has no address at all, Jianguomen only one outside the allowed domains: both
    reports are refused deliveries, counted in mail_refused, named in the same day's digest
    and listed as undelivered in the next one's."""
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    with session_scope(engine) as session:
        session.execute(update(Unit).where(Unit.code == "cy-sanlitun").values(emails=[]))
        session.execute(
            update(Unit).where(Unit.code == "dc-jianguomen").values(emails=["j@elsewhere.example"])
        )
    summary = daily_report(day=DAY)
    assert summary["mail_refused"] == 2 and summary["mail_pending"] == 0
    with session_scope(engine) as session:
        refused = dict(
            session.execute(
                select(Delivery.recipient, Delivery.last_error).where(
                    Delivery.status == DeliveryStatus.refused
                )
            ).all()
        )
    assert set(refused) == {NO_RECIPIENT, "j@elsewhere.example"}
    assert refused[NO_RECIPIENT].startswith("no recipient")
    [digest] = [m for m in smtp.messages if "office@duban.example" in m.rcpt_tos]
    for body in (digest.part("plain"), digest.part("html")):
        assert "2 个单位没有有效的收件地址" in body
        assert "三里屯街道" in body and "建国门街道" in body
    assert "为 2 个无有效收件地址的单位补充地址" in digest.part("plain")  # in the summary

    daily_report(day=DAY + timedelta(days=1))
    later = [m for m in smtp.messages if "office@duban.example" in m.rcpt_tos][-1]
    assert NO_RECIPIENT in later.part("plain") and "拒发 2" in later.part("plain")


def test_non_working_day_sends_nothing_and_the_next_working_day_catches_up(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    daily_report(day=date(2026, 10, 8))  # Thu: the first working day after National Day
    sent_thursday = len(smtp.messages)
    sunday = daily_report(day=date(2026, 10, 11))
    assert sunday["skipped"] == "not a working day"
    assert len(smtp.messages) == sent_thursday
    # Fri 9 and Sat 10 (a make-up working day) were missed: Monday's run catches up.
    monday = daily_report(day=DAY)
    assert monday["caught_up"] == ["2026-10-09", "2026-10-10"]
    with session_scope(engine) as session:
        late = session.scalar(select(Ticket.id).where(Ticket.external_id == "J-LATE"))
        rows = session.execute(
            select(Escalation.step, Escalation.due_on).where(Escalation.item_id == late)
        )
        steps = {step: due_on for step, due_on in rows}
    # J-LATE was due Thu Oct 8: reminder that day, supervision the next working day (Fri 9),
    # the ledger 3 working days late (Fri 9, Sat 10 调休, Mon 12) — each recorded once.
    assert steps == {
        "reminder": date(2026, 10, 8), "supervision": date(2026, 10, 9), "ledger": DAY,
    }  # fmt: skip


def test_dry_run_renders_and_archives_but_records_and_sends_nothing(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    summary = daily_report(day=DAY, dry_run=True)
    assert summary["notices"] > 0 and smtp.messages == []
    archived = list((city["reports"] / "dry-run" / "daily" / "2026-10-12").glob("*.html"))
    assert len(archived) == summary["notices"]
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 0
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalars(select(Run.dry_run)).all() == [True]


def test_two_runs_at_once_deliver_each_message_once(city: dict[str, Any], engine: Engine) -> None:
    """Two daily runs for the same day started together (FOR UPDATE SKIP LOCKED on
    PostgreSQL, a compare-and-set claim on SQLite)."""
    smtp = city["smtp"]
    seed_tickets(engine)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            daily_report(day=DAY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with session_scope(engine) as session:
        deliveries = session.scalar(select(func.count()).select_from(Delivery))
    assert len(smtp.messages) == deliveries > 0
    assert Counter(smtp.message_ids().values()) == Counter({1: deliveries})


@pytest.mark.parametrize("engine", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)  # fmt: skip
def test_two_runs_at_once_count_only_the_ladder_steps_each_recorded(
    city: dict[str, Any], engine: Engine
) -> None:
    """Finding (issue 15): a concurrent worker reported ladder steps it never inserted. The
    test holds a SHARE lock on `escalations` until both runs wait to insert the same steps,
    so both have computed them; the summaries' counts must add up to the rows recorded."""
    seed_tickets(engine)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(daily_report(day=DAY))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    waiting = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'escalations' AND NOT l.granted"
    )
    with engine.connect() as lock, engine.connect() as probe:
        lock.execute(text("LOCK TABLE escalations IN SHARE MODE"))
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while probe.execute(waiting).scalar_one() < 2:
            probe.rollback()
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.1)
        lock.rollback()  # both runs insert now: one records each step, the other none
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(results) == 2
    with session_scope(engine) as session:
        recorded = Counter(session.scalars(select(Escalation.step)).all())
    assert sum(recorded.values()) > 0
    reported = sum((Counter(r["escalations"]) for r in results), Counter())
    assert reported == recorded
