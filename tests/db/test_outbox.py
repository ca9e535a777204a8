"""The outbox against a real SMTP server (aiosmtpd, see conftest.py), on SQLite and PostgreSQL.

No mocks of yagmail: the SmtpMailer talks SMTP to the recorder, which counts what arrives.
Back-off sleeps are injected (recorded, not slept).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update

from duban.config import MailFile
from duban.db import session_scope
from duban.db.models import Delivery, DeliveryStatus, Notice
from duban.notices.deliver import message_for
from duban.notices.mailer import (
    FileMailer,
    Message,
    SmtpMailer,
    TransientMailError,
    eml_name,
    make_mailer,
)
from duban.notices.outbox import (
    NO_RECIPIENT,
    NO_RECIPIENT_ERROR,
    RecipientRefused,
    allowed,
    deliver_pending,
    enqueue,
    enqueue_all,
    status_counts,
)
from duban.settings import Settings

HTML = (
    "<html><body><h1>朝阳区 日报 2026-10-12</h1>\n<table><tr><td>超期</td><td>3</td></tr>"
    "</table>\n<p>请及时办理。</p></body></html>"
)
TEXT = "朝阳区 日报 2026-10-12\n\n超期: 3\n请及时办理。\n"


def mail_file(**changes: Any) -> MailFile:
    values: dict[str, Any] = {
        "office": ["office@duban.example"],
        "allowed_domains": ["duban.example"],
        "max_attempts_per_run": 3,
        "retry_backoff_seconds": 0.5,
    }
    values.update(changes)
    return MailFile(**values)


class Sleeps:
    """The injected `sleep`: records the back-off, never sleeps; can run a hook."""

    def __init__(self, hook: Any = None) -> None:
        self.calls: list[float] = []
        self.hook = hook

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.hook is not None:
            self.hook()


def smtp_settings(server: Any, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": "none",
        "mail_from": "督办室 <duban@duban.example>",
    }
    values.update(changes)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def add_notice(engine: Engine, tmp_path: Path, audience: str = "office") -> int:
    folder = tmp_path / "reports" / audience
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "daily.html").write_text(HTML, encoding="utf-8")
    (folder / "daily.txt").write_text(TEXT, encoding="utf-8")
    with session_scope(engine) as session:
        notice = Notice(
            loop="daily",
            period="2026-10-12",
            audience=audience,
            kind="digest",
            subject=f"【督办】日报 2026-10-12 {audience}",
            html_path=str(folder / "daily.html"),
            text_path=str(folder / "daily.txt"),
            created_at=datetime(2026, 10, 12, 8, 0),
        )
        session.add(notice)
        session.flush()
        return notice.id


def render(delivery: Delivery, notice: Notice) -> Message:
    """The message Duban sends (duban.notices.deliver), with this test's own message id."""
    return replace(
        message_for(delivery, notice),
        message_id=f"<delivery-{delivery.id}.{notice.loop}-{notice.period}-{notice.audience}@duban>",
    )


def queue(engine: Engine, notice_id: int, recipients: list[str], mail: MailFile) -> list[int]:
    with session_scope(engine) as session:
        return [d.id for d in enqueue(session, notice_id, recipients, mail)]


def rows(engine: Engine) -> dict[str, Delivery]:
    with session_scope(engine) as session:
        return {d.recipient: d for d in session.scalars(select(Delivery).order_by(Delivery.id))}


def units(n: int) -> list[str]:
    return [f"unit{i:02d}@duban.example" for i in range(n)]


def normalised(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip("\n")


# ---------------------------------------------------------------- recipients


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("office@duban.example", True),
        ("Office@DUBAN.Example", True),
        ("chaoyang@cy.duban.example", True),
        ("x@notduban.example", False),
        ("x@duban.example.evil.com", False),
        ("x@gmail.com", False),
        ("x@duban.example, y@gmail.com", False),
        ("y@gmail.com,x@duban.example", False),
        ("Name <x@duban.example>", False),
        ("duban.example", False),
        ("@duban.example", False),
        # Routing before the @-sign (issue 15, item 14): percent hack, bang path, quotes.
        ("a%evil.com@duban.example", False),
        ("evil.com!a@duban.example", False),
        ('"a@evil.com"@duban.example', False),
        ('"a"@duban.example', False),
    ],
)
def test_allowed_domains(recipient: str, expected: bool) -> None:
    assert allowed(recipient, ["duban.example"]) is expected


