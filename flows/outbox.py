"""Re-send failed or parked deliveries — `duban outbox retry` as a Prefect deployment
(`outbox-retry`, no schedule: started from its form once the cause is fixed)."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger

from duban.context import load_context
from duban.notices.retry import retry_and_deliver


@flow(name="outbox-retry", description="re-send failed or parked e-mails (duban outbox retry)")
def outbox_retry(
    status: Literal["all", "failed", "parked", "refused"] = "all",
    ids: list[int] | None = None,
) -> dict[str, Any]:
    """Re-queue the deliveries with `ids` if given, else every one in `status` ("all":
    failed and parked), and send them now."""
    ctx = load_context()
    try:
        return retry_and_deliver(
            ctx.engine, ctx.settings, ctx.config.mail,
            ids=ids or (), status=None if ids or status == "all" else status,
            every=not ids and status == "all", logger=get_run_logger(),
        )  # fmt: skip
    finally:
        ctx.engine.dispose()
