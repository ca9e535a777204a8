"""What every flow does around its steps, written once: the run record (`loop_run`), the
skipped run (`skipped`) and the run's Prefect artifact (`artifact`, its tables `table` and
`rows_table`, every value from data escaped by `md`).

    ctx = load_context()
    with loop_run(ctx, LOOP, "day", period, parameters, dry_run) as run:
        ...                                  # the steps: one task call each
        return run.finish(summary)           # the runs row: "ok" and its summary

A body that raises records the run as failed with {"<key>": period, "error": "<type>"}
and raises on; the engine is disposed in every case.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.exceptions import MissingContextError
from prefect.states import Completed, State

from duban.context import LoopContext
from duban.db.runs import finish_run, start_run
from duban.notices.recovery import recover
from duban.rules.schedule import RunOn, is_due

__all__ = [
    "NOTHING_SENT",
    "LoopRun",
    "artifact",
    "artifact_markdown",
    "disposed_on_error",
    "due_period",
    "figures_table",
    "loop_run",
    "mail_keys",
    "md",
    "rows_table",
    "skipped",
    "skipped_state",
    "table",
]

# The mail figures of a run that sends nothing (a dry run).
NOTHING_SENT: dict[str, int] = {"sent": 0, "pending": 0, "failed": 0, "refused": 0, "parked": 0}


@dataclass(frozen=True)
class LoopRun:
    """The runs row of one flow run, between start and finish."""

    ctx: LoopContext
    run_id: int

    def finish(self, summary: dict[str, Any], status: str = "ok") -> dict[str, Any]:
        """Record how the run ended (status "ok" or "skipped") and its summary; returns it."""
        finish_run(self.ctx.engine, self.run_id, status, summary)
        return summary


@contextmanager
def loop_run(
    ctx: LoopContext,
    loop: str,
    key: str,
    period: str,
    parameters: dict[str, Any],
    dry_run: bool,
) -> Iterator[LoopRun]:
    """Start the runs row of (`loop`, `period`); on any exception record it failed with
    {key: period, "error": the exception's type name} and raise on; dispose the engine."""
    try:
        _recover(ctx)
        run_id = start_run(ctx.engine, loop, period, parameters, dry_run)
        try:
            yield LoopRun(ctx, run_id)
        except BaseException as exc:
            finish_run(ctx.engine, run_id, "failed", {key: period, "error": type(exc).__name__})
            raise
    finally:
        ctx.engine.dispose()


def _recover(ctx: LoopContext) -> None:
    """What a killed run left behind (duban/notices/recovery.py); never stops this run."""
    try:
        logger: Any = get_run_logger()
    except MissingContextError:  # called outside a flow run (a test, a script)
        logger = logging.getLogger("duban.recovery")
    try:
        recover(ctx.engine, ctx.settings, ctx.config.mail, logger)
    except Exception as exc:
        logger.warning("could not recover abandoned runs: %s: %s", type(exc).__name__, exc)


@contextmanager
def disposed_on_error(ctx: LoopContext) -> Iterator[None]:
    """Before the run is recorded (checking its parameters): on an error, dispose the
    engine and raise on."""
    try:
        yield
    except BaseException:
        ctx.engine.dispose()
        raise


def skipped(ctx: LoopContext, loop: str, key: str, label: str, reason: str) -> dict[str, Any]:
    """A scheduled run on a day it has nothing to do: record a skipped run of `label`, leave
    an artifact that says why, and end the flow run "Skipped" (`skipped_state`)."""
    summary = {key: label, "skipped": reason}
    with loop_run(ctx, loop, key, label, {key: None}, False) as run:
        run.finish(summary, "skipped")
    get_run_logger().info("%s: nothing to do today", reason)
    artifact(
        f"{loop}-skipped",
        f"跳过 Skipped: {label}",
        f"{loop} {label}: skipped",
        {"reason": reason},
        before=[f"**Nothing to do** 今日无需运行: {md(reason)}.", ""],
    )
    return skipped_state({**summary, "status": "skipped"}, reason)


def skipped_state(result: dict[str, Any], reason: str, name: str = "Skipped") -> dict[str, Any]:
    """What a flow returns when it had nothing to do: a Completed state named "Skipped" with
    the reason as its message, so the Prefect UI does not show a green "Completed" for a run
    that did nothing. A caller of the flow gets `result` itself (Prefect unwraps a returned
    state to its data), hence the type; outside a flow run it is the state."""
    state: State[Any] = Completed(name=name, message=reason, data=result)
    return cast(dict[str, Any], state)


# What a skipped run says it is not (its summary's "skipped": "<today> is not the …").
_NOT_DUE = {
    "first_working_day_of_month": "first working day of the month",
    "first_working_day_of_quarter": "first working day of a quarter",
    "first_working_day_of_year": "first working day of the year",
}


def due_period(
    ctx: LoopContext, loop: str, key: str, run_on: RunOn, previous: Callable[[date], str]
) -> str | dict[str, Any]:
    """The period a scheduled run (given none) is due for: the one before today's in the
    city. On a day that is not `run_on`, it records a skipped run and returns what the flow
    returns (`skipped`): test with `isinstance(due, str)`."""
    today = ctx.today()
    if is_due(today, run_on, ctx.config.calendar):
        return previous(today)
    return skipped(ctx, loop, key, previous(today), f"{today} is not the {_NOT_DUE[run_on]}")


def mail_keys(delivered: Mapping[str, Any]) -> dict[str, Any]:
    """The delivery figures as a run's summary records them: mail_sent, mail_pending, ..."""
    return {f"mail_{k}": v for k, v in delivered.items()}


# ---------------------------------------------------------------- the artifact

# What markdown (CommonMark + GFM tables) gives a meaning to inside a line: emphasis, code,
# links and images ([x](javascript:…), ![x](…)), headings, table cells, strikethrough.
_MARKDOWN = re.compile(r"([\\`*_\[\]()#|!~])")


def md(value: Any) -> str:
    """`value` as plain text in a markdown artifact: on one line (every run of whitespace,
    newlines included, one space), markdown punctuation backslash-escaped, and `& < > " '` as
    HTML entities — so data (an imported id, a unit's name, citizen text) can neither add
    markup, a link, an image or HTML, nor break a table row. Every value from data that an
    artifact shows goes through here."""
    text = " ".join(("" if value is None else str(value)).split())
    return html.escape(_MARKDOWN.sub(r"\\\1", text), quote=True)


def table(rows: Mapping[str, Any], header: str = "| | |", skip: Collection[str] = ()) -> list[str]:
    """A two-column markdown table of `rows` (keys and values escaped), without the keys in
    `skip`; `header` is the caller's own markdown."""
    return [
        header,
        "|---|---|",
        *(f"| {md(k)} | {md(v)} |" for k, v in rows.items() if k not in skip),
    ]


def rows_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], right: Collection[str] = ()
) -> list[str]:
    """A markdown table: the header `columns` (the caller's words), one line per row with each
    cell escaped (`md`); the columns named in `right` right-aligned (figures)."""
    align = ["---:" if c in right else "---" for c in columns]
    lines = [f"| {' | '.join(columns)} |", f"|{'|'.join(align)}|"]
    return lines + [f"| {' | '.join(md(cell) for cell in row)} |" for row in rows]


