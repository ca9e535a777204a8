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
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import MissingContextError

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
    "loop_run",
    "mail_keys",
    "md",
    "rows_table",
    "skipped",
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
    """A scheduled run on a day it has nothing to do: record a skipped run of `label`."""
    summary = {key: label, "skipped": reason}
    with loop_run(ctx, loop, key, label, {key: None}, False) as run:
        run.finish(summary, "skipped")
    get_run_logger().info("%s: nothing to do today", reason)
    return {**summary, "status": "skipped"}


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
    city. On a day that is not `run_on`, it records a skipped run and returns its result."""
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
    (without the keys in `skip`), the lines `after`. The title and the summary are escaped
    here; `before` and `after` are markdown the flow wrote with `md`, `table`, `rows_table`."""
    markdown = artifact_markdown(
        title, summary, skip=skip, header=header, before=before, after=after
    )
    create_markdown_artifact(key=key, markdown=markdown, description=md(description))


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
