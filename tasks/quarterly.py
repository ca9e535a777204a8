"""Prefect tasks of the quarterly spot check (季度抽查核验): coarse wrappers over
duban.loops.quarterly.sample and duban.loops.quarterly.checklist."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.db import session_scope
from duban.loops.quarterly.checklist import checklist_file_name, render_checklist_workbook
from duban.loops.quarterly.sample import (
    LOOP,
    SampleDraw,
    draw_sample,
    office_context,
    strata_file_name,
    unit_context,
    write_strata_workbook,
)
from duban.notices.render import existing_notices
from duban.periods import QuarterPeriod
from duban.queries.units import directory
from tasks.log import run_logger
from tasks.render import NoticeJob, RenderResult, render_all


@task(name="draw-spot-check-sample", cache_policy=NO_CACHE)
def draw(ctx: LoopContext, period: QuarterPeriod, dry_run: bool) -> SampleDraw:
    """Draw the quarter's sample and record it once; a re-run gets the recorded one."""
    spot = ctx.config.spot_check
    sample = draw_sample(ctx.engine, ctx.config, spot, period, dry_run=dry_run)
    run_logger().info(
        "spot check %s: population %d in %d strata; %d items %s (draw fingerprint %s)",
        period.label, sample.population, len(sample.strata), sample.drawn,
        "recorded by an earlier run" if sample.recorded_before else "drawn now",
        sample.fingerprint,
    )  # fmt: skip
    return sample


@task(name="write-checklist", cache_policy=NO_CACHE)
def write_checklist(
    ctx: LoopContext, period: QuarterPeriod, sample: SampleDraw, dry_run: bool
) -> Path | None:
    """The inspectors' checklist beside the notices; None when nothing was drawn. Once the
    office's report is recorded, the workbook sent with it is kept as it is."""
    if not sample.drawn:
        return None
    path = ctx.archive_folder(LOOP, period.label, dry_run) / checklist_file_name(period.label)
    if not dry_run and path.exists():
        with session_scope(ctx.engine) as session:
            if ("office", "report") in existing_notices(session, LOOP, period.label):
                return path
    spot = ctx.config.spot_check
    return render_checklist_workbook(
        sample.items, period, sample.fingerprint, spot.describe(), path
    )


@task(name="render-quarterly", cache_policy=NO_CACHE)
def render_quarterly(
    ctx: LoopContext, sample: SampleDraw, workbook: Path | None, dry_run: bool
) -> RenderResult:
    """The quarter report for the office (the checklist attached) and, for each active unit
    with sampled items, a notice listing its own items only."""
    spot = ctx.config.spot_check
    prefix = ctx.config.mail.subject_prefix
    with session_scope(ctx.engine) as session:
        units = {
            u.code: (u.name, list(u.emails or []), u.active)
            for u in directory(session.connection())
        }
    jobs: list[NoticeJob] = []
    codes = sorted(set(sample.items["unit_code"])) if sample.drawn else []
    for code in codes:
        _, emails, active = units[code]
        context = unit_context(sample, spot, prefix, code, ctx.config.mail.max_citizen_text)
        if context is None or not active:
            continue  # inactive; without an address: one refused delivery (mail_refused)
        jobs.append((code, "sample", "quarterly_unit", context, emails))
    names = {code: v[0] for code, v in units.items()}
    folder = ctx.archive_folder(LOOP, sample.quarter, dry_run)
    strata = write_strata_workbook(sample, names, folder / strata_file_name(sample.quarter))
    office = office_context(
        sample, spot, prefix, names, workbook.name if workbook else None,
        len(jobs), ctx.config.mail.max_citizen_text,
        strata_workbook=strata.name if strata else None,
    )  # fmt: skip
    files = [f for f in (workbook, strata) if f is not None]
    jobs.append(
        ("office", "report", "quarterly_office", office, list(ctx.config.mail.office), files)
    )
    return render_all(ctx, LOOP, sample.quarter, jobs, dry_run)
