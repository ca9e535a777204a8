"""Prefect tasks of the daily report (日报告): climb the escalation ladder, measure, render.
Delivery is tasks.deliver."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.daily.escalation import apply_escalations
from duban.loops.daily.report import (
    DailySnapshot,
    measure_daily,
    office_context,
    unit_contexts,
    write_ledger_entries,
)
from duban.notices.outbox import allowed
from tasks.log import run_logger
from tasks.render import NoticeJob, RenderResult, render_all

LOOP = "daily"


@task(name="escalate", cache_policy=NO_CACHE)
def escalate(ctx: LoopContext, day: date, last_day: date | None, dry_run: bool) -> dict[str, Any]:
    """Apply the escalation ladder (one task for all items)."""
    result = apply_escalations(ctx.engine, ctx.config, day, last_run_day=last_day, dry_run=dry_run)
    counts = result.counts()
    run_logger().info(
        "ladder: %d candidates, new steps %s%s",
        result.candidates,
        counts or "none",
        " (dry run: not recorded)" if dry_run else "",
    )
    return {"candidates": result.candidates, "new_steps": counts}


@task(name="measure-daily", cache_policy=NO_CACHE)
def measure(
    ctx: LoopContext,
    day: date,
    since_day: date,
    recorded_since: datetime | None = None,
    previous_started: datetime | None = None,
) -> DailySnapshot:
    """The SQL aggregates behind the report."""
    return measure_daily(ctx.engine, ctx.config, day, since_day, recorded_since, previous_started)


@task(name="render-daily", cache_policy=NO_CACHE)
def render_daily(ctx: LoopContext, snap: DailySnapshot, dry_run: bool) -> RenderResult:
    """One notice per unit with something to report, and the office digest."""
    period = f"{snap.window.day:%Y-%m-%d}"
    contexts = unit_contexts(ctx.config, snap)
    jobs: list[NoticeJob] = [
        (c["unit"]["code"], "unit", "daily_unit", c, c["emails"]) for c in contexts.values()
    ]
    folder = ctx.archive_folder(LOOP, period, dry_run)
    workbook = write_ledger_entries(ctx.config, snap, folder)
    office = office_context(
        ctx.config, snap, units_reported=len(contexts), unreachable=unreachable(ctx, contexts),
        ledger_workbook=workbook.name if workbook else None,
    )  # fmt: skip
    jobs.append(("office", "digest", "daily_office", office, list(ctx.config.mail.office),
                 [workbook] if workbook else []))  # fmt: skip
    return render_all(ctx, LOOP, period, jobs, dry_run)


def unreachable(ctx: LoopContext, contexts: dict[int, dict[str, Any]]) -> list[str]:
    """The units with a notice today and no address it may go to: refused, and named in the
    office's digest of the same day."""
    domains = ctx.config.mail.allowed_domains
    return [
        c["unit"]["name"]
        for c in contexts.values()
        if not any(allowed(address, domains) for address in c["emails"])
    ]
