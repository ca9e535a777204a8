"""Prefect tasks of the supervision clock: coarse wrappers over duban.clock."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.clock import apply_clock
from duban.clock.decide import Decision, record_decision
from duban.context import LoopContext
from tasks.log import run_logger


@task(name="apply-clock", cache_policy=NO_CACHE)
def refresh_clock(ctx: LoopContext, day: date, last_day: date | None, dry_run: bool) -> int:
    """Replay the clock of the open tickets with an event effective since the last run
    (`last_day`; None: every open ticket with events), and correct the deadlines a changed
    working-day calendar moves (calendar_correction events); not in a dry run."""
    if dry_run:
        return 0
    as_of = max(datetime.now(), datetime.combine(day, time.min))
    since = datetime.combine(last_day, time.min) if last_day else None
    changed = apply_clock(ctx.engine, None, as_of=as_of, since=since, config=ctx.config)
    run_logger().info("clock: %d tickets' effective deadline or figures changed", changed)
    return changed


@task(name="record-decision", cache_policy=NO_CACHE)
def decide_one(ctx: LoopContext, decision: Decision) -> dict[str, Any]:
    """Record one office decision through the clock's validation."""
    result = record_decision(ctx.engine, ctx.config, decision)
    log = run_logger()
    for refused in result.refused:
        log.warning("refused: %s", refused.line())
    log.info("decision %s: %s", decision.event_key(), result.line())
    return {
        "key": decision.event_key(),
        "recorded": len(result.recorded),
        "already_recorded": len(result.already),
        "refused": [r.line() for r in result.refused],
        "tickets_changed": result.changed,
    }
