"""The delivery fault suite (issue 15, findings 1-5): a scriptable SMTP sink on loopback
(tests/smtp_server.py) refuses one mailbox, answers 5xx to everything, drops the connection
after DATA; a run dies holding claims. On SQLite and PostgreSQL, with the real SmtpMailer.
Back-off sleeps are injected (recorded, not slept).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from duban.db import session_scope
from duban.db.models import Delivery, DeliveryStatus, Notice, Run
from duban.db.runs import start_run
from duban.notices.deliver import deliver
from duban.notices.mailer import SmtpMailer
from duban.notices.outbox import DeliveryReport, deliver_pending
from duban.notices.recovery import recover
from duban.notices.retry import retry_and_deliver
from duban.queries import notices as qn
from tests.db.test_outbox import (
    HTML,
    TEXT,
    Sleeps,
    mail_file,
    queue,
    render,
    smtp_settings,
    units,
)
from tests.smtp_server import MAILBOX_FULL, SmtpRecorder


def add_notice(engine: Engine, tmp_path: Path, day: int, subject: str | None = None) -> int:
    folder = tmp_path / "reports" / f"day{day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "daily.html").write_text(HTML, encoding="utf-8")
    (folder / "daily.txt").write_text(TEXT, encoding="utf-8")
    with session_scope(engine) as session:
        notice = Notice(
            loop="daily", period=f"2026-10-{12 + day:02d}", audience="units",
            kind="digest" if subject is None else "poison",
            subject=subject or f"【督办】日报 2026-10-{12 + day:02d}",
            html_path=str(folder / "daily.html"), text_path=str(folder / "daily.txt"),
            created_at=datetime(2026, 10, 12 + day, 8, 0),
        )  # fmt: skip
        session.add(notice)
        session.flush()
        return notice.id


def run(engine: Engine, server: SmtpRecorder, mail: Any, worker: str) -> DeliveryReport:
    mailer = SmtpMailer(smtp_settings(server))
    try:
        return deliver_pending(engine, mailer, render, mail, worker=worker, sleep=Sleeps())
    finally:
        mailer.close()


def statuses(engine: Engine) -> dict[int, Delivery]:
    with session_scope(engine) as session:
        return {d.id: d for d in session.scalars(select(Delivery).order_by(Delivery.id))}


# ---------------------------------------------------------------- 1. one full mailbox


def test_full_mailboxes_for_five_days_cost_only_their_own_mail(
    engine: Engine, tmp_path: Path, smtp_server: SmtpRecorder
) -> None:
    mail = mail_file(park_after=5)
    # Three full mailboxes first in the queue: three in a row tripped the breaker before.
    full = [f"full{i}@duban.example" for i in range(3)]
    for address in full:
        smtp_server.reject(address, MAILBOX_FULL)
    others = units(12)
    sent_per_day = []
    for day in range(5):
        queue(engine, add_notice(engine, tmp_path, day), full + others, mail)
        if day == 0:  # and a poison delivery: a subject with a line separator
            queue(engine, add_notice(engine, tmp_path, 0, "日报\u2028x"), others[:1], mail)
        report = run(engine, smtp_server, mail, worker=f"day{day}")
        assert not report.stopped
        sent_per_day.append(report.sent)
        # Every other mailbox has had every day's e-mail, once, by the end of that day.
        assert smtp_server.recipients() == {a: day + 1 for a in others}
        assert set(smtp_server.message_ids().values()) == {1}
    print(f"\nsent per day: {sent_per_day}")
    assert sent_per_day == [12] * 5
    rows = statuses(engine)
    mine = [d for d in rows.values() if d.recipient in full]
    # Day 1's three deliveries failed 5 runs: parked with the reason; the later days' wait.
    parked = [d for d in mine if d.status == DeliveryStatus.parked]
    assert len(parked) == 3 and all(d.failures == 5 for d in parked)
    assert all("452" in (d.last_error or "") and "parked" in (d.last_error or "") for d in parked)
    assert sorted(d.failures for d in mine if d.status == DeliveryStatus.pending) == sorted(
        [1, 2, 3, 4] * 3
    )
    poison = [d for d in rows.values() if d.status == DeliveryStatus.failed]
    assert len(poison) == 1 and "cannot build the e-mail" in (poison[0].last_error or "")
    assert poison[0].attempts == 1  # tried once, never again
    with engine.connect() as conn:
        counts = qn.undelivered_counts(conn)
    assert counts == {"pending": 12, "failed": 1, "refused": 0, "parked": 3}


# ---------------------------------------------------------------- 2. 5xx for everything


def test_5xx_for_everything_is_failed_listed_and_sent_by_one_retry(
    engine: Engine, tmp_path: Path, smtp_server: SmtpRecorder
) -> None:
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path, 0), [*units(10), "x@gmail.com"], mail)
    smtp_server.refuse_messages()
    report = run(engine, smtp_server, mail, worker="w1")
    assert (report.sent, report.pending, report.failed, report.stopped) == (0, 0, 10, False)
    rows = statuses(engine)
    failed = [d for d in rows.values() if d.status == DeliveryStatus.failed]
    assert len(failed) == 10 and all("554" in (d.last_error or "") for d in failed)
    with engine.connect() as conn:
        listed = qn.undelivered(conn)
        counts = qn.undelivered_counts(conn)
    assert len(listed) == 11  # the ten failed and the one refused at enqueue
    assert counts == {"pending": 0, "failed": 10, "refused": 1, "parked": 0}
    # Not re-sent by later runs on their own.
    assert run(engine, smtp_server, mail, worker="w2").sent == 0

    smtp_server.refuse_messages(None)  # the server is fixed
    settings = smtp_settings(smtp_server, reports_dir=tmp_path / "reports")
    result = retry_and_deliver(engine, settings, mail, every=True)
    assert (result["requeued"], result["sent"], result["failed"]) == (10, 10, 0)
    assert result["refused"] == 1  # a policy refusal is not re-sent by --all
    assert smtp_server.recipients() == {u: 1 for u in units(10)}
    assert retry_and_deliver(engine, settings, mail, every=True)["requeued"] == 0


# ---------------------------------------------------------------- 3. a lost 250


def test_a_lost_250_gives_at_most_one_extra_copy(
    engine: Engine, tmp_path: Path, smtp_server: SmtpRecorder
) -> None:
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path, 0), units(6), mail)
    smtp_server.drop_after_data(3)
    first = run(engine, smtp_server, mail, worker="w1")
    assert (first.sent, first.pending, first.stopped) == (3, 3, False)
    assert len(smtp_server.messages) == 6  # the server has all six
    uncertain = [d for d in statuses(engine).values() if d.uncertain]
    assert len(uncertain) == 3 and all(d.status == DeliveryStatus.pending for d in uncertain)
    # Not again in the same run (worker).
    assert run(engine, smtp_server, mail, worker="w1").sent == 0

    smtp_server.drop_after_data(1)  # the next run loses one 250 again
    second = run(engine, smtp_server, mail, worker="w2")
    assert (second.sent, second.failed) == (2, 1)
    assert run(engine, smtp_server, mail, worker="w3").sent == 0
    copies = smtp_server.message_ids()
    print(f"\ncopies per Message-ID: {sorted(copies.values())}")
    assert len(copies) == 6 and max(copies.values()) == 2
    assert sum(copies.values()) == 6 + 3  # at most one extra copy each
    rows = statuses(engine)
    assert sum(d.status == DeliveryStatus.sent for d in rows.values()) == 5
    lost_twice = [d for d in rows.values() if d.status == DeliveryStatus.failed]
    assert len(lost_twice) == 1 and "lost twice" in (lost_twice[0].last_error or "")


# ---------------------------------------------------------------- 4. a run that died


@pytest.fixture
def dead_worker() -> Iterator[str]:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    yield f"{socket.gethostname()}:{child.pid}"


def test_a_dead_runs_claims_are_delivered_next_run_once_and_the_admins_told(
    engine: Engine, tmp_path: Path, smtp_server: SmtpRecorder, dead_worker: str
) -> None:
    mail = mail_file(admins=["admin@duban.example"])
    ids = queue(engine, add_notice(engine, tmp_path, 0), units(5), mail)
    dead_run = start_run(engine, "daily", "2026-10-12", {"day": "2026-10-12"}, False, dead_worker)
    with engine.begin() as conn:  # it had claimed them just now, then was killed
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(status="sending", claimed_by=dead_worker, claimed_at=datetime.now())
        )
    # The lease alone keeps them back for 600 s:
    assert run(engine, smtp_server, mail, worker="w0").sent == 0

    settings = smtp_settings(smtp_server, reports_dir=tmp_path / "reports")
    recovered = recover(engine, settings, mail)
    assert (recovered.runs, recovered.released, recovered.alerts_sent) == ([dead_run], 5, 1)
    with session_scope(engine) as session:
        dead = session.get_one(Run, dead_run)
        assert dead.status == "abandoned" and dead.finished_at is not None
    alerts = [m for m in smtp_server.messages if "admin@duban.example" in m.rcpt_tos]
    assert len(alerts) == 1 and f"run{dead_run}abandoned" in alerts[0].part("plain")

    figures = deliver(engine, settings, mail)
    assert figures["sent"] == 5 and figures["pending"] == 0
    assert smtp_server.recipients() == {**{u: 1 for u in units(5)}, "admin@duban.example": 1}
    # The next start finds nothing more to recover and tells nobody again.
    again = recover(engine, settings, mail)
    assert (again.runs, again.released, again.alerts_sent) == ([], 0, 0)
    assert len(smtp_server.messages) == 6


def _url_of(engine: Engine) -> str:
    """The engine's URL for another process (on PostgreSQL: with this test's schema)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SHOW search_path").scalar()
        url += f"?options=-csearch_path%3D{schema}"
    return url


