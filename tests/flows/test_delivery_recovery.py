"""The daily flow when delivery goes wrong (issue 15): 5xx for every message, then one
`duban outbox retry`; a run killed holding claims, then the next run. Prefect, SQLite and
PostgreSQL, the real aiosmtpd sink on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update

from duban.cli import main
from duban.db import session_scope
from duban.db.models import Delivery, DeliveryStatus, Run
from duban.db.runs import start_run
from flows.daily import daily_report
from tests.flows.test_daily_flow import DAY, seed_tickets

ADMIN = "admin@duban.example"  # config/mail.yaml admins
NEXT_DAY = date(2026, 10, 13)


def test_5xx_for_every_message_is_failed_counted_and_sent_by_one_outbox_retry(
    city: dict[str, Any], capsys: Any
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    smtp.refuse_messages()
    first = daily_report(day=DAY)
    assert first["mail_sent"] == 0 and first["mail_pending"] == 0
    assert first["mail_failed"] == first["notices"] > 0
    with session_scope(engine) as session:
        rows = session.scalars(select(Delivery)).all()
    assert rows and all(d.status == DeliveryStatus.failed for d in rows)
    assert all("554" in (d.last_error or "") for d in rows)

    # The next day's office digest lists and counts them (its own mail fails as well).
    second = daily_report(day=NEXT_DAY)
    assert second["mail_failed"] == second["notices"]
    digest = city["reports"] / "daily" / NEXT_DAY.isoformat() / "office-digest.txt"
    text = digest.read_text(encoding="utf-8")
    n = len(rows)
    assert f"共 {n} 封未送达：待发 0，失败 {n}，拒发 0，搁置 0。" in text
    with session_scope(engine) as session:
        rows = session.scalars(select(Delivery)).all()

    smtp.refuse_messages(None)
    assert main(["outbox", "retry", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"{len(rows)} deliveries re-queued; {len(rows)} sent" in out
    assert len(smtp.messages) == len(rows) and set(smtp.message_ids().values()) == {1}
    # The next day's digest would list none of them; a second retry finds nothing.
    assert main(["outbox", "retry", "--status", "failed"]) == 0
    assert "0 deliveries re-queued" in capsys.readouterr().out


def test_a_killed_runs_deliveries_go_out_with_the_next_run_once_and_the_admins_are_told(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    smtp.down()
    daily_report(day=DAY)  # renders and enqueues; nothing reaches the server
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}"  # a process that is gone: kill -9
    killed = start_run(engine, "daily", DAY.isoformat(), {"day": DAY.isoformat()}, False, dead)
    with engine.begin() as conn:  # it had just claimed every delivery
        claimed = conn.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.pending.value)
            .values(status="sending", claimed_by=dead, claimed_at=datetime.now())
        ).rowcount
    assert claimed > 0
    smtp.up()

    again = daily_report(day=DAY)
    with session_scope(engine) as session:
        assert session.get_one(Run, killed).status == "abandoned"
        statuses = {d.status for d in session.scalars(select(Delivery))}
    assert statuses == {DeliveryStatus.sent}
    assert again["mail_pending"] == 0
    to_admin = [m for m in smtp.messages if ADMIN in m.rcpt_tos]
    assert len(to_admin) == 1 and f"run{killed}abandoned" in to_admin[0].part("plain")
    assert set(smtp.message_ids().values()) == {1}  # each e-mail once
    assert len(smtp.messages) == claimed + 1
