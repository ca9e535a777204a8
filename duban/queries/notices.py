"""The SQL that reads the recorded notices and their deliveries: what a period recorded,
its drafts and approvals, and what the outbox could not deliver."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, case, func, select

from duban.db.models import AuditRecord, Delivery, DeliveryStatus, Notice

__all__ = ["approval_counts", "approved", "drafts", "recorded", "undelivered"]


def _of(loop: str, period: str) -> tuple[Any, Any]:
    return Notice.loop == loop, Notice.period == period


def recorded(conn: Connection, loop: str, period: str) -> list[Row[Any]]:
    """The notices recorded for (loop, period), by id: id, audience, kind, subject,
    html_path, attachments."""
    stmt = (
        select(Notice.id, Notice.audience, Notice.kind, Notice.subject, Notice.html_path,
               Notice.attachments)
        .where(*_of(loop, period))
        .order_by(Notice.id)
    )  # fmt: skip
    return list(conn.execute(stmt).all())


def approval_counts(
    conn: Connection, loop: str, period: str, rejected: str
) -> tuple[int, int, int]:
    """(notices, drafts, rejections) of (loop, period): the recorded notices, those not
    approved yet, and the audit records that set a notice's approval to `rejected`."""
    total, drafts_ = conn.execute(
        select(
            func.count(Notice.id),
            func.coalesce(func.sum(case((Notice.approved_at.is_(None), 1), else_=0)), 0),
        ).where(*_of(loop, period))
    ).one()
    rejections = conn.scalar(
        select(func.count(AuditRecord.id)).where(
            AuditRecord.entity == "notice",
            AuditRecord.field == "approval",
            AuditRecord.new == rejected,
            AuditRecord.entity_id.in_(select(Notice.id).where(*_of(loop, period))),
        )
    )
    return int(total or 0), int(drafts_ or 0), int(rejections or 0)


def drafts(conn: Connection, loop: str, period: str) -> list[int]:
    """The ids of the drafts (not approved) of (loop, period), sorted."""
    return sorted(
        conn.scalars(
            select(Notice.id).where(*_of(loop, period), Notice.approved_at.is_(None))
        ).all()
    )


def approved(conn: Connection, loop: str, period: str) -> list[tuple[int, str]]:
    """(id, audience) of the approved notices of (loop, period), by id."""
    rows = conn.execute(
        select(Notice.id, Notice.audience)
        .where(*_of(loop, period), Notice.approved_at.is_not(None))
        .order_by(Notice.id)
    ).all()
    return [(int(i), str(a)) for i, a in rows]


def _undelivered() -> Any:
    """Not sent and either ended (refused, failed, parked) or pending with an attempt or an
    error (e.g. not attempted because sending stopped)."""
    ended = [DeliveryStatus.refused.value, DeliveryStatus.failed.value, DeliveryStatus.parked.value]
    return Delivery.status.in_(ended) | (
        (Delivery.status != DeliveryStatus.sent.value)
        & ((Delivery.attempts > 0) | Delivery.last_error.is_not(None))
    )


def undelivered(conn: Connection, limit: int = 100) -> list[Row[Any]]:
    """Deliveries not sent that the office should know of (recipient, status, attempts,
    last_error, subject), by id: for the office's digest (the first `limit`)."""
    return list(
        conn.execute(
            select(
                Delivery.recipient,
                Delivery.status,
                Delivery.attempts,
                Delivery.last_error,
                Notice.subject,
            )
            .join(Notice, Notice.id == Delivery.notice_id)
            .where(_undelivered())
            .order_by(Delivery.id)
            .limit(limit)
        )
    )


def undelivered_counts(conn: Connection) -> dict[str, int]:
    """How many deliveries `undelivered` would list without its limit, by status ("sending"
    counted as "pending"): exact, whatever the list shows."""
    counts = {"pending": 0, "failed": 0, "refused": 0, "parked": 0}
    rows = conn.execute(
        select(Delivery.status, func.count()).where(_undelivered()).group_by(Delivery.status)
    )
    for status, n in rows:
        key = "pending" if str(status) in ("pending", "sending") else str(status)
        counts[key] = counts.get(key, 0) + int(n)
    return counts