def test_kill_9_of_a_worker_mid_send_then_the_next_run_delivers_everything_and_tells_admins(
    engine: Engine, tmp_path: Path, smtp_server: SmtpRecorder
) -> None:
    mail = mail_file(admins=["admin@duban.example"])
    queue(engine, add_notice(engine, tmp_path, 0), units(8), mail)
    smtp_server.hold()  # the worker's first message waits for its 250
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.delivery_worker", _url_of(engine), smtp_server.host,
         str(smtp_server.port)],
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while smtp_server.held == 0:
            assert worker.poll() is None, "the worker ended before sending"
            assert time.monotonic() < deadline, "the worker never reached the server"
            time.sleep(0.05)
        worker.kill()  # SIGKILL, mid-send: its claims stay 'sending', its run 'running'
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    smtp_server.release()  # the server had the message: it counts as received
    with session_scope(engine) as session:
        claimed = [d for d in session.scalars(select(Delivery)) if d.status == "sending"]
        [dead] = session.scalars(select(Run).where(Run.status == "running")).all()
    assert len(claimed) == 8
    assert run(engine, smtp_server, mail, worker="w0").sent == 0  # the lease holds them

    settings = smtp_settings(smtp_server, reports_dir=tmp_path / "reports")
    recovered = recover(engine, settings, mail)
    assert (recovered.runs, recovered.released, recovered.alerts_sent) == ([dead.id], 8, 1)
    figures = deliver(engine, settings, mail)
    assert (figures["sent"], figures["pending"]) == (8, 0)
    copies = Counter(
        m.message_id for m in smtp_server.messages if "admin@duban.example" not in m.rcpt_tos
    )
    print(f"\ncopies after kill -9: {sorted(copies.values())}")
    assert len(copies) == 8 and sum(copies.values()) <= 9  # the one in flight: at most twice
    assert smtp_server.recipients()["admin@duban.example"] == 1
    with session_scope(engine) as session:
        assert session.get_one(Run, dead.id).status == "abandoned"
        assert {d.status for d in session.scalars(select(Delivery))} == {DeliveryStatus.sent}


