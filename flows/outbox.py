"""Re-send failed or parked deliveries — `duban outbox retry` as a Prefect deployment
(`outbox-retry`, no schedule: started from its form once the cause is fixed)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import WithJsonSchema

from duban.context import load_context
from duban.notices.retry import retry_and_deliver
from flows.parameters import form

DeliveryIds = Annotated[
    list[int] | None, WithJsonSchema({"type": "array", "items": {"type": "integer"}})
]


Status = Annotated[
    Literal["all", "failed", "parked", "refused"],
    form(
        "状态 Status",
        "Which deliveries to re-send: all (failed and parked), failed (the server refused "
        "them, 5xx), parked (failed on their own for several runs) or refused (outside the "
        "allowed domains). 重发哪些邮件：全部（失败和搁置）、失败、搁置或拒发。",
    ),
]
Ids = Annotated[
    DeliveryIds,
    form(
        "投递编号 Delivery ids",
        "Only these deliveries (their ids in the digest or `duban outbox retry`); empty: by "
        "status. 仅重发这些投递；留空则按状态。",
    ),
]


@flow(name="outbox-retry", description="re-send failed or parked e-mails (duban outbox retry)")
def outbox_retry(
    status: Status = "all",
    ids: Ids = None,
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
