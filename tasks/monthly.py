"""Prefect tasks of the monthly bulletin (月通报): measure, draw the charts, write the lead
units' ledger workbooks, render the drafts; and, once approved, deliver.

After approval the tasks call duban/loops/monthly/approve.py, as `duban approve monthly`
does without a flow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.monthly import approve, record, report, sections
from duban.loops.monthly.charts import PROBLEMS_CHART, SCORES_CHART, problem_bars, score_bars
from duban.loops.monthly.ledger import LedgerError, ledger_file_name, write_ledger_workbook
from duban.rules.ranking import GROUP_NAMES, GROUP_ORDER
from tasks.log import run_logger
from tasks.render import NoticeJob, RenderResult, render_all


@task(name="measure-monthly", cache_policy=NO_CACHE)
def measure(ctx: LoopContext, period: report.MonthPeriod) -> report.MonthlySnapshot:
    snap = report.measure_monthly(ctx.engine, ctx.config, period)
    run_logger().info(
        "month %s: %d units ranked, %d named; %s; %d items on the ledger",
        period.label, len(snap.ranked_units), sum(r.named for r in snap.ranking),
        snap.headline_en, len(snap.ledger),
    )  # fmt: skip
    return snap


def draw_monthly_charts(snap: report.MonthlySnapshot, folder: Path) -> list[Path]:
    """monthly-problems.png (tickets per problem, this month against last) and
    monthly-scores.png (scores per peer group, the named lowest marked)."""
    volumes = snap.volumes
    label = snap.period.label
    problems = problem_bars(
        [str(n) for n in volumes["problem_name"]],
        [int(n) for n in volumes["this_month"]],
        [int(n) for n in volumes["last_month"]],
        folder / PROBLEMS_CHART,
        f"各问题诉求量：{label} 与上月",
    )
    groups: dict[str, list[tuple[str, float, bool]]] = {}
    for r in snap.ranking:
        if r.rank is not None and r.score is not None:
            groups.setdefault(r.group, []).append((r.name, r.score, r.named))
    ordered = sorted(groups.items(), key=lambda g: (
        GROUP_ORDER.index(g[0]) if g[0] in GROUP_ORDER else len(GROUP_ORDER), g[0]))  # fmt: skip
    named = [(GROUP_NAMES.get(g, g), units) for g, units in ordered]
    scores = score_bars(named, folder / SCORES_CHART, f"{label} 综合得分")
    return [problems, scores]


@task(name="draw-monthly-charts", cache_policy=NO_CACHE)
def draw_charts(ctx: LoopContext, snap: report.MonthlySnapshot, dry_run: bool) -> list[Path]:
    return draw_monthly_charts(snap, ctx.archive_folder(report.LOOP, snap.period.label, dry_run))


@task(name="write-ledger-workbooks", cache_policy=NO_CACHE)
def write_workbooks(
    ctx: LoopContext, snap: report.MonthlySnapshot, dry_run: bool
) -> dict[str, Path]:
    """The ledger workbook (台账) of each active lead unit, beside the notices."""
    folder = ctx.archive_folder(report.LOOP, snap.period.label, dry_run)
    out: dict[str, Path] = {}
    names = {code: str(snap.units.get(code, {}).get("name") or code) for code in snap.lead_units}
    shared = {n for n in names.values() if list(names.values()).count(n) > 1}
    for code in snap.lead_units:
        if not snap.recipients(code):
            continue  # inactive or no address: nobody to send it to
        name = names[code]
        path = folder / ledger_file_name(name, snap.period.as_of, code if name in shared else None)
        try:
            out[code] = write_ledger_workbook(ctx.engine, ctx.config, code, snap.period.as_of, path)
        except LedgerError as exc:
            run_logger().warning("ledger workbook of %s not written: %s", code, exc)
    return out


@task(name="render-monthly", cache_policy=NO_CACHE)
def render_monthly(
    ctx: LoopContext,
    snap: report.MonthlySnapshot,
    charts: list[Path],
    workbooks: dict[str, Path],
    dry_run: bool,
) -> RenderResult:
    """The whole bulletin for the office; for each ranked unit and each lead unit its own
    bulletin (its section, its peer group, the city's part; a lead unit's ledger workbook
    attached). Recorded as drafts: nothing is enqueued here."""
    names = [p.name for p in charts]
    office = report.office_context(ctx.config, snap, names)
    jobs: list[NoticeJob] = [
        ("office", "bulletin", "monthly_bulletin", {**office, **_shared(ctx, office)},
         list(ctx.config.mail.office), list(charts)),
    ]  # fmt: skip
    # No chart in a unit's notice: the two are as large as the rest of it (~160 KB at
    # Beijing's size) and the scores chart is every group's ranking
    parts = sections.split(ctx.config, snap, [])
    city: dict[str, Any] | None = None  # the same for every unit: rendered once
    peers: dict[str | None, dict[str, Any]] = {}  # one per peer group: rendered once
    for code in sorted(set(snap.ranked_units) | set(snap.lead_units)):
        if not snap.active(code):
            continue  # inactive; an active unit without an address: one refused delivery
        recipients = snap.recipients(code)
        workbook = workbooks.get(code)
        context = sections.unit_context(snap, parts, code, workbook.name if workbook else None)
        city = city or _city(ctx, context)
        key = parts.group_of.get(code)
        if key not in peers:
            peers[key] = _peers(ctx, context)
        files = [workbook] if workbook else []
        jobs.append((code, "bulletin", "monthly_bulletin", {**context, **city, **peers[key]},
                     recipients, files))  # fmt: skip
    return render_all(ctx, report.LOOP, snap.period.label, jobs, dry_run)


@task(name="record-monthly-figures", cache_policy=NO_CACHE)
def record_figures(ctx: LoopContext, snap: report.MonthlySnapshot) -> bool:
    """The figures the drafts show, recorded as the month's version 0 (a bulletin is a
    record: duban/loops/monthly/record.py)."""
    office = report.office_context(ctx.config, snap, [])
    return record.record_bulletin(ctx, office, snap.period)


@task(name="check-published-monthly", cache_policy=NO_CACHE)
def check_published(
    ctx: LoopContext, period: report.MonthPeriod, correct: bool, dry_run: bool
) -> record.CheckResult | None:
    """A published month: reproduce its files, compare its figures with today's, tell the
    office once of a change; `correct`: draft a correction (更正)."""
    return record.check_published(
        ctx, period, correct=correct, dry_run=dry_run, logger=run_logger()
    )


def _part(ctx: LoopContext, name: str, context: dict[str, Any]) -> tuple[Any, str]:
    """templates/mail/<name>.html.j2 and .txt.j2 rendered with `context`."""
    from markupsafe import Markup

    html = ctx.templates.get_template(f"mail/{name}.html.j2").render(**context)
    text = ctx.templates.get_template(f"mail/{name}.txt.j2").render(**context)
    return Markup(html), text


def _shared(ctx: LoopContext, office: dict[str, Any]) -> dict[str, Any]:
    """The office's whole bulletin after its greeting — every peer group, the city's part
    with the item lists (templates/mail/_monthly_shared.*.j2)."""
    html, text = _part(ctx, "_monthly_shared", office)
    return {"shared_html": html, "shared_text": text}


def _city(ctx: LoopContext, context: dict[str, Any]) -> dict[str, Any]:
    """The city's part of a unit's bulletin, the same for every unit: rendered once
    (templates/mail/_monthly_city.*.j2)."""
    html, text = _part(ctx, "_monthly_city", context)
    return {"city_html": html, "city_text": text}


def _peers(ctx: LoopContext, context: dict[str, Any]) -> dict[str, Any]:
    """A unit's peer group, the same for every unit of the group: rendered once per group
    (templates/mail/_monthly_peers.*.j2); nothing for a unit in no group."""
    if context["group"] is None:
        return {"peers_html": "", "peers_text": ""}
    html, text = _part(ctx, "_monthly_peers", context)
    return {"peers_html": html, "peers_text": text}


# ---------------------------------------------------------------- after approval


@task(name="approve-and-deliver-monthly", cache_policy=NO_CACHE)
def approve_and_deliver(
    ctx: LoopContext, period: str, approver: str, via: str, comment: str = ""
) -> dict[str, Any]:
    return approve.approve_and_send(
        ctx, period, approver, via=via, comment=comment, logger=run_logger()
    )


@task(name="deliver-monthly", cache_policy=NO_CACHE)
def deliver_approved(ctx: LoopContext, period: str) -> dict[str, Any]:
    return approve.send_approved(ctx, period, logger=run_logger())