def test_an_uncertain_delivery_is_retried_by_the_next_pass_of_the_same_process(
    engine: Engine, tmp_path: Path, smtp_server: SmtpRecorder
) -> None:
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path, 0), units(2), mail)
    settings = smtp_settings(smtp_server, reports_dir=tmp_path / "reports")
    smtp_server.drop_after_data(1)
    first = deliver(engine, settings, mail)  # e.g. two runs of `duban serve`, one process
    assert (first["sent"], first["pending"]) == (1, 1)
    second = deliver(engine, settings, mail)
    assert (second["sent"], second["pending"]) == (1, 0)
    assert sorted(smtp_server.message_ids().values()) == [1, 2]


def test_stale_runs_other_hosts_by_age_and_runs_without_a_worker_never(engine: Engine) -> None:
    from datetime import timedelta

    from duban.db.runs import STALE_AFTER, stale_runs

    fresh = start_run(engine, "daily", "a", {}, False, "elsewhere:1")
    old = start_run(engine, "daily", "b", {}, False, "elsewhere:2")
    mine = start_run(engine, "daily", "c", {}, False)  # this process: alive
    with session_scope(engine) as session:
        session.get_one(Run, old).started_at = datetime.now() - STALE_AFTER - timedelta(hours=1)
        session.add(Run(loop="lookback", period="x", started_at=datetime(2026, 8, 1),
                        status="running", summary={}))  # fmt: skip
    assert [r.id for r in stale_runs(engine)] == [old]
    assert fresh and mine