# ---------------------------------------------------------------- enqueue


def test_enqueue_twice_gives_one_delivery_per_recipient(engine: Engine, tmp_path: Path) -> None:
    mail = mail_file()
    notice_id = add_notice(engine, tmp_path)
    first = queue(
        engine, notice_id, ["a@duban.example", "b@duban.example", "a@DUBAN.example"], mail
    )
    second = queue(engine, notice_id, ["b@duban.example", "a@duban.example"], mail)
    assert len(first) == 2
    assert sorted(second) == sorted(first)
    found = rows(engine)
    assert sorted(found) == ["a@duban.example", "b@duban.example"]
    assert {d.status for d in found.values()} == {DeliveryStatus.pending}


def test_a_notice_with_nobody_to_send_to_is_one_refused_delivery_until_it_has(
    engine: Engine, tmp_path: Path
) -> None:
    mail = mail_file()
    notice_id = add_notice(engine, tmp_path)
    assert queue(engine, notice_id, [], mail) == queue(engine, notice_id, [" "], mail)  # once
    [placeholder] = rows(engine).values()
    assert (placeholder.recipient, placeholder.status) == (NO_RECIPIENT, DeliveryStatus.refused)
    assert placeholder.last_error == NO_RECIPIENT_ERROR
    assert status_counts(engine, [notice_id])["refused"] == 1  # counted: mail_refused
    # The unit got an address: re-running enqueues it and the placeholder goes.
    queue(engine, notice_id, ["unit00@duban.example"], mail)
    assert {r: d.status for r, d in rows(engine).items()} == {
        "unit00@duban.example": DeliveryStatus.pending
    }


def test_enqueue_all_records_what_enqueue_does_notice_by_notice_in_few_statements(
    engine: Engine, tmp_path: Path
) -> None:
    """Differential: the same notices and recipients, enqueued one notice at a time and all
    at once (issue 17: four statements per notice of a ~430-notice daily report)."""
    specs: list[list[str]] = [
        ["a@duban.example"],
        [],  # nobody to send to
        ["B@Duban.Example", "b@duban.example", " c@duban.example "],  # normalised, deduplicated
        ["x@elsewhere.example", "d@duban.example"],  # one refused for its domain
        ["e%evil.example@duban.example"],  # not a plain address
    ] * 8
    one = [add_notice(engine, tmp_path, f"one{i}") for i in range(len(specs))]
    many = [add_notice(engine, tmp_path, f"many{i}") for i in range(len(specs))]

    def table() -> dict[str, list[tuple[int, str, str, str | None]]]:
        out: dict[str, list[tuple[int, str, str, str | None]]] = {"one": [], "many": []}
        with session_scope(engine) as session:
            for d in session.scalars(select(Delivery).order_by(Delivery.notice_id, Delivery.id)):
                side, index = ("one", one.index(d.notice_id)) if d.notice_id in one else (
                    "many", many.index(d.notice_id))  # fmt: skip
                out[side].append((index, d.recipient, str(d.status), d.last_error))
        return out

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    for mail, recipients in (
        (mail_file(), specs),
        # later: elsewhere.example allowed, and the notice without an address gets one
        (mail_file(allowed_domains=["duban.example", "elsewhere.example"]),
         [r or ["f@duban.example"] for r in specs]),
    ):  # fmt: skip
        with session_scope(engine) as session:
            for notice_id, wanted in zip(one, recipients, strict=True):
                enqueue(session, notice_id, wanted, mail)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            with session_scope(engine) as session:
                enqueue_all(session, zip(many, recipients, strict=True), mail)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        found = table()
        assert found["many"] == found["one"]
        assert len(statements) <= 6  # 40 notices: DELETE, SELECT, INSERT (+ UPDATEs of reopened)
        statements.clear()
    statuses = {status for _, _, status, _ in found["many"]}
    assert statuses == {"pending", "refused"}
    assert any(r == "x@elsewhere.example" and s == "pending" for _, r, s, _ in found["many"])
    assert not any(r == NO_RECIPIENT for _, r, _, _ in found["many"])


