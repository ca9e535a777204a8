"""月通报 — the monthly bulletin, sent only after approval.

Once a month: rank the units within their peer groups and name the lowest, report how the
volume of each problem moved, how the plans and policies progress, which streets to
re-check and which overdue items are still on the city ledger. The office and every unit
concerned get the bulletin; each lead unit also gets its ledger workbook (台账).

The bulletin is held as a **draft** until someone approves it (docs/monthly-bulletin.md):

- `wait_for_approval=True` (deployments): the flow run pauses and the Prefect UI shows the
  `BulletinApproval` form; approving sends, rejecting sends nothing.
- `wait_for_approval=False` (the command line, the default): the flow leaves the drafts and
  ends; `duban approve monthly YYYY-MM` approves and sends them — or, when a flow run of
  that month is paused waiting for approval, resumes it with the approval instead.

A re-run for the same month renders nothing new; approving twice sends nothing twice.

A bulletin is a record (duban/loops/monthly/record.py): once approved, a re-run of its month
writes the published files back byte for byte and never renders today's data; if a figure
has changed since, the run summary says so and the office is told (once per set of
changes); `correct=True` (`duban run monthly --month M --correct`) drafts a correction
(更正) listing every changed figure, old and new, approved like the bulletin.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from pydantic import Field

from duban.context import load_context
from duban.loops.monthly import approve
from duban.loops.monthly.report import LOOP, MonthlySnapshot
from duban.notices import approval
from duban.periods import parse_month
from duban.rules.ranking import GROUP_NAMES, RATE_NAMES
from duban.rules.schedule import previous_month
from flows.bracket import (
    LoopRun,
    artifact,
    disposed_on_error,
    due_period,
    loop_run,
    mail_keys,
    md,
    skipped_state,
)
from flows.parameters import DryRun, Month, OptionalFlag, form
from tasks.monthly import (
    approve_and_deliver,
    check_published,
    deliver_approved,
    draw_charts,
    measure,
    record_figures,
    render_monthly,
    write_workbooks,
)
from tasks.notify import notify_admins

FLOW_NAME = "monthly-bulletin"


APPROVE = "批准 approve"
REJECT = "退回 reject"


class BulletinApproval(RunInput):
    """The approval form of a paused monthly bulletin (shown by the Prefect UI): the decision
    is an explicit choice with no default, so a form submitted with only a name fills in
    nothing by accident and is refused."""

    decision: Literal["批准 approve", "退回 reject"] = Field(
        title="决定 Decision",
        description="批准：发送全部通报草稿；退回：不发送，草稿保留待修改后重新生成。"
        "Approve: send every draft notice. Reject: send nothing.",
    )
    approver: str = Field(
        min_length=1, max_length=100, title="审批人 Approver", description="审批人姓名 (who)"
    )
    comment: str = Field(
        default="", max_length=400, title="意见 Comment", description="审批意见，记入审计 (audited)"
    )

    @property
    def approved(self) -> bool:
        return self.decision == APPROVE


WaitForApproval = Annotated[
    OptionalFlag,
    form(
        "等待审批 Wait for approval",
        "Pause this run until the approval form (Resume) is submitted. Default: on when run "
        "from a deployment, off on the command line (approve with `duban approve monthly`). "
        "暂停运行，等待审批表单；默认：部署运行时等待。",
    ),
]
ApprovalTimeoutHours = Annotated[
    float,
    form(
        "审批时限（小时） Approval timeout (hours)",
        "After this many hours without a decision the run ends and the drafts stay. "
        "超过时限未审批则结束运行，草稿保留。",
        exclusiveMinimum=0,
    ),
]
ApprovalPollSeconds = Annotated[
    int,
    form(
        "检查间隔（秒） Poll interval (seconds)",
        "How often the paused run checks for the decision. 暂停期间检查审批结果的间隔。",
        minimum=1,
    ),
]
Correct = Annotated[
    bool,
    form(
        "更正 Correct",
        "For a published month whose figures have changed since: draft a correction (更正) "
        "of every changed figure, held for approval like the bulletin. "
        "已发布月份数据变化时起草更正通报。",
    ),
]


@flow(
    name=FLOW_NAME,
    description="月通报: rank units, problem volumes, plans, ledger; held for approval, then sent",
    on_failure=[notify_admins],
)
def monthly_bulletin(
    month: Month = None,
    dry_run: DryRun = False,
    wait_for_approval: WaitForApproval = None,
    approval_timeout_hours: ApprovalTimeoutHours = 72.0,
    approval_poll_seconds: ApprovalPollSeconds = 10,
    correct: Correct = False,
) -> dict[str, Any]:
    """Render the bulletin of `month` ("YYYY-MM") as drafts, then wait for approval or not.

    month: default — the month before today's in the city's time zone, as a scheduled run on
    the first working day of a month wants; on any other day such a run records a skipped
    run and exits (its cron fires on days 1-10: see config/schedules.yaml).
    wait_for_approval: pause this flow run until the approval form is submitted (in the
    Prefect UI, or by `duban approve monthly`); False leaves the drafts for
    `duban approve monthly`. Default (None): True when the run belongs to a deployment,
    False otherwise (the command line). After `approval_timeout_hours` the run ends and
    the drafts stay.
    dry_run: render and archive under reports/dry-run; record and send nothing (a published
    month: its published files are written there, as they were published).
    correct: for a published month whose figures have changed since: draft a correction
    (更正) of every changed figure, held for approval like the bulletin.
    """
    logger = get_run_logger()
    ctx = load_context()
    if not month:
        due = due_period(ctx, LOOP, "month", "first_working_day_of_month", previous_month)
        if not isinstance(due, str):
            return due
        month = due
    if wait_for_approval is None:
        wait_for_approval = _in_deployment()
    with disposed_on_error(ctx):
        period = parse_month(month)
    parameters = {"month": period.label, "dry_run": dry_run, "wait_for_approval": wait_for_approval,
                  "correct": correct}  # fmt: skip
    with loop_run(ctx, LOOP, "month", period.label, parameters, dry_run) as run:
        summary: dict[str, Any] = {"month": period.label, "dry_run": dry_run}
        drafted: MonthlySnapshot | None = None  # the figures, when this run renders them
        before = approval.state(ctx.engine, LOOP, period.label)
        checked = check_published(ctx, period, correct, dry_run)
        if checked is not None:  # published: reproduced, compared, never rendered again
            summary |= {"notices_already_recorded": before.notices, **checked.summary()}
        elif dry_run or before.notices == 0:
            snap = measure(ctx, period)
            drafted = snap
            if not dry_run:
                record_figures(ctx, snap)
            charts = draw_charts(ctx, snap, dry_run)
            workbooks = write_workbooks(ctx, snap, dry_run)
            rendered = render_monthly(ctx, snap, charts, workbooks, dry_run)
            summary |= {
                "headline": snap.headline_en,
                "units_ranked": len(snap.ranked_units),
                "units_named": sum(r.named for r in snap.ranking),
                "ledger_items": len(snap.ledger),
                "notices": len(rendered.notices),
                "workbooks": len(workbooks),
            }
        else:
            logger.info("%s: the bulletin was rendered by an earlier run", period.label)
            summary["notices_already_recorded"] = before.notices
        if correct and checked is None:
            logger.warning("%s: nothing is published yet: nothing to correct", period.label)
        summary["archive"] = str(ctx.archive_folder(LOOP, period.label, dry_run))
        if dry_run:
            return _finish(run, summary, "dry-run")

        now = approval.state(ctx.engine, LOOP, period.label)
        if now.drafts == 0:  # approved earlier: only what is still pending goes out
            summary |= mail_keys(deliver_approved(ctx, period.label))
            return _finish(run, summary, "approved")
        if not wait_for_approval:
            logger.info(
                "%s: held as a draft; approve with `duban approve monthly %s`",
                period.label, period.label,
            )  # fmt: skip
            summary["drafts"] = now.drafts
            return _finish(run, summary, "draft")

        summary["drafts"] = now.drafts
        _artifact({**summary, "status": "waiting for approval"})
        draft_artifacts(period.label, Path(summary["archive"]), drafted)
        try:
            decision = pause_flow_run(
                wait_for_input=BulletinApproval,
                timeout=int(approval_timeout_hours * 3600),
                poll_interval=approval_poll_seconds,
                key=pause_key(period.label),
            )
        except FlowPauseTimeout:
            logger.warning(
                "%s: not approved within %s hours; the drafts stay: `duban approve monthly %s`",
                period.label, approval_timeout_hours, period.label,
            )  # fmt: skip
            return _finish(run, summary, "draft")
        via = f"prefect flow run {_flow_run_id()}"
        summary |= {"approver": decision.approver, "comment": decision.comment}
        if not decision.approved:
            approval.reject(
                ctx.engine, LOOP, period.label, decision.approver, via=via,
                comment=decision.comment,
            )  # fmt: skip
            logger.info("%s: rejected by %s; nothing sent", period.label, decision.approver)
            rejected = _finish(run, summary, "rejected")
            reason = f"rejected by {decision.approver}: nothing sent"
            return skipped_state(rejected, reason, name="Rejected")
        result = approve_and_deliver(ctx, period.label, decision.approver, via, decision.comment)
        summary |= {"approved": result.pop("approved"), **mail_keys(result)}
        return _finish(run, summary, "approved")


def _in_deployment() -> bool:
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def _flow_run_id() -> str:
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else "?"


def _finish(run: LoopRun, summary: dict[str, Any], status: str) -> dict[str, Any]:
    summary = run.finish({**summary, "status": status})
    _artifact(summary)
    return summary


def _artifact(summary: dict[str, Any]) -> None:
    month = summary["month"]
    status = summary.get("status")
    before: list[str] = []
    if status == "waiting for approval":
        before = [
            f"**Waiting for approval**: {md(summary.get('drafts', 0))} notices are held as "
            "drafts. Resume this run with the approval form, or run "
            f"`duban approve monthly {month} --by NAME`.",
            "",
        ]
    elif status == "draft":
        before = [f"**Held as a draft**: approve with `duban approve monthly {month}`.", ""]
    changed = md(summary.get("figures_changed", 0))
    if summary.get("correction") is not None and status in ("draft", "waiting for approval"):
        before += [f"**Correction {md(summary['correction'])}** (更正) of {changed} figures "
                   "is held for approval.", ""]  # fmt: skip
    elif summary.get("figures_changed", 0):
        before += [
            f"**{changed} published figures have changed since the bulletin was published** "
            "(the published files are reproduced as they were): issue a correction with "
            f"`duban run monthly --month {month} --correct`.",
            "",
        ]
    artifact(
        f"monthly-bulletin-{month}",
        f"月通报 monthly bulletin {month}",
        f"monthly bulletin {month}",
        summary,
        skip=("month",),
        before=before,
    )


# ---------------------------------------------------------------- what the approver sees

DRAFT_LINES = 80  # of the text draft, inline in the approval artifact


def draft_artifacts(month: str, archive: Path, snap: MonthlySnapshot | None) -> None:
    """What the approver of a paused run reads before deciding: the headline, the ranking
    and the named units as tables (Chinese columns), the draft bulletin's text inline (the
    archive is on the server's disk, so a file:// link only helps on that machine) and its
    path."""
    key = f"monthly-draft-{month}"
    html = archive / "office-bulletin.html"
    text = archive / "office-bulletin.txt"
    lines = [f"# 月通报草稿 draft bulletin {md(month)}", ""]
    if snap is not None:
        lines += [f"**{md(snap.headline)}**", "", md(snap.headline_en), ""]
    lines += [f"草稿存档 archive (on the server): {md(archive)}", "",
              f"HTML: {md(html)}", ""]  # fmt: skip
    if text.exists():
        body = text.read_text(encoding="utf-8").splitlines()
        more = len(body) - DRAFT_LINES
        # Inside a fence nothing is markup; only a fence of its own could end it.
        quoted = [line.replace("`", "'") for line in body[:DRAFT_LINES]]
        lines += ["## 通报正文（文本版）draft text", "", "```text", *quoted, "```"]
        if more > 0:
            lines += [f"（以下 {more} 行略，见存档 {text.name}）"]
    create_markdown_artifact(key=key, markdown="\n".join(lines),
                             description=f"月通报草稿 {month}: 审批前请阅")  # fmt: skip
    if html.exists():
        create_link_artifact(
            key=f"{key}-file", link=html.as_uri(), link_text=f"草稿 {html.name} (server-local)",
            description="the rendered draft on the server's disk",
        )  # fmt: skip
    if snap is None:
        return
    ranked = [r for r in snap.ranking if r.rank is not None]
    create_table_artifact(
        key=f"{key}-ranking",
        table=[_ranking_row(r) for r in ranked],
        description=f"月通报 {month} 排名（{len(ranked)} 个单位）",
    )
    named = [r for r in snap.ranking if r.named]
    create_table_artifact(
        key=f"{key}-named",
        table=[
            {**_ranking_row(r), "拖后腿指标": RATE_NAMES.get(r.drag or "", r.drag or ""),
             "该指标": _percent(r.drag_value), "组内平均": _percent(r.drag_mean)}
            for r in named
        ] or [{"说明": "本月无点名单位"}],
        description=f"月通报 {month} 点名单位（{len(named)} 个）",
    )  # fmt: skip


def _ranking_row(r: Any) -> dict[str, Any]:
    return {
        "组别": GROUP_NAMES.get(r.group, r.group),
        "排名": f"{r.rank}/{r.group_size}",
        "单位": r.name,
        "得分": "—" if r.score is None else f"{r.score:.1f}",
        "工单数": r.tickets,
        "点名": "是" if r.named else "",
    }


def _percent(value: float | None) -> str:
    return "—" if value is None or value != value else f"{100 * value:.1f}%"


# ---------------------------------------------------------------- approval from outside


def paused_flow_run(month: str) -> UUID | None:
    """The flow run of this month's bulletin that is paused waiting for approval, if any
    (the most recent one): by its pause key, or by its `month` parameter."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    label = parse_month(month).label
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=50,
        )
    for run in runs:
        # A scheduled run has no month parameter: its pause key names the month.
        key = run.state.state_details.pause_key if run.state else None
        if key == pause_key(label) or str((run.parameters or {}).get("month", "")) == label:
            return run.id
    return None


