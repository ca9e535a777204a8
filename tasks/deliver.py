"""Prefect task: put notices in the outbox and deliver what is pending."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.db import session_scope
from duban.notices import deliver as delivery
from duban.notices.outbox import enqueue_all
from tasks.log import run_logger
from tasks.render import RenderResult


@task(name="deliver", cache_policy=NO_CACHE)
def deliver(ctx: LoopContext, rendered: RenderResult) -> dict[str, int]:
    """Enqueue one delivery per (notice, recipient), then send every pending delivery."""
    with session_scope(ctx.engine) as session:
        notices = [(n.notice_id, n.recipients) for n in rendered.notices if n.notice_id is not None]
        enqueue_all(session, notices, ctx.config.mail)
    counted = [n.notice_id for n in rendered.notices if n.notice_id is not None]
    return delivery.deliver(
        ctx.engine, ctx.settings, ctx.config.mail, logger=run_logger(), counted=counted
    )