def test_recipient_outside_allowed_domains_is_refused_and_never_sent(
    engine: Engine, tmp_path: Path, smtp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mail = mail_file()
    notice_id = add_notice(engine, tmp_path)
    with caplog.at_level(logging.WARNING, logger="duban.notices.outbox"):
        queue(engine, notice_id, ["ok@duban.example", "x@y.com"], mail)
    assert "x@y.com is outside the allowed mail domains" in caplog.text
    refused = rows(engine)["x@y.com"]
    assert refused.status == DeliveryStatus.refused
    assert refused.last_error == (
        "recipient x@y.com is outside the allowed mail domains (duban.example); "
        "see config/mail.yaml allowed_domains"
    )
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1", sleep=Sleeps())
    finally:
        mailer.close()
    assert report.sent == 1
    assert smtp_server.recipients() == {"ok@duban.example": 1}
    assert rows(engine)["x@y.com"].status == DeliveryStatus.refused


def test_staging_redirect_outside_allowed_domains_stops_before_anything(
    engine: Engine, tmp_path: Path
) -> None:
    mail = mail_file(staging_redirect="qa@elsewhere.com")
    queue(engine, add_notice(engine, tmp_path), ["a@duban.example"], mail)
    mailer = FileMailer(tmp_path / "outbox", "duban@duban.example")
    with pytest.raises(RecipientRefused, match=r"qa@elsewhere\.com is outside"):
        deliver_pending(engine, mailer, render, mail, worker="w1")
    assert rows(engine)["a@duban.example"].status == DeliveryStatus.pending


# ---------------------------------------------------------------- SMTP


def test_each_delivery_arrives_exactly_once_with_both_parts(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file()
    notice_id = add_notice(engine, tmp_path)
    ids = queue(engine, notice_id, units(5), mail)
    workbook = tmp_path / "明细.xlsx"
    workbook.write_bytes(b"PK\x03\x04 not really a workbook")

    def with_workbook(delivery: Delivery, notice: Notice) -> Message:
        return Message(**{**render(delivery, notice).__dict__, "attachments": (workbook,)})

    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, with_workbook, mail, worker="w1", batch=2)
    finally:
        mailer.close()

    assert (report.sent, report.pending, report.refused, report.errors) == (5, 0, 0, [])
    expected_ids = {f"<delivery-{i}.daily-2026-10-12-office@duban>" for i in ids}
    assert smtp_server.message_ids() == dict.fromkeys(expected_ids, 1)
    for received in smtp_server.messages:
        msg = received.message
        assert received.mail_from == "duban@duban.example"
        assert len(received.rcpt_tos) == 1 and msg["To"] == received.rcpt_tos[0]
        assert msg["Subject"] == "【督办】日报 2026-10-12 office"
        assert "duban@duban.example" in msg["From"] and "gmail" not in msg["From"]
        assert normalised(received.part("plain")) == normalised(TEXT)
        assert normalised(received.part("html")) == normalised(HTML)  # no <br>, nothing dropped
        assert "<br>" not in received.part("html")
        alternative = next(p for p in msg.walk() if p.get_content_type() == "multipart/alternative")
        assert [p.get_content_type() for p in alternative.iter_parts()] == [
            "text/plain",
            "text/html",
        ]
        [attachment] = list(msg.iter_attachments())
        assert attachment.get_filename() == "明细.xlsx"
        assert attachment.get_content() == workbook.read_bytes()
    for delivery in rows(engine).values():
        assert delivery.status == DeliveryStatus.sent
        assert delivery.attempts == 1 and delivery.sent_at is not None
        assert delivery.claimed_by == "w1"

    # A second run (another process, same outbox) sends nothing new.
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        again = deliver_pending(engine, mailer, render, mail, worker="w2")
    finally:
        mailer.close()
    assert (again.sent, again.pending) == (0, 0)
    assert len(smtp_server.messages) == 5


def test_staging_redirect_sends_to_one_address_with_the_real_recipient_in_the_subject(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file(staging_redirect="qa@duban.example")
    queue(engine, add_notice(engine, tmp_path), ["a@duban.example", "b@duban.example"], mail)
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1")
    finally:
        mailer.close()
    assert report.sent == 2
    assert smtp_server.recipients() == {"qa@duban.example": 2}
    subjects = sorted(r.message["Subject"] for r in smtp_server.messages)
    assert subjects == [
        "[staging → a@duban.example] 【督办】日报 2026-10-12 office",
        "[staging → b@duban.example] 【督办】日报 2026-10-12 office",
    ]
    assert sorted(rows(engine)) == ["a@duban.example", "b@duban.example"]  # rows keep the truth


def test_smtp_down_for_the_whole_run_loses_nothing_and_is_fast(
    engine: Engine, tmp_path: Path, smtp_server: Any, record_property: Any
) -> None:
    mail = mail_file(retry_backoff_seconds=2)
    ids = queue(engine, add_notice(engine, tmp_path), units(12), mail)
    smtp_server.down()
    sleeps = Sleeps()
    mailer = SmtpMailer(smtp_settings(smtp_server))
    started = time.perf_counter()
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1", batch=5, sleep=sleeps)
    finally:
        mailer.close()
    elapsed = time.perf_counter() - started
    record_property("smtp_down_run_seconds", round(elapsed, 3))
    print(f"\nSMTP down: run took {elapsed:.3f}s, back-off requested {sleeps.calls}")

    assert elapsed < 3
    # The breaker opens after 3 deliveries x 3 attempts: 2 back-offs each, 2 s then 4 s.
    assert sleeps.calls == [2, 4] * 3
    assert report.stopped and (report.sent, report.pending, report.refused) == (0, 12, 0)
    found = rows(engine)
    assert {d.status for d in found.values()} == {DeliveryStatus.pending}
    assert all(d.last_error for d in found.values())
    assert all(d.claimed_by is None for d in found.values())
    attempts = [found[u].attempts for u in units(12)]
    assert attempts == [3, 3, 3] + [0] * 9  # the untried ones are not charged an attempt
    assert "cannot reach the SMTP server" in (found[units(12)[0]].last_error or "")
    assert "not attempted" in (found[units(12)[-1]].last_error or "")

    smtp_server.up()
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1", sleep=Sleeps())
    finally:
        mailer.close()
    assert report.sent == 12
    assert sorted(smtp_server.message_ids().values()) == [1] * 12
    assert len(smtp_server.message_ids()) == len(ids)
    assert {d.status for d in rows(engine).values()} == {DeliveryStatus.sent}


def test_smtp_failing_after_k_messages_then_recovering_delivers_each_once_over_two_runs(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path), units(10), mail)
    smtp_server.fail_after(4)
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        first = deliver_pending(engine, mailer, render, mail, worker="w1", sleep=Sleeps())
        assert (first.sent, first.pending, first.stopped) == (4, 6, True)
        assert "421" in first.errors[0][2]
        smtp_server.recover()
        second = deliver_pending(engine, mailer, render, mail, worker="w1", sleep=Sleeps())
    finally:
        mailer.close()
    assert (second.sent, second.pending) == (6, 0)
    assert smtp_server.recipients() == dict.fromkeys(units(10), 1)
    assert len(smtp_server.message_ids()) == 10
    assert {d.status for d in rows(engine).values()} == {DeliveryStatus.sent}


def test_transient_failure_is_retried_with_backoff_in_the_same_run(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file(retry_backoff_seconds=1.5)
    queue(engine, add_notice(engine, tmp_path), units(3), mail)
    smtp_server.fail_after(1)
    sleeps = Sleeps()
    sleeps.hook = lambda: smtp_server.recover() if len(sleeps.calls) == 2 else None
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1", sleep=sleeps)
    finally:
        mailer.close()
    assert sleeps.calls == [1.5, 3.0]  # exponential: x2
    assert (report.sent, report.pending) == (3, 0)
    assert smtp_server.recipients() == dict.fromkeys(units(3), 1)
    assert [d.attempts for d in rows(engine).values()] == [1, 3, 1]


def test_recipient_rejected_with_550_is_failed_and_the_others_are_sent(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path), units(4), mail)
    smtp_server.reject(units(4)[1])
    sleeps = Sleeps()
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1", sleep=sleeps)
    finally:
        mailer.close()
    assert (report.sent, report.pending, report.failed, report.refused) == (3, 0, 1, 0)
    assert sleeps.calls == []  # a permanent refusal is not retried
    refused = rows(engine)[units(4)[1]]
    assert refused.status == DeliveryStatus.failed and refused.attempts == 1
    assert "550" in (refused.last_error or "") and "Recipient address rejected" in (
        refused.last_error or ""
    )
    assert smtp_server.recipients() == {u: 1 for u in units(4) if u != units(4)[1]}


def test_stale_sending_claim_is_resent_and_a_fresh_one_is_not(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file()
    stale, fresh, pending = queue(engine, add_notice(engine, tmp_path), units(3), mail)
    now = datetime.now()
    with engine.begin() as conn:
        for delivery_id, claimed_at in ((stale, now - timedelta(minutes=20)), (fresh, now)):
            conn.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status="sending", claimed_by="crashed", claimed_at=claimed_at)
            )
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w2", lease_seconds=600)
    finally:
        mailer.close()
    assert report.sent == 2
    assert smtp_server.recipients() == {units(3)[0]: 1, units(3)[2]: 1}
    found = rows(engine)
    assert found[units(3)[0]].status == DeliveryStatus.sent
    assert found[units(3)[1]].status == DeliveryStatus.sending
    assert found[units(3)[1]].claimed_by == "crashed"
    assert pending  # the third was plainly pending


