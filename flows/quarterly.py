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

from typing import Any

from prefect import flow, get_run_logger

from duban.context import load_context
from duban.loops.quarterly.sample import LOOP, SampleDraw, results
from duban.periods import parse_quarter
from duban.rules.schedule import previous_quarter
from flows.bracket import (
    NOTHING_SENT,
    artifact,
    disposed_on_error,
    due_period,
    loop_run,
    mail_keys,
    rows_table,
)
from flows.parameters import DryRun, Quarter
from tasks.deliver import deliver
from tasks.notify import notify_admins
from tasks.quarterly import draw, render_quarterly, write_checklist

ARTIFACT_UNITS = 50


@flow(
    name="quarterly-spot-check",
    description="季度抽查核验: draw a sample of what was reported done, send the checklist",
    on_failure=[notify_admins],
)
def quarterly_spot_check(quarter: Quarter = None, dry_run: DryRun = False) -> dict[str, Any]:
    """Draw and announce the spot check of `quarter` ("YYYY-Qn").

    quarter: default — the quarter before today's in the city's time zone, as a scheduled
    run on the first working day of a quarter wants; on any other day such a run records a
    skipped run and exits (its cron fires on days 1-10 of January, April, July, October).
    dry_run: draw (or read the recorded sample), render and archive under reports/dry-run;
    record and send nothing.
    """
    ctx = load_context()
    today = ctx.today()
    if not quarter:
        due = due_period(ctx, LOOP, "quarter", "first_working_day_of_quarter", previous_quarter)
        if not isinstance(due, str):
            return due
        quarter = due
    with disposed_on_error(ctx):
        period = parse_quarter(quarter)
        if period.end > today:
            raise ValueError(
                f"quarter {period.label} ends on {period.last_day}: it can be drawn from "
                f"{period.end} on (today is {today})"
            )
    parameters = {"quarter": period.label, "dry_run": dry_run}
    with loop_run(ctx, LOOP, "quarter", period.label, parameters, dry_run) as run:
        sample = draw(ctx, period, dry_run)
        workbook = write_checklist(ctx, period, sample, dry_run)
        rendered = render_quarterly(ctx, sample, workbook, dry_run)
        delivered = NOTHING_SENT if dry_run else deliver(ctx, rendered)
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
            "archive": str(ctx.archive_folder(LOOP, period.label, dry_run)),
            **mail_keys(delivered),
        }
        get_run_logger().info("quarterly spot check %s: %s", period.label, summary)
        run.finish({**summary, "strata_drawn": sample.strata})
        _artifact(summary, sample)
        return summary


def _artifact(summary: dict[str, Any], sample: SampleDraw) -> None:
    quarter = summary["quarter"]
    lines: list[str] = []
    strata = [s for s in sample.strata if s["size"]]
    if strata:
        lines += ["", "## 各单位抽取数量 (per stratum)", ""]
        rows = [
            (s["unit_code"], s["item_kind"], s["population"], s["size"], str(s["seed"])[:16])
            for s in strata[:ARTIFACT_UNITS]
        ]
        if len(strata) > ARTIFACT_UNITS:
            rows.append((f"… {len(strata) - ARTIFACT_UNITS} more", "", "", "", ""))
        lines += rows_table(
            ("unit", "kind", "population", "drawn", "seed fingerprint"),
            rows,
            right=("population", "drawn"),
        )
    artifact(
        f"quarterly-spot-check-{quarter.lower()}",
        f"季度抽查核验 spot check {quarter}",
        f"quarterly spot check {quarter}",
        summary,
        skip=("quarter",),
        after=lines,
    )
