"""Seeding helpers for the flow tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from duban.db import session_scope
from duban.db.models import Ticket, TicketStatus, Unit


def unit_ids(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}


def add_ticket(
    engine: Engine, external_id: str, unit: str, received: datetime, due: datetime, **kw: Any
) -> None:
    values: dict[str, Any] = {
        "source": "test", "external_id": external_id, "received_at": received, "due_at": due,
        "category": "噪声扰民", "street": "建国门街道", "address": "建国门内大街1号",
        "content": f"工单{external_id}：楼下施工噪声", "unit_id": unit_ids(engine)[unit],
        "urgency": 3, "status": TicketStatus.open, "row_hash": 0,
    }  # fmt: skip
    values.update(kw)
    with session_scope(engine) as session:
        session.add(Ticket(**values))


def by_recipient(smtp: Any) -> dict[str, list[Any]]:
    """The messages a real SMTP server received, by recipient."""
    out: dict[str, list[Any]] = {}
    for received in smtp.messages:
        for rcpt in received.rcpt_tos:
            out.setdefault(rcpt, []).append(received)
    return out
