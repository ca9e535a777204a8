"""Prefect task: apply the escalation ladder (one task for all items)."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.daily.escalation import apply_escalations
from tasks.log import run_logger


@task(name="escalate", cache_policy=NO_CACHE)
def escalate(ctx: LoopContext, day: date, last_day: date | None, dry_run: bool) -> dict[str, Any]:
    result = apply_escalations(ctx.engine, ctx.config, day, last_run_day=last_day, dry_run=dry_run)
    counts = result.counts()
    run_logger().info(
        "ladder: %d candidates, new steps %s%s",
        result.candidates,
        counts or "none",
        " (dry run: not recorded)" if dry_run else "",
    )
    return {"candidates": result.candidates, "new_steps": counts}
