"""Prefect tasks of the monthly bulletin (月通报): measure, draw the charts, write the lead
units' ledger workbooks, render the drafts; and, once approved, deliver.

`approve_and_send` and `send_approved` are plain functions as well as the bodies of tasks:
`duban approve monthly` calls them without a flow run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.db import session_scope
from duban.loops.monthly.charts import PROBLEMS_CHART, SCORES_CHART, problem_bars, score_bars
from duban.loops.monthly.ledger import LedgerError, ledger_file_name, write_ledger_workbook
from duban.loops.monthly.report import (
    LOOP,
    MonthlySnapshot,
    measure_monthly,
    office_context,
    unit_context,
)
from duban.notices import approval
from duban.notices.mailer import make_mailer
from duban.notices.outbox import deliver_pending, enqueue
from duban.notices.render import archive_base
from duban.periods import MonthPeriod
from duban.rules.ranking import GROUP_ORDER
from tasks.deliver import message_for
from tasks.log import run_logger
from tasks.render import NoticeJob, RenderResult, render_all


def archive_folder(ctx: LoopContext, period: MonthPeriod, dry_run: bool) -> Path:
    """reports/monthly/<YYYY-MM>/ (under reports/dry-run/ in a dry run): the notices, charts
    and workbooks of the month sit side by side."""
    reports = ctx.settings.reports_dir / "dry-run" if dry_run else ctx.settings.reports_dir
    return archive_base(reports, LOOP, period.label, "office", "bulletin").parent


@task(name="measure-monthly", cache_policy=NO_CACHE)
def measure(ctx: LoopContext, period: MonthPeriod) -> MonthlySnapshot:
    snap = measure_monthly(ctx.engine, ctx.config, period)
    run_logger().info(
        "month %s: %d units ranked, %d named; %s; %d items on the ledger",
        period.label, len(snap.ranked_units), sum(r.named for r in snap.ranking),
        snap.headline_en, len(snap.ledger),
    )  # fmt: skip
    return snap


def draw_monthly_charts(snap: MonthlySnapshot, folder: Path) -> list[Path]:
    """monthly-problems.png (tickets per problem, this month against last) and
    monthly-scores.png (scores per peer group, the named lowest marked)."""
    volumes = snap.volumes
    label = snap.period.label
    problems = problem_bars(
        [str(c) for c in volumes["problem"]],
        [int(n) for n in volumes["this_month"]],
        [int(n) for n in volumes["last_month"]],
        folder / PROBLEMS_CHART,
        f"Tickets by problem, {label} vs previous month",
    )
    groups: dict[str, list[tuple[str, float, bool]]] = {}
    for r in snap.ranking:
        if r.rank is not None and r.score is not None:
            groups.setdefault(r.group, []).append((r.code, r.score, r.named))
    ordered = sorted(groups.items(), key=lambda g: (
        GROUP_ORDER.index(g[0]) if g[0] in GROUP_ORDER else len(GROUP_ORDER), g[0]))  # fmt: skip
    scores = score_bars(ordered, folder / SCORES_CHART, f"Unit scores {label}")
    return [problems, scores]


@task(name="draw-monthly-charts", cache_policy=NO_CACHE)
def draw_charts(ctx: LoopContext, snap: MonthlySnapshot, dry_run: bool) -> list[Path]:
    return draw_monthly_charts(snap, archive_folder(ctx, snap.period, dry_run))


@task(name="write-ledger-workbooks", cache_policy=NO_CACHE)
def write_workbooks(ctx: LoopContext, snap: MonthlySnapshot, dry_run: bool) -> dict[str, Path]:
    """The ledger workbook (台账) of each active lead unit, beside the notices."""
    folder = archive_folder(ctx, snap.period, dry_run)
    out: dict[str, Path] = {}
    for code in snap.lead_units:
        if not snap.recipients(code):
            continue  # inactive or no address: nobody to send it to
        path = folder / ledger_file_name(code, snap.period.as_of)
        try:
            out[code] = write_ledger_workbook(ctx.engine, ctx.config, code, snap.period.as_of, path)
        except LedgerError as exc:
            run_logger().warning("ledger workbook of %s not written: %s", code, exc)
    return out


@task(name="render-monthly", cache_policy=NO_CACHE)
def render_monthly(
    ctx: LoopContext,
    snap: MonthlySnapshot,
    charts: list[Path],
    workbooks: dict[str, Path],
    dry_run: bool,
) -> RenderResult:
    """The full bulletin for the office; the bulletin for each ranked unit and each lead unit
    (with its ledger workbook attached). Recorded as drafts: nothing is enqueued here."""
    names = [p.name for p in charts]
    office = office_context(ctx.config, snap, names)
    jobs: list[NoticeJob] = [
        ("office", "bulletin", "monthly_bulletin", {**office, **_shared(ctx, office)},
         list(ctx.config.mail.office), list(charts)),
    ]  # fmt: skip
    shared: dict[str, Any] | None = None  # the same for every unit: rendered once
    for code in sorted(set(snap.ranked_units) | set(snap.lead_units)):
        recipients = snap.recipients(code)
        if not recipients:
            continue
        workbook = workbooks.get(code)
        context = unit_context(ctx.config, snap, code, names, workbook.name if workbook else None)
        shared = shared or _shared(ctx, context)
        files = [*charts, *([workbook] if workbook else [])]
        jobs.append((code, "bulletin", "monthly_bulletin", {**context, **shared}, recipients,
                     files))  # fmt: skip
    return render_all(ctx, LOOP, snap.period.label, jobs, dry_run)


def _shared(ctx: LoopContext, context: dict[str, Any]) -> dict[str, Any]:
    """The rankings, volumes, plans, hot spots and ledger of the bulletin — everything but
    the greeting and the unit's own box — rendered once for an audience (office or units)
    and put into each of its notices (templates/mail/_monthly_shared.*.j2)."""
    from markupsafe import Markup

    html = ctx.templates.get_template("mail/_monthly_shared.html.j2").render(**context)
    text = ctx.templates.get_template("mail/_monthly_shared.txt.j2").render(**context)
    return {"shared_html": Markup(html), "shared_text": text}


# ---------------------------------------------------------------- after approval


def send_approved(ctx: LoopContext, period: str) -> dict[str, Any]:
    """Enqueue one delivery per (approved notice, recipient) of the month — the outbox's key
    makes this idempotent — and send what is pending for those notices only."""
    notices = approval.approved_notices(ctx.engine, LOOP, period)
    if not notices:
        return {"sent": 0, "pending": 0, "refused": 0}
    with session_scope(ctx.engine) as session:
        for notice_id, audience in notices:
            recipients = approval.recipients_for(session, ctx.config, audience)
            enqueue(session, notice_id, recipients, ctx.config.mail)
    mailer = make_mailer(ctx.settings)
    try:
        report = deliver_pending(
            ctx.engine, mailer, message_for, ctx.config.mail,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            notice_ids=[notice_id for notice_id, _ in notices],
        )  # fmt: skip
    finally:
        mailer.close()
    logger = run_logger()
    logger.info(
        "monthly %s delivery: %d sent, %d still pending, %d refused",
        period, report.sent, report.failed, report.refused,
    )  # fmt: skip
    for delivery_id, recipient, error in report.errors[:20]:
        logger.warning("delivery %s to %s: %s", delivery_id, recipient, error)
    return {"sent": report.sent, "pending": report.failed, "refused": report.refused}


def approve_and_send(
    ctx: LoopContext, period: str, approver: str, *, via: str, comment: str = ""
) -> dict[str, Any]:
    """Approve the month's drafts (audit) and deliver every approved notice once."""
    approved = approval.approve(ctx.engine, LOOP, period, approver, via=via, comment=comment)
    run_logger().info(
        "monthly %s: %d notices approved by %s via %s", period, len(approved), approver, via
    )
    return {"approved": len(approved), **send_approved(ctx, period)}


@task(name="approve-and-deliver-monthly", cache_policy=NO_CACHE)
def approve_and_deliver(
    ctx: LoopContext, period: str, approver: str, via: str, comment: str = ""
) -> dict[str, Any]:
    return approve_and_send(ctx, period, approver, via=via, comment=comment)


@task(name="deliver-monthly", cache_policy=NO_CACHE)
def deliver_approved(ctx: LoopContext, period: str) -> dict[str, Any]:
    return send_approved(ctx, period)
