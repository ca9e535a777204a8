"""An admin's re-send of failed or parked deliveries (`duban outbox retry`, and the Prefect
deployment `outbox-retry`, flows/outbox.py): re-queue them, then deliver them now."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from sqlalchemy import Engine, select

from duban.config import MailFile
from duban.db.models import Delivery, DeliveryStatus
from duban.notices.deliver import deliver
from duban.notices.outbox import RETRYABLE, retry
from duban.settings import Settings

__all__ = ["retry_and_deliver"]

log = logging.getLogger("duban.outbox")


def retry_and_deliver(
    engine: Engine,
    settings: Settings,
    mail: MailFile,
    *,
    ids: Collection[int] = (),
    status: str | None = None,
    every: bool = False,
    logger: Any = log,
) -> dict[str, int]:
    """Re-queue the deliveries asked for (`ids`, every one in `status`, or `every` failed
    and parked one) and send them. {"requeued", "sent", "pending", "failed", "refused",
    "parked"}: the figures of the re-queued deliveries after sending."""
    statuses: list[DeliveryStatus] = list(RETRYABLE) if every else []
    if status is not None:
        statuses.append(DeliveryStatus(status))
    requeued = retry(engine, ids=ids, statuses=statuses)
    if not requeued:
        return {"requeued": 0, "sent": 0, "pending": 0, "failed": 0, "refused": 0, "parked": 0}
    notice_ids = _notices_of(engine, requeued)
    figures = deliver(engine, settings, mail, notice_ids=notice_ids, label="outbox retry",
                      logger=logger)  # fmt: skip
    return {"requeued": len(requeued)} | figures


def _notices_of(engine: Engine, delivery_ids: list[int]) -> list[int]:
    with engine.connect() as conn:
        return sorted(
            set(
                conn.execute(
                    select(Delivery.notice_id).where(Delivery.id.in_(delivery_ids))
                ).scalars()
            )
        )
