"""Prefect task: put notices in the outbox and deliver what is pending."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.db import session_scope
from duban.db.models import Delivery, Notice
from duban.notices.mailer import Message, make_mailer
from duban.notices.outbox import deliver_pending, enqueue
from tasks.log import run_logger
from tasks.render import RenderResult


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


@task(name="deliver", cache_policy=NO_CACHE)
def deliver(ctx: LoopContext, rendered: RenderResult) -> dict[str, Any]:
    """Enqueue one delivery per (notice, recipient), then send every pending delivery."""
    logger = run_logger()
    with session_scope(ctx.engine) as session:
        for notice in rendered.notices:
            if notice.notice_id is not None:
                enqueue(session, notice.notice_id, notice.recipients, ctx.config.mail)
    mailer = make_mailer(ctx.settings)
    try:
        report = deliver_pending(
            ctx.engine, mailer, message_for, ctx.config.mail,
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )  # fmt: skip
    finally:
        mailer.close()
    logger.info(
        "delivery: %d sent, %d still pending, %d refused",
        report.sent,
        report.failed,
        report.refused,
    )
    for delivery_id, recipient, error in report.errors[:20]:
        logger.warning("delivery %s to %s: %s", delivery_id, recipient, error)
    return {"sent": report.sent, "pending": report.failed, "refused": report.refused}
