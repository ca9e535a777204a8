"""Deliver what is pending in the outbox: build the mailer, send, log, close — written once.

Every sender calls `deliver`: the loops' `deliver` task (tasks/deliver.py), the monthly
bulletin once approved (duban/loops/monthly/approve.py) and the failure alert
(duban/notices/alert.py). Each first enqueues its own deliveries (`outbox.enqueue`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from duban.config import MailFile
from duban.db.models import Delivery, Notice
from duban.db.runs import worker_name
from duban.notices.mailer import Message, make_mailer
from duban.notices.outbox import deliver_pending, status_counts
from duban.settings import Settings

__all__ = ["deliver", "delivery_worker", "message_for", "worker_name"]

log = logging.getLogger("duban")


def message_for(delivery: Delivery, notice: Notice) -> Message:
    """The e-mail of one delivery, from the notice's archived files: PNG files go inline (the
    HTML shows them), other files as attachments."""
    files = [Path(p) for p in notice.attachments or []]
    return Message(
        recipient=delivery.recipient,
        subject=notice.subject,
        html=Path(notice.html_path).read_text(encoding="utf-8"),
        text=Path(notice.text_path).read_text(encoding="utf-8"),
        message_id=f"<duban-{delivery.id}.{notice.loop}-{notice.period}-{notice.audience}@duban>",
        attachments=tuple(p for p in files if p.suffix.lower() != ".png"),
        inline=tuple(p for p in files if p.suffix.lower() == ".png"),
    )


def delivery_worker() -> str:
    """The claim name of one delivery pass: "host:pid/<random>". Unique per pass, so that an
    uncertain delivery (tried again by a later pass only) is retried by the next run even in
    a process that runs several (e.g. `duban serve`)."""
    return f"{worker_name()}/{secrets.token_hex(4)}"


def deliver(
    engine: Engine,
    settings: Settings,
    mail: MailFile,
    *,
    notice_ids: Collection[int] | None = None,
    label: str = "delivery",
    logger: Any = log,
    counted: Collection[int] | None = None,
) -> dict[str, int]:
    """Send every pending delivery (of `notice_ids` only, if given) and log the outcome as
    "<label>: N sent, N still pending, N failed, N refused, N parked" (and the first 20
    errors).

    Returns {"sent", "pending", "failed", "refused", "parked"}: the figures each run records
    as mail_*. "sent" is what this call sent; the others count, in the database after it, the
    deliveries of the notices `counted` (default `notice_ids`; every delivery when both are
    None) — refusals at enqueue included.
    """
    mailer = make_mailer(settings)
    worker = delivery_worker()
    try:
        report = deliver_pending(
            engine, mailer, message_for, mail, worker=worker, notice_ids=notice_ids
        )
    finally:
        mailer.close()
    if report.database_lost and not label.startswith("alert"):
        # Waited out (every outcome recorded), but the admins must know: imported here,
        # because the alert itself is delivered by this function.
        from duban.notices.alert import database_lost_alert

        logger.warning("%s: the database was lost while sending; telling the admins", label)
        database_lost_alert(engine, settings, mail, worker, report.database_lost)
    counts = status_counts(engine, counted if counted is not None else notice_ids)
    figures = {"sent": report.sent} | counts
    logger.info(
        "%s: %d sent, %d still pending, %d failed, %d refused, %d parked",
        label, report.sent, counts["pending"], counts["failed"], counts["refused"],
        counts["parked"],
    )  # fmt: skip
    for delivery_id, recipient, error in report.errors[:20]:
        logger.warning("delivery %s to %s: %s", delivery_id, recipient, error)
    return figures
