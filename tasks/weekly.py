"""Prefect tasks of the weekly analysis (周分析): measure, draw the charts, render, keep the
record (a re-run sends the week as it was first sent: duban/loops/weekly/record.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.weekly.charts import draw_weekly_charts
from duban.loops.weekly.record import is_published, keep_week
from duban.loops.weekly.report import (
    CHART_FILES,
    WeeklyAnalysis,
    lead_contexts,
    measure_weekly,
    office_context,
)
from duban.periods import IsoWeek
from tasks.log import run_logger
from tasks.render import RenderResult, render_all

LOOP = "weekly"


@task(name="measure-weekly", cache_policy=NO_CACHE)
def measure(ctx: LoopContext, week: IsoWeek) -> WeeklyAnalysis:
    analysis = measure_weekly(ctx.engine, ctx.config, week)
    run_logger().info(
        "week %s: %d tickets (last week %d), %d lead units",
        week.key, analysis.rates["tickets"], analysis.rates_last_week["tickets"],
        len(analysis.units),
    )  # fmt: skip
    return analysis


@task(name="draw-weekly-charts", cache_policy=NO_CACHE)
def draw_charts(ctx: LoopContext, analysis: WeeklyAnalysis, dry_run: bool) -> list[Path]:
    """The week's two charts; for a week already sent, none is drawn: its published charts
    are written back by `keep_record`."""
    folder = ctx.archive_folder(LOOP, analysis.week.key, dry_run)
    if not dry_run and is_published(ctx, LOOP, analysis.week.key):
        return [folder / name for name in CHART_FILES]
    return draw_weekly_charts(analysis, folder)


@task(name="render-weekly", cache_policy=NO_CACHE)
def render_weekly(
    ctx: LoopContext, analysis: WeeklyAnalysis, chart_files: list[Path], dry_run: bool
) -> RenderResult:
    """The full analysis for the office; the analysis with its own problems first for each
    lead unit. Each notice carries the charts."""
    jobs: list[tuple[Any, ...]] = [
        (code, "analysis", "weekly_lead", c, c["emails"], chart_files)
        for code, c in lead_contexts(ctx.config, analysis).items()
    ]
    office = office_context(ctx.config, analysis)
    jobs.append(
        ("office", "analysis", "weekly_office", office, list(ctx.config.mail.office), chart_files)
    )
    return render_all(ctx, LOOP, analysis.week.key, jobs, dry_run)


@task(name="keep-weekly-record", cache_policy=NO_CACHE)
def keep_record(
    ctx: LoopContext, analysis: WeeklyAnalysis, rendered: RenderResult
) -> dict[str, Any]:
    """The week's record: kept by the run that rendered it; a later run writes the published
    files back (its charts drawn again are replaced) and counts the figures changed since."""
    rendered_now = rendered.reused < len(rendered.notices)
    kept = keep_week(ctx, LOOP, analysis, rendered_now)
    run_logger().info("week %s: record %s", analysis.week.key, kept)
    return kept
