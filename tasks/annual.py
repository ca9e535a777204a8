"""Prefect tasks of the year-end evaluation (年终绩效考评): measure and score, write the scores
CSV, render the annual summary and each unit's breakdown. Delivery is tasks.deliver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.db import session_scope
from duban.loops.annual.evaluation import (
    LOOP,
    SCORES_CSV,
    AnnualSnapshot,
    breakdown_units,
    measure_annual,
    summary_context,
    unit_context,
    write_scores_csv,
)
from duban.loops.annual.record import keep_year
from duban.notices.approval import recipients_for
from duban.queries.notices import recorded
from tasks.log import run_logger
from tasks.render import NoticeJob, PlannedNotice, RenderResult, render_all


@task(name="measure-annual", cache_policy=NO_CACHE)
def measure(ctx: LoopContext, year: int) -> AnnualSnapshot:
    snap = measure_annual(ctx.engine, ctx.config, year)
    run_logger().info(
        "year %s: %d units scored, %d ranked", year, len(snap.scores), len(snap.ranked)
    )
    return snap


@task(name="write-annual-scores", cache_policy=NO_CACHE)
def write_scores(ctx: LoopContext, snap: AnnualSnapshot, dry_run: bool) -> Path:
    """reports/annual/<year>/scores.csv (beside the notices): every unit's components, total
    and place."""
    return write_scores_csv(snap, ctx.archive_folder(LOOP, str(snap.year), dry_run) / SCORES_CSV)


def summary_recipients(ctx: LoopContext) -> list[str]:
    """The leadership (mail.yaml `leadership`) and the office, each address once."""
    mail = ctx.config.mail
    return list(dict.fromkeys([*mail.leadership, *mail.office]))


@task(name="render-annual", cache_policy=NO_CACHE)
def render_annual(
    ctx: LoopContext, snap: AnnualSnapshot, scores_csv: Path, dry_run: bool
) -> RenderResult:
    """The annual summary (with the scores CSV attached) and one breakdown per unit with a
    record (without an address: one refused delivery, counted)."""
    jobs: list[NoticeJob] = [
        ("office", "summary", "annual_summary",
         summary_context(ctx.config, snap, scores_csv.name), summary_recipients(ctx),
         [scores_csv]),
    ]  # fmt: skip
    for code in breakdown_units(snap):
        context = unit_context(ctx.config, snap, code)
        jobs.append((code, "breakdown", "annual_unit", context, snap.recipients(code)))
    return render_all(ctx, LOOP, snap.period, jobs, dry_run)


@task(name="keep-annual-record", cache_policy=NO_CACHE)
def keep_record(ctx: LoopContext, year: int, snap: AnnualSnapshot | None) -> dict[str, Any]:
    """The year's record: kept by the run that rendered it (`snap`); a later run writes the
    published files back and counts the figures changed since."""
    kept = keep_year(ctx, year, snap)
    run_logger().info("year %s: record %s", year, kept)
    return kept


@task(name="recorded-annual", cache_policy=NO_CACHE)
def recorded_notices(ctx: LoopContext, year: int) -> RenderResult:
    """The notices an earlier run of `year` recorded, with their recipients now: delivering
    them again enqueues only what is missing (the outbox is unique per notice and recipient)
    and sends only what is pending."""
    result = RenderResult()
    with session_scope(ctx.engine) as session:
        notices = recorded(session.connection(), LOOP, str(year))
        for n in notices:
            recipients = (
                summary_recipients(ctx) if n.audience == "office"
                else recipients_for(session, ctx.config, n.audience)
            )  # fmt: skip
            result.notices.append(
                PlannedNotice(n.audience, n.kind, n.subject, recipients, n.html_path, n.id,
                              list(n.attachments or []))
            )  # fmt: skip
        result.reused = len(result.notices)
    return result