# The Chinese names of a run's key figures (its summary's keys) in its table artifact.
FIGURE_NAMES: dict[str, str] = {
    "day": "日期", "week": "周次", "month": "月份", "quarter": "季度", "year": "年度",
    "from": "起", "to": "止", "since": "上次报告", "status": "状态", "skipped": "跳过原因",
    "reason": "原因", "dry_run": "试运行", "caught_up": "补报日期", "escalations": "新督办步骤",
    "units_reported": "报告单位数", "red": "红色预警", "tickets": "工单数",
    "tickets_last_week": "上周工单数", "lead_units": "主责单位数", "charts": "图表数",
    "headline": "要点", "units_ranked": "排名单位数", "units_named": "点名单位数",
    "units_scored": "考评单位数", "ledger_items": "挂账事项", "workbooks": "台账工作簿",
    "drafts": "待审批草稿", "approver": "审批人", "comment": "审批意见", "approved": "已批准",
    "figures_changed": "已变化数据", "correction": "更正", "population": "可抽总数",
    "strata": "分层数", "drawn": "抽取数", "drawn_now": "本次抽取", "recorded_now": "本次记录",
    "fingerprint": "抽样指纹", "units": "单位数", "checklist": "核验清单", "closed": "办结工单",
    "examined": "核查工单", "recurred": "复发工单", "recurrence_rate": "复发率",
    "reopened": "重新开启", "notices": "通报数", "notices_already_recorded": "已有通报",
    "archive": "存档", "scores_csv": "得分表", "mail_sent": "已发送邮件",
    "mail_pending": "待发送邮件", "mail_failed": "发送失败", "mail_refused": "拒发",
    "mail_parked": "搁置", "published_version": "发布版本", "figures_recorded": "记录数据项",
    "published_on": "发布日期", "resumed_flow_run": "恢复的运行",
}  # fmt: skip


def figures_table(summary: Mapping[str, Any], skip: Collection[str] = ()) -> list[dict[str, str]]:
    """The run's key figures as rows of a table artifact, named in Chinese (the summary's key
    beside it, as the run record and the command line name it)."""
    return [
        {"指标": FIGURE_NAMES.get(k, k), "键": k, "数值": _cell(v)}
        for k, v in summary.items()
        if k not in skip and not isinstance(v, dict)
    ]


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(map(str, value)) or "—"
    return "—" if value is None else str(value)


def artifact(
    key: str,
    title: str,
    description: str,
    summary: Mapping[str, Any],
    *,
    skip: Collection[str] = (),
    header: str = "| | |",
    before: Sequence[str] = (),
    after: Sequence[str] = (),
) -> None:
    """The run's markdown artifact: `# title`, the lines `before`, the summary as a table
    (without the keys in `skip`), the lines `after`; and its key figures as a table artifact
    in Chinese (`<key>-figures`). The title and the summary are escaped here; `before` and
    `after` are markdown the flow wrote with `md`, `table`, `rows_table`."""
    markdown = artifact_markdown(
        title, summary, skip=skip, header=header, before=before, after=after
    )
    create_markdown_artifact(key=key, markdown=markdown, description=md(description))
    create_table_artifact(
        key=f"{key}-figures",
        table=figures_table(summary, skip),
        description=md(f"{title} 关键数据"),
    )


def artifact_markdown(
    title: str,
    summary: Mapping[str, Any],
    *,
    skip: Collection[str] = (),
    header: str = "| | |",
    before: Sequence[str] = (),
    after: Sequence[str] = (),
) -> str:
    """The markdown of `artifact`."""
    lines = [f"# {md(title)}", "", *before, *table(summary, header, skip), *after]
    return "\n".join(lines)
