"""年终绩效考评 / 年总结 — the year-end evaluation and the annual summary.

Once a year, on the first working day of January, for the year before: score every unit
from the year's record — the three rates, the plans it leads or owns, failed spot checks,
escalations to the ledger, look-back recurrences, and a credit for the old, hard items it
finally closed — rank the units within their peer groups, write the scores CSV, send the
leadership and the office the summary (the CSV attached) and each unit its own breakdown.

A re-run for the same year renders nothing new and sends only what is still pending.
docs/evaluation.md describes every component.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from duban.context import load_context
from duban.loops.annual.evaluation import LOOP, AnnualSnapshot
from duban.notices import approval
from duban.periods import parse_year
from duban.rules.ranking import GROUP_NAMES
from duban.rules.schedule import previous_year
from flows.bracket import (
    artifact,
    disposed_on_error,
    due_period,
    loop_run,
    mail_keys,
    md,
    rows_table,
)
from flows.parameters import DryRun, Year
from tasks.annual import keep_record, measure, recorded_notices, render_annual, write_scores
from tasks.deliver import deliver
from tasks.notify import notify_admins

FLOW_NAME = "annual-evaluation"


@flow(
    name=FLOW_NAME,
    description="年终考评: score and rank every unit for the year; summary and breakdowns",
    on_failure=[notify_admins],
)
def annual_evaluation(year: Year = None, dry_run: DryRun = False) -> dict[str, Any]:
    """Evaluate `year` (e.g. 2026) and send the annual summary and the units' breakdowns.

    year: default — the year before today's in the city's time zone, as a scheduled run on
    the first working day of January wants; on any other day such a run records a skipped
    run and exits (its cron fires on January 1-10: see config/schedules.yaml).
    dry_run: render and archive under reports/dry-run; record and send nothing.
    """
    ctx = load_context()
    if not year:
        due = due_period(ctx, LOOP, "year", "first_working_day_of_year", previous_year)
        if not isinstance(due, str):
            return due
        year = int(due)
    with disposed_on_error(ctx):
        year = parse_year(year)
    period = str(year)
    with loop_run(ctx, LOOP, "year", period, {"year": year, "dry_run": dry_run}, dry_run) as run:
        summary: dict[str, Any] = {"year": period, "dry_run": dry_run}
        before = approval.state(ctx.engine, LOOP, period).notices
        if dry_run or before == 0:
            snap = measure(ctx, year)
            csv_path = write_scores(ctx, snap, dry_run)
            rendered = render_annual(ctx, snap, csv_path, dry_run)
            summary |= _figures(snap) | {"notices": len(rendered.notices),
                                         "scores_csv": str(csv_path)}  # fmt: skip
        else:
            get_run_logger().info("%s: the evaluation was rendered by an earlier run", period)
            summary["notices_already_recorded"] = before
            rendered = None
            snap = None
        summary["archive"] = str(ctx.archive_folder(LOOP, period, dry_run))
        if not dry_run:  # a bulletin is a record: kept, or written back before delivery
            summary |= keep_record(ctx, year, snap)
            summary |= mail_keys(deliver(ctx, rendered or recorded_notices(ctx, year)))
        status = "dry-run" if dry_run else "ok"
        run.finish({**summary, "status": status})
        _artifact(summary)
        return {**summary, "status": status}


def _figures(snap: AnnualSnapshot) -> dict[str, Any]:
    """For the run record and the artifact: the counts, each group's top and bottom units and
    every unit's total (the full breakdown is in scores.csv)."""
    groups: dict[str, dict[str, list[str]]] = {}
    for s in snap.ranked:
        g = groups.setdefault(s.group or "", {"top": [], "bottom": []})
        if s.top:
            g["top"].append(f"{s.code} {s.total:.2f}")
        if s.bottom:
            g["bottom"].append(f"{s.code} {s.total:.2f}")
    return {
        "units_scored": len(snap.scores),
        "units_ranked": len(snap.ranked),
        "groups": groups,
        "totals": {s.code: s.total for s in snap.scores},
    }


def _artifact(summary: dict[str, Any]) -> None:
    year = summary["year"]
    lines: list[str] = []
    for group, named in (summary.get("groups") or {}).items():
        lines += ["", f"## {md(GROUP_NAMES.get(group, group))}", ""]
        lines += [f"- 前列 top: {md(', '.join(named['top']) or '—')}"]
        lines += [f"- 靠后 bottom: {md(', '.join(named['bottom']) or '—')}"]
    totals = summary.get("totals") or {}
    if totals:
        lines += ["", "## 总分 totals", ""]
        lines += rows_table(
            ("unit", "total"),
            ((code, f"{total:.2f}") for code, total in sorted(totals.items())),
            right=("total",),
        )
    artifact(
        f"annual-evaluation-{year}",
        f"年终考评 annual evaluation {year}",
        f"annual evaluation {year}",
        summary,
        skip=("year", "groups", "totals"),
        after=lines,
    )
