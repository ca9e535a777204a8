"""Prefect tasks of the weekly analysis (周分析): measure, draw the charts, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.weekly.charts import draw_weekly_charts
from duban.loops.weekly.report import (
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
    return draw_weekly_charts(analysis, ctx.archive_folder(LOOP, analysis.week.key, dry_run))


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
