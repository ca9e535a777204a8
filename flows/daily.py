"""日报告 — the daily report.

Every working day: climb the escalation ladder for what is late, then tell each unit what
it owes (its new tickets, open items by colour, items due soon, overdue items with their
escalation step, plan tasks due this month) and give the supervision office the city
digest. Runs that were missed are caught up; a re-run for the same day sends nothing new.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from duban.context import LoopContext, load_context
from duban.db.runs import finish_run, first_started, last_completed_day, start_run
from duban.rules.ladder import catch_up_days, is_send_day
from duban.rules.warnings import working_day_on_or_before
from tasks.deliver import deliver
from tasks.escalate import escalate
from tasks.measure import measure
from tasks.notify import notify_admins
from tasks.render import render_daily

LOOP = "daily"


def today_in_city(ctx: LoopContext) -> date:
    return datetime.now(ctx.settings.zone).date()


@flow(
    name="daily-report",
    description="日报告: escalate what is late; tell each unit what it owes",
    on_failure=[notify_admins],
)
def daily_report(day: date | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Run the daily report for `day` (default: today in the city's time zone).

    dry_run: render and archive the notices under reports/dry-run without recording
    escalations or notices and without sending anything.
    """
    logger = get_run_logger()
    ctx = load_context()
    day = day or today_in_city(ctx)
    calendar = ctx.config.calendar
    period = f"{day:%Y-%m-%d}"
    run_id = start_run(ctx.engine, LOOP, period, {"day": period, "dry_run": dry_run}, dry_run)
    try:
        if not is_send_day(day, ctx.config.escalation.send_on_non_working_days, calendar):
            summary: dict[str, Any] = {"day": period, "skipped": "not a working day"}
            logger.info(
                "%s is not a working day: nothing is sent; the next working day catches up", period
            )
            finish_run(ctx.engine, run_id, "skipped", summary)
            _artifact(summary)
            return summary

        last_day = last_completed_day(ctx.engine, LOOP, day)
        since_day = last_day or working_day_on_or_before(day - timedelta(days=1), calendar)
        started = first_started(ctx.engine, LOOP, period) or datetime.now()
        escalated = escalate(ctx, day, last_day, dry_run)
        snapshot = measure(ctx, day, since_day, recorded_since=started)
        # Working days strictly between the previous report and this one: missed runs.
        snapshot.catch_up_days = [d for d in catch_up_days(since_day, day, calendar) if d != day]
        rendered = render_daily(ctx, snapshot, dry_run)
        delivered = {"sent": 0, "pending": 0, "refused": 0} if dry_run else deliver(ctx, rendered)
        summary = {
            "day": period,
            "since": f"{since_day:%Y-%m-%d}",
            "dry_run": dry_run,
            "caught_up": [f"{d:%Y-%m-%d}" for d in snapshot.catch_up_days],
            "escalations": escalated["new_steps"],
            "units_reported": sum(1 for n in rendered.notices if n.kind == "unit"),
            "notices": len(rendered.notices),
            "notices_already_recorded": rendered.reused,
            "archive": rendered.folder,
            "red": int(snapshot.counts["red"].sum()) if len(snapshot.counts) else 0,
            **{f"mail_{k}": v for k, v in delivered.items()},
        }
        finish_run(ctx.engine, run_id, "ok", summary)
        _artifact(summary)
        return summary
    except BaseException as exc:
        finish_run(ctx.engine, run_id, "failed", {"day": period, "error": type(exc).__name__})
        raise
    finally:
        ctx.engine.dispose()


def _artifact(summary: dict[str, Any]) -> None:
    lines = [f"# 日报告 daily report {summary['day']}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in summary.items() if key != "day"]
    create_markdown_artifact(
        key="daily-report",
        markdown="\n".join(lines),
        description=f"daily report {summary['day']}",
    )
