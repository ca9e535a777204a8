"""周分析 — the weekly analysis.

Every week: compare the week's tickets with the week before (by problem, category and
district), name the hot-spot streets and the streets that rose most, list the repeat
complaints, give the three rates of the city; draw the charts; send the supervision office
the full analysis and each problem's lead unit the analysis with its own problems first.
A re-run for the same week sends nothing new.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from duban.context import load_context, today_in_city
from duban.periods import parse_week
from duban.rules.schedule import previous_week
from flows.bracket import NOTHING_SENT, artifact, loop_run, mail_keys
from flows.parameters import DryRun, Week
from tasks.deliver import deliver
from tasks.notify import notify_admins
from tasks.weekly import LOOP, draw_charts, keep_record, measure, render_weekly


@flow(
    name="weekly-analysis",
    description="周分析: week-on-week trends, hot spots, repeats, rates",
    on_failure=[notify_admins],
)
def weekly_analysis(week: Week = None, dry_run: DryRun = False) -> dict[str, Any]:
    """Run the weekly analysis for the ISO week `week` ("2026-W45"; default: the week before
    today's in the city's time zone, as a scheduled Monday run wants).

    dry_run: render and archive the notices and charts under reports/dry-run without
    recording notices and without sending anything.
    """
    if not week:
        week = previous_week(today_in_city())
    iso_week = parse_week(week)  # a bad value fails here, before anything is recorded
    ctx = load_context()
    period = iso_week.key
    with loop_run(ctx, LOOP, "week", period, {"week": period, "dry_run": dry_run}, dry_run) as run:
        analysis = measure(ctx, iso_week)
        charts = draw_charts(ctx, analysis, dry_run)
        rendered = render_weekly(ctx, analysis, charts, dry_run)
        kept = {} if dry_run else keep_record(ctx, analysis, rendered)
        delivered = NOTHING_SENT if dry_run else deliver(ctx, rendered)
        summary: dict[str, Any] = {
            "week": period,
            "from": f"{iso_week.monday:%Y-%m-%d}",
            "to": f"{iso_week.sunday:%Y-%m-%d}",
            "dry_run": dry_run,
            "tickets": analysis.rates["tickets"],
            "tickets_last_week": analysis.rates_last_week["tickets"],
            "lead_units": sum(1 for n in rendered.notices if n.audience != "office"),
            "notices": len(rendered.notices),
            "notices_already_recorded": rendered.reused,
            "charts": len(charts),
            "archive": rendered.folder,
            **kept,
            **mail_keys(delivered),
        }
        get_run_logger().info("weekly analysis %s: %s", period, summary)
        run.finish(summary)
        artifact(
            "weekly-analysis",
            f"周分析 weekly analysis {period}",
            f"weekly analysis {period}",
            summary,
            skip=("week",),
        )
        return summary
