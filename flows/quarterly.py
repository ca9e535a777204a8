"""季度抽查核验 — the quarterly spot check.

On the first working day of a quarter, for the quarter before: draw a sample of the items
reported done (tickets closed as resolved, plan tasks completed) — per unit and item kind,
by a secret-keyed, reproducible draw — record it once, send the supervision office the
quarter report with the inspectors' checklist attached and each unit concerned the list of
its own sampled items. The inspectors' verdicts come back with `duban import checks`; a
failed item is reopened and its unit escalated. A re-run for the same quarter draws nothing
new and sends nothing new. Definitions: docs/spot-check.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from duban.context import LoopContext, load_context
from duban.db.runs import finish_run, start_run
from duban.loops.quarterly.sample import LOOP, SampleDraw, results
from duban.periods import parse_quarter
from duban.rules.schedule import is_due, previous_quarter
from tasks.deliver import deliver
from tasks.notify import notify_admins
from tasks.quarterly import archive_folder, draw, render_quarterly, write_checklist

ARTIFACT_UNITS = 50


@flow(
    name="quarterly-spot-check",
    description="季度抽查核验: draw a sample of what was reported done, send the checklist",
    on_failure=[notify_admins],
)
def quarterly_spot_check(quarter: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Draw and announce the spot check of `quarter` ("YYYY-Qn").

    quarter: default — the quarter before today's in the city's time zone, as a scheduled
    run on the first working day of a quarter wants; on any other day such a run records a
    skipped run and exits (its cron fires on days 1-10 of January, April, July, October).
    dry_run: draw (or read the recorded sample), render and archive under reports/dry-run;
    record and send nothing.
    """
    ctx = load_context()
    today = datetime.now(ctx.settings.zone).date()
    if quarter is None:
        if not is_due(today, "first_working_day_of_quarter", ctx.config.calendar):
            return _skipped(ctx, previous_quarter(today), today)
        quarter = previous_quarter(today)
    try:
        period = parse_quarter(quarter)
        if period.end > today:
            raise ValueError(
                f"quarter {period.label} ends on {period.last_day}: it can be drawn from "
                f"{period.end} on (today is {today})"
            )
    except ValueError:
        ctx.engine.dispose()
        raise
    parameters = {"quarter": period.label, "dry_run": dry_run}
    run_id = start_run(ctx.engine, LOOP, period.label, parameters, dry_run)
    try:
        sample = draw(ctx, period, dry_run)
        workbook = write_checklist(ctx, period, sample, dry_run)
        rendered = render_quarterly(ctx, sample, workbook, dry_run)
        delivered = {"sent": 0, "pending": 0, "refused": 0} if dry_run else deliver(ctx, rendered)
        summary: dict[str, Any] = {
            "quarter": period.label,
            "dry_run": dry_run,
            "population": sample.population,
            "strata": len(sample.strata),
            "drawn": sample.drawn,
            "drawn_now": not sample.recorded_before,
            "recorded_now": sample.inserted,
            "fingerprint": sample.fingerprint,
            **{k: v for k, v in results(sample.items).items() if k != "drawn"},
            "units": len({s["unit_code"] for s in sample.strata if s["size"]}),
            "notices": len(rendered.notices),
            "notices_already_recorded": rendered.reused,
            "checklist": workbook.name if workbook else None,
            "archive": str(archive_folder(ctx, period, dry_run)),
            **{f"mail_{k}": v for k, v in delivered.items()},
        }
        get_run_logger().info("quarterly spot check %s: %s", period.label, summary)
        finish_run(ctx.engine, run_id, "ok", {**summary, "strata_drawn": sample.strata})
        _artifact(summary, sample)
        return summary
    except BaseException as exc:
        finish_run(
            ctx.engine, run_id, "failed", {"quarter": period.label, "error": type(exc).__name__}
        )
        raise
    finally:
        ctx.engine.dispose()


def _skipped(ctx: LoopContext, label: str, today: date) -> dict[str, Any]:
    """A scheduled run on a day that is not the first working day of the quarter."""
    summary = {"quarter": label, "skipped": f"{today} is not the first working day of a quarter"}
    try:
        run_id = start_run(ctx.engine, LOOP, label, {"quarter": None}, False)
        finish_run(ctx.engine, run_id, "skipped", summary)
    finally:
        ctx.engine.dispose()
    get_run_logger().info("%s: nothing to do today", summary["skipped"])
    return {**summary, "status": "skipped"}


def _artifact(summary: dict[str, Any], sample: SampleDraw) -> None:
    quarter = summary["quarter"]
    lines = [f"# 季度抽查核验 spot check {quarter}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in summary.items() if key != "quarter"]
    strata = [s for s in sample.strata if s["size"]]
    if strata:
        lines += ["", "## 各单位抽取数量 (per stratum)", ""]
        lines += ["| unit | kind | population | drawn | seed fingerprint |"]
        lines += ["|---|---|---:|---:|---|"]
        lines += [
            f"| {s['unit_code']} | {s['item_kind']} | {s['population']} | {s['size']} "
            f"| {str(s['seed'])[:16]} |"
            for s in strata[:ARTIFACT_UNITS]
        ]
        if len(strata) > ARTIFACT_UNITS:
            lines.append(f"| … {len(strata) - ARTIFACT_UNITS} more | | | | |")
    create_markdown_artifact(
        key=f"quarterly-spot-check-{quarter.lower()}",
        markdown="\n".join(lines),
        description=f"quarterly spot check {quarter}",
    )