def pause_key(month: str) -> str:
    return f"approve-monthly-{month}"


def approve_monthly(
    month: str,
    approver: str,
    comment: str = "",
    approved: bool = True,
    wait_seconds: float = 60.0,
) -> dict[str, Any]:
    """Approve (or reject) the drafts of `month`: both ways converge.

    If a flow run of this month is paused waiting for approval, resume it with the decision
    (it approves, audits and delivers itself) and wait up to `wait_seconds` for it to do so;
    otherwise — or if the resumed run does not approve in time (its process died) — approve
    and deliver here (duban/loops/monthly/approve.py). Idempotent: approving again sends
    nothing twice.
    """
    period = parse_month(month)
    ctx = load_context()
    try:
        current = approve.rendered_state(ctx, period.label)
        choice = APPROVE if approved else REJECT
        decision = BulletinApproval(decision=choice, approver=approver, comment=comment)
        run_id = _paused_or_none(period.label) if current.drafts else None
        if run_id is not None:
            _resume(run_id, decision)
            if approve.decided(ctx, period.label, current, wait_seconds):
                return {"month": period.label, "resumed_flow_run": str(run_id),
                        "status": "approved" if approved else "rejected"}  # fmt: skip
        return approve.decide(ctx, period.label, approver, approved=approved, comment=comment)
    finally:
        ctx.engine.dispose()


def _paused_or_none(month: str) -> UUID | None:
    """The paused flow run of `month`, or None — also when the Prefect API cannot be asked
    (then approving here is the only way, and it is safe: both paths are idempotent)."""
    try:
        return paused_flow_run(month)
    except Exception as exc:
        logging.getLogger("duban").warning(
            "cannot look for a paused flow run of %s (%s); approving directly", month, exc
        )
        return None


def _resume(run_id: UUID, decision: BulletinApproval, attempts: int = 5) -> None:
    """Resume the paused run with the decision. Just after pausing, the run saves its form's
    schema; until then the server refuses the input: try again a few times."""
    for attempt in range(1, attempts + 1):
        try:
            resume_flow_run(run_id, run_input=decision.model_dump(mode="json"))
            return
        except RuntimeError:
            if attempt == attempts:
                raise
            time.sleep(1.0)
