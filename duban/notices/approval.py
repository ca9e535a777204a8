"""Approval of a held bulletin (审批): notices recorded as drafts are sent only once approved.

A notice whose `approved_at` is NULL is a **draft**: the flow that rendered it put nothing in
the outbox. Approving sets `approved_at` on every draft of the (loop, period) in one
compare-and-set UPDATE (only rows still NULL), and writes one `AuditRecord` per notice it
approved — so two approvals at once, or one twice, approve each notice once. Rejecting
changes no notice; it leaves an audit record per draft, and the drafts stay unsent.

Who receives an approved notice is derived from its audience: "office" → the office's
addresses in config/mail.yaml; a unit code → the unit's e-mail addresses (if it is active).
Delivery itself is the outbox's business (duban/loops/monthly/approve.py `send_approved`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import AuditRecord, Notice
from duban.queries import notices as qn
from duban.queries import units as qu

APPROVED = "approved"
REJECTED = "rejected"


@dataclass(frozen=True)
class ApprovalState:
    notices: int  # recorded notices of the period
    drafts: int  # of those, not approved yet
    rejections: int  # rejection records of the period's notices

    @property
    def approved(self) -> int:
        return self.notices - self.drafts


def state(engine: Engine, loop: str, period: str) -> ApprovalState:
    with session_scope(engine) as session:
        counts = qn.approval_counts(session.connection(), loop, period, REJECTED)
    return ApprovalState(*counts)


def _origin(loop: str, period: str, via: str, comment: str) -> str:
    text = f"{loop} {period} via {via}"
    return f"{text}: {comment}"[:500] if comment else text


def approve(
    engine: Engine, loop: str, period: str, actor: str, *, via: str, comment: str = ""
) -> list[int]:
    """Approve every draft of (loop, period); return the ids approved by this call (empty
    when all were approved already). One audit record per notice approved."""
    now = datetime.now()
    with session_scope(engine) as session:
        ids = sorted(
            session.execute(
                update(Notice)
                .where(Notice.loop == loop, Notice.period == period, Notice.approved_at.is_(None))
                .values(approved_at=now)
                .returning(Notice.id)
            )
            .scalars()
            .all()
        )
        _audit(session, ids, now, actor, APPROVED, _origin(loop, period, via, comment))
    return ids


def release(engine: Engine, notice_ids: list[int], actor: str, *, origin: str) -> list[int]:
    """Approve these notices at once, with no one to wait for: the office's own notice that a
    published figure changed (duban/loops/monthly/record.py). Returns the ids approved by
    this call; one audit record each."""
    if not notice_ids:
        return []
    now = datetime.now()
    with session_scope(engine) as session:
        ids = sorted(
            session.execute(
                update(Notice)
                .where(Notice.id.in_(notice_ids), Notice.approved_at.is_(None))
                .values(approved_at=now)
                .returning(Notice.id)
            )
            .scalars()
            .all()
        )
        _audit(session, ids, now, actor, APPROVED, origin)
    return ids


def reject(
    engine: Engine, loop: str, period: str, actor: str, *, via: str, comment: str = ""
) -> list[int]:
    """Record the rejection of every draft of (loop, period); nothing is sent or changed.
    Returns the ids of the drafts rejected."""
    now = datetime.now()
    with session_scope(engine) as session:
        ids = qn.drafts(session.connection(), loop, period)
        _audit(session, ids, now, actor, REJECTED, _origin(loop, period, via, comment))
    return ids


def _audit(
    session: Session, ids: list[int], now: datetime, actor: str, decision: str, origin: str
) -> None:
    """One audit record per draft decided: approval, draft -> `decision`."""
    session.add_all(
        AuditRecord(
            at=now, actor=actor[:100], entity="notice", entity_id=notice_id,
            field="approval", old="draft", new=decision, origin=origin,
        )
        for notice_id in ids
    )  # fmt: skip


def approved_notices(engine: Engine, loop: str, period: str) -> list[tuple[int, str]]:
    """(id, audience) of the approved notices of (loop, period), by id."""
    with session_scope(engine) as session:
        return qn.approved(session.connection(), loop, period)


def recipients_for(session: Session, config: CityConfig, audience: str) -> list[str]:
    """The addresses of a notice's audience: the office's, or an active unit's."""
    if audience == "office":
        return list(config.mail.office)
    row = qu.contact(session.connection(), audience)
    if row is None or not row.active:
        return []
    return list(row.emails or [])
