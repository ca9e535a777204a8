"""日报告 — the daily report.

Every working day: climb the escalation ladder for what is late, then tell each unit what
it owes (its new tickets, open items by colour, items due soon, overdue items with their
escalation step, plan tasks due this month) and give the supervision office the city
digest. Runs that were missed are caught up; a re-run for the same day sends nothing new.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from duban.context import load_context
from duban.db.runs import first_started, last_completed_day
from duban.rules.ladder import catch_up_days, is_send_day
from duban.rules.warnings import working_day_on_or_before
from flows.bracket import NOTHING_SENT, artifact, loop_run, mail_keys, skipped_state
from flows.parameters import Day, DryRun
from tasks.clock import refresh_clock
from tasks.daily import escalate, measure, render_daily
from tasks.deliver import deliver
from tasks.notify import notify_admins

LOOP = "daily"


@flow(
    name="daily-report",
    description="日报告: escalate what is late; tell each unit what it owes",
    on_failure=[notify_admins],
)
def daily_report(day: Day = None, dry_run: DryRun = False) -> dict[str, Any]:
    """Run the daily report for `day` (default: today in the city's time zone).

    dry_run: render and archive the notices under reports/dry-run without recording
    escalations or notices and without sending anything.
    """
    ctx = load_context()
    day = day or ctx.today()
    calendar = ctx.config.calendar
    period = f"{day:%Y-%m-%d}"
    with loop_run(ctx, LOOP, "day", period, {"day": period, "dry_run": dry_run}, dry_run) as run:
        if not is_send_day(day, ctx.config.escalation.send_on_non_working_days, calendar):
            get_run_logger().info(
                "%s is not a working day: nothing is sent; the next working day catches up", period
            )
            summary: dict[str, Any] = {"day": period, "skipped": "not a working day"}
            _artifact(run.finish(summary, "skipped"))
            return skipped_state(summary, f"{period} is not a working day")

        last_day = last_completed_day(ctx.engine, LOOP, day)
        since_day = last_day or working_day_on_or_before(day - timedelta(days=1), calendar)
        started = first_started(ctx.engine, LOOP, period) or datetime.now()
        refresh_clock(ctx, day, last_day, dry_run)  # the effective clock first (docs/clock.md)
        escalated = escalate(ctx, day, last_day, dry_run)
        previous = first_started(ctx.engine, LOOP, f"{last_day:%Y-%m-%d}") if last_day else None
        snapshot = measure(ctx, day, since_day, recorded_since=started, previous_started=previous)
        # Working days strictly between the previous report and this one: missed runs.
        snapshot.catch_up_days = [d for d in catch_up_days(since_day, day, calendar) if d != day]
        rendered = render_daily(ctx, snapshot, dry_run)
        delivered = NOTHING_SENT if dry_run else deliver(ctx, rendered)
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
            **mail_keys(delivered),
        }
        return _artifact(run.finish(summary))


def _artifact(summary: dict[str, Any]) -> dict[str, Any]:
    day = summary["day"]
    artifact(
        "daily-report", f"日报告 daily report {day}", f"daily report {day}", summary, skip=("day",)
    )
    return summary