def test_a_claim_taken_over_meanwhile_is_not_sent_and_a_broken_render_is_kept(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file()
    taken, broken, fine = queue(engine, add_notice(engine, tmp_path), units(3), mail)

    def meddling(delivery: Delivery, notice: Notice) -> Message:
        if delivery.id == taken:  # another worker re-claimed it after our lease ran out
            with engine.begin() as conn:
                conn.execute(
                    update(Delivery)
                    .where(Delivery.id == taken)
                    .values(claimed_by="other", claimed_at=datetime.now())
                )
        if delivery.id == broken:
            raise FileNotFoundError("reports/daily.html")
        return render(delivery, notice)

    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, meddling, mail, worker="w1", sleep=Sleeps())
    finally:
        mailer.close()
    assert (report.sent, report.pending, report.failed) == (1, 0, 1)
    assert smtp_server.recipients() == {units(3)[2]: 1}
    found = rows(engine)
    assert (found[units(3)[0]].status, found[units(3)[0]].claimed_by) == ("sending", "other")
    # A message that cannot be built is failed for good (listed; an admin re-sends it).
    assert found[units(3)[1]].status == DeliveryStatus.failed
    assert "cannot build the e-mail: FileNotFoundError" in (found[units(3)[1]].last_error or "")
    assert fine


