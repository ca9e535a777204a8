"""周分析 — the weekly analysis.

Every week: compare the week's tickets with the week before (by problem, category and
district), name the hot-spot streets and the streets that rose most, list the repeat
complaints, give the three rates of the city; draw the charts; send the supervision office
the full analysis and each problem's lead unit the analysis with its own problems first.
A re-run for the same week sends nothing new.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from duban.context import load_context
from duban.db.runs import finish_run, start_run
from duban.periods import parse_week
from duban.rules.schedule import previous_week
from duban.settings import get_settings
from tasks.deliver import deliver
from tasks.notify import notify_admins
from tasks.weekly import LOOP, draw_charts, measure, render_weekly


@flow(
    name="weekly-analysis",
    description="周分析: week-on-week trends, hot spots, repeats, rates",
    on_failure=[notify_admins],
)
def weekly_analysis(week: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Run the weekly analysis for the ISO week `week` ("2026-W45"; default: the week before
    today's in the city's time zone, as a scheduled Monday run wants).

    dry_run: render and archive the notices and charts under reports/dry-run without
    recording notices and without sending anything.
    """
    if week is None:
        week = previous_week(datetime.now(get_settings().zone).date())
    iso_week = parse_week(week)  # a bad value fails here, before anything is recorded
    logger = get_run_logger()
    ctx = load_context()
    period = iso_week.key
    run_id = start_run(ctx.engine, LOOP, period, {"week": period, "dry_run": dry_run}, dry_run)
    try:
        analysis = measure(ctx, iso_week)
        charts = draw_charts(ctx, analysis, dry_run)
        rendered = render_weekly(ctx, analysis, charts, dry_run)
        delivered = {"sent": 0, "pending": 0, "refused": 0} if dry_run else deliver(ctx, rendered)
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
            **{f"mail_{k}": v for k, v in delivered.items()},
        }
        logger.info("weekly analysis %s: %s", period, summary)
        finish_run(ctx.engine, run_id, "ok", summary)
        _artifact(summary)
        return summary
    except BaseException as exc:
        finish_run(ctx.engine, run_id, "failed", {"week": period, "error": type(exc).__name__})
        raise
    finally:
        ctx.engine.dispose()


def _artifact(summary: dict[str, Any]) -> None:
    lines = [f"# 周分析 weekly analysis {summary['week']}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in summary.items() if key != "week"]
    create_markdown_artifact(
        key="weekly-analysis",
        markdown="\n".join(lines),
        description=f"weekly analysis {summary['week']}",
    )
