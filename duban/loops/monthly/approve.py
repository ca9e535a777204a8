"""Approving the monthly bulletin (月通报审批) and sending it once approved.

The drafts of a month are approved (or rejected) in one of two ways that converge
(docs/monthly-bulletin.md): by the paused flow run's approval form, whose run then calls
`approve_and_send` itself (tasks/monthly.py), or by `duban approve monthly`, which resumes
such a paused run if there is one (flows/monthly.py `approve_monthly`) and otherwise — or
when the resumed run does not decide in time — calls `decide` here. Approving twice sends
nothing twice: the outbox is unique per (notice, recipient). Approving publishes the
month's record (duban/notices/records.py): its figures stand and its files are frozen.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from duban.context import LoopContext
from duban.db import session_scope
from duban.loops.monthly.report import LOOP
from duban.notices import approval, records
from duban.notices.deliver import deliver
from duban.notices.outbox import enqueue

__all__ = ["approve_and_send", "decide", "decided", "rendered_state", "send_approved"]

log = logging.getLogger("duban")


def send_approved(ctx: LoopContext, period: str, logger: Any = log) -> dict[str, Any]:
    """Publish the month's record of what is approved (its figures stand, its files are
    frozen: once), enqueue one delivery per (approved notice, recipient) of the month — the
    outbox's key makes this idempotent — and send what is pending for those notices only."""
    published = records.publish(ctx.engine, LOOP, period)
    if published:
        logger.info("monthly %s: published version(s) %s recorded", period, published)
    notices = approval.approved_notices(ctx.engine, LOOP, period)
    if not notices:
        return {"sent": 0, "pending": 0, "refused": 0}
    with session_scope(ctx.engine) as session:
        for notice_id, audience in notices:
            recipients = approval.recipients_for(session, ctx.config, audience)
            enqueue(session, notice_id, recipients, ctx.config.mail)
    return deliver(
        ctx.engine, ctx.settings, ctx.config.mail,
        notice_ids=[notice_id for notice_id, _ in notices],
        label=f"monthly {period} delivery", logger=logger,
    )  # fmt: skip


def approve_and_send(
    ctx: LoopContext, period: str, approver: str, *, via: str, comment: str = "", logger: Any = log
) -> dict[str, Any]:
    """Approve the month's drafts (audit), publish its record (the figures and the frozen
    files of the bulletin or correction approved) and deliver every approved notice once."""
    approved = approval.approve(ctx.engine, LOOP, period, approver, via=via, comment=comment)
    logger.info(
        "monthly %s: %d notices approved by %s via %s", period, len(approved), approver, via
    )
    return {"approved": len(approved), **send_approved(ctx, period, logger)}


def rendered_state(ctx: LoopContext, period: str) -> approval.ApprovalState:
    """The approval state of the month's notices; ValueError if none has been rendered."""
    current = approval.state(ctx.engine, LOOP, period)
    if current.notices == 0:
        raise ValueError(
            f"no monthly bulletin for {period} has been rendered; "
            f"run `duban run monthly --month {period}` first"
        )
    return current


def decided(
    ctx: LoopContext, period: str, before: approval.ApprovalState, wait_seconds: float
) -> bool:
    """Wait up to `wait_seconds` for the drafts of `period` to be approved or rejected by
    someone else (a resumed flow run): True once they are."""
    waited = time.monotonic() + wait_seconds
    while time.monotonic() < waited:
        after = approval.state(ctx.engine, LOOP, period)
        if after.drafts == 0 or after.rejections > before.rejections:
            return True
        time.sleep(0.5)
    return False


def decide(
    ctx: LoopContext, period: str, approver: str, *, approved: bool, comment: str = ""
) -> dict[str, Any]:
    """Approve and deliver, or reject, the drafts of `period` from the command line."""
    if not approved:
        rejected = approval.reject(ctx.engine, LOOP, period, approver, via="cli", comment=comment)
        return {"month": period, "status": "rejected", "drafts": len(rejected)}
    result = approve_and_send(ctx, period, approver, via="cli", comment=comment)
    mail = {k if k == "approved" else f"mail_{k}": v for k, v in result.items()}
    return {"month": period, "status": "approved", **mail}
