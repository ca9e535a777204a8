"""Prefect tasks of the look-back (回头看): coarse wrappers over duban.loops.lookback.findings."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.lookback import findings
from tasks.log import run_logger
from tasks.render import NoticeJob, RenderResult, render_all


@task(name="find-recurrences", cache_policy=NO_CACHE)
def find_recurrences(
    ctx: LoopContext, request: findings.LookbackRequest, run_id: int
) -> findings.LookbackSnapshot:
    """Check the request, find the recurred tickets in SQL and record them for the run."""
    snap = findings.measure_lookback(ctx.engine, request)
    recorded = findings.record_findings(ctx.engine, run_id, snap.findings)
    rate = "—" if snap.rate is None else f"{100 * snap.rate:.1f}%"
    run_logger().info(
        "look-back %s: %d closed, %d examined, %d recurred (%s); %d findings recorded",
        request.fingerprint(), snap.closed, snap.examined, snap.recurred, rate, recorded,
    )  # fmt: skip
    return snap


@task(name="reopen-recurred", cache_policy=NO_CACHE)
def reopen(
    ctx: LoopContext, request: findings.LookbackRequest, run_id: int
) -> findings.ReopenResult:
    """Reopen the recurred tickets once per request, with an audit record and a redo clock
    event (a fresh deadline and ladder round) each."""
    result = findings.reopen_recurred(ctx.engine, run_id, request.fingerprint(), ctx.config)
    log = run_logger()
    log.info(
        "reopened %d tickets (%d not reopened again: reopened before or no longer closed); "
        "%d redo events recorded",
        len(result.reopened), result.already, result.redone,
    )  # fmt: skip
    for line in result.redo_refused:
        log.warning("redo refused: %s", line)
    return result


@task(name="render-lookback", cache_policy=NO_CACHE)
def render_lookback(
    ctx: LoopContext, snap: findings.LookbackSnapshot, reopened: findings.ReopenResult | None
) -> RenderResult:
    """One notice per unit with recurred tickets (its own items), and the office's."""
    snap.reopened_ids = set(reopened.reopened) if reopened else set()
    prefix, text_limit = ctx.config.mail.subject_prefix, ctx.config.mail.max_citizen_text
    contexts = findings.unit_contexts(snap, prefix, text_limit)
    jobs: list[NoticeJob] = [
        (c["unit"]["code"], "unit", "lookback_unit", c, c["emails"]) for c in contexts.values()
    ]
    folder = ctx.archive_folder(findings.LOOP, snap.request.fingerprint(), False)
    workbook = findings.write_findings_workbook(snap, folder, text_limit)
    office = findings.office_context(
        snap, prefix, len(contexts), text_limit, workbook=workbook.name if workbook else None
    )
    jobs.append(("office", "findings", "lookback_office", office, list(ctx.config.mail.office),
                 [workbook] if workbook else []))  # fmt: skip
    return render_all(ctx, findings.LOOP, snap.request.fingerprint(), jobs, dry_run=False)


def summary_of(
    snap: findings.LookbackSnapshot, reopened: findings.ReopenResult | None
) -> dict[str, Any]:
    """The figures of a run, for its record, the artifact and the command line."""
    return {
        "closed": snap.closed,
        "examined": snap.examined,
        "recurred": snap.recurred,
        "recurrence_rate": None if snap.rate is None else round(snap.rate, 4),
        "reopened": len(reopened.reopened) if reopened else 0,
        "not_reopened_again": reopened.already if reopened else 0,
        "redo_events": reopened.redone if reopened else 0,  # a fresh deadline each
    }