def test_notice_ids_limit_what_is_sent(engine: Engine, tmp_path: Path, smtp_server: Any) -> None:
    mail = mail_file()
    first = add_notice(engine, tmp_path, "office")
    second = add_notice(engine, tmp_path, "cy")
    queue(engine, first, ["a@duban.example"], mail)
    queue(engine, second, ["b@duban.example"], mail)
    mailer = SmtpMailer(smtp_settings(smtp_server))
    try:
        report = deliver_pending(engine, mailer, render, mail, worker="w1", notice_ids=[second])
    finally:
        mailer.close()
    assert report.sent == 1
    assert smtp_server.recipients() == {"b@duban.example": 1}


def test_a_run_claims_at_most_batch_deliveries_at_a_time(engine: Engine, tmp_path: Path) -> None:
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path), units(10), mail)
    claimed_while_rendering: list[int] = []

    def counting(delivery: Delivery, notice: Notice) -> Message:
        with session_scope(engine) as session:
            sending = session.scalars(
                select(Delivery.id).where(Delivery.status == DeliveryStatus.sending)
            ).all()
        claimed_while_rendering.append(len(sending))
        return render(delivery, notice)

    mailer = FileMailer(tmp_path / "outbox", "duban@duban.example")
    report = deliver_pending(engine, mailer, counting, mail, worker="w1", batch=3)
    assert report.sent == 10
    assert claimed_while_rendering == [3, 2, 1, 3, 2, 1, 3, 2, 1, 1]


def test_one_commit_per_delivery_and_each_sent_recorded_before_the_next_goes_out(
    engine: Engine, tmp_path: Path
) -> None:
    """The lease renewal of the next delivery and the outcome of the previous one share a
    transaction (issue 17: two commits per delivery before): still, whenever a message is
    about to be built, every message the server has is recorded `sent`."""
    mail = mail_file()
    queue(engine, add_notice(engine, tmp_path), units(12), mail)
    outbox = tmp_path / "outbox"
    unrecorded: list[int] = []

    def checking(delivery: Delivery, notice: Notice) -> Message:
        with engine.connect() as conn:  # a read: no commit of its own
            sent = conn.scalars(
                select(Delivery.id).where(Delivery.status == DeliveryStatus.sent)
            ).all()
        on_server = len(list(outbox.glob("*.eml"))) if outbox.exists() else 0
        unrecorded.append(on_server - len(sent))
        return render(delivery, notice)

    commits: list[int] = []

    def count(conn: Any) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    try:
        mailer = FileMailer(outbox, "duban@duban.example")
        report = deliver_pending(engine, mailer, checking, mail, worker="w1", batch=5)
    finally:
        event.remove(engine, "commit", count)
    assert report.sent == 12
    assert unrecorded == [0] * 12
    # 3 claims (5 + 5 + 2) + 1 that finds nothing, and one commit per delivery after the
    # first of each batch (its lease is the claim): 4 + 9 = 13; two per delivery was 28.
    assert len(commits) <= 12 + 4
    assert {d.status for d in rows(engine).values()} == {DeliveryStatus.sent}
    assert len(list(outbox.glob("*.eml"))) == 12


def test_two_workers_at_the_same_time_deliver_each_message_once(
    engine: Engine, tmp_path: Path, smtp_server: Any
) -> None:
    mail = mail_file()
    first = add_notice(engine, tmp_path, "office")
    second = add_notice(engine, tmp_path, "cy")
    queue(engine, first, units(20), mail)
    queue(engine, second, units(40)[20:], mail)
    start = threading.Barrier(2)
    reports: dict[str, Any] = {}
    failures: list[BaseException] = []

    def run(worker: str) -> None:
        mailer = SmtpMailer(smtp_settings(smtp_server))
        try:
            start.wait()
            reports[worker] = deliver_pending(
                engine, mailer, render, mail, worker=worker, batch=3, sleep=Sleeps()
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            mailer.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    print(f"\nw1 sent {reports['w1'].sent}, w2 sent {reports['w2'].sent}")
    assert reports["w1"].sent + reports["w2"].sent == 40
    assert smtp_server.recipients() == dict.fromkeys(units(40), 1)
    assert sorted(smtp_server.message_ids().values()) == [1] * 40
    found = rows(engine)
    assert {d.status for d in found.values()} == {DeliveryStatus.sent}
    assert {d.attempts for d in found.values()} == {1}


# ---------------------------------------------------------------- the mailers themselves


def test_file_mailer_writes_one_parseable_eml_per_delivery(engine: Engine, tmp_path: Path) -> None:
    mail = mail_file()
    outbox = tmp_path / "outbox"
    mailer = make_mailer(Settings(_env_file=None, outbox_dir=outbox, smtp_host=None))  # type: ignore[call-arg]
    assert isinstance(mailer, FileMailer)
    ids = queue(engine, add_notice(engine, tmp_path), units(4), mail)
    report = deliver_pending(engine, mailer, render, mail, worker="w1")
    again = deliver_pending(engine, mailer, render, mail, worker="w1")
    assert (report.sent, again.sent) == (4, 0)
    files = sorted(outbox.iterdir())
    assert [f.name for f in files] == sorted(
        eml_name(f"<delivery-{i}.daily-2026-10-12-office@duban>") for i in ids
    )
    for path in files:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["Message-ID"] == f"<{path.name.removesuffix('.eml')}>"
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        assert text is not None and normalised(text.get_content()) == normalised(TEXT)
        assert html is not None and normalised(html.get_content()) == normalised(HTML)
        assert msg["To"] in units(4)


def test_smtp_mailer_never_appends_gmail_and_never_shows_the_password(smtp_server: Any) -> None:
    settings = smtp_settings(smtp_server, smtp_user="duban", smtp_password="s3cret-pw")
    mailer = SmtpMailer(settings)
    client = mailer._client()
    assert client.user == "duban"  # not "duban@gmail.com"
    assert (client.host, client.port, client.ssl, client.smtp_skip_login) == (
        smtp_server.host,
        str(smtp_server.port),
        False,
        False,
    )
    message = Message("a@duban.example", "s", "<p>h</p>", "t", "<m-1@duban>")
    # The test server offers no AUTH: logging in fails, as a transient error without secrets.
    with pytest.raises(TransientMailError) as caught:
        mailer.send(message)
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(mailer)
    mailer.close()
    assert SmtpMailer(smtp_settings(smtp_server, smtp_port=None, smtp_security="ssl")).port == 465
    assert (
        SmtpMailer(smtp_settings(smtp_server, smtp_port=None, smtp_security="starttls")).port == 587
    )
    assert SmtpMailer(smtp_settings(smtp_server, smtp_port=None)).port == 25
