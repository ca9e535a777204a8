"""Rendering for every loop's tasks: render, archive and record a loop's notices once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duban.context import LoopContext
from duban.db import session_scope
from duban.notices.render import (
    Archived,
    archive_files,
    existing_notices,
    record_notices,
    render_notice,
    write_notice_files,
)
from tasks.log import run_logger


@dataclass
class PlannedNotice:
    audience: str
    kind: str
    subject: str
    recipients: list[str]
    html_path: str
    notice_id: int | None = None  # None in a dry run: nothing is recorded
    attachments: list[str] = field(default_factory=list)


@dataclass
class RenderResult:
    notices: list[PlannedNotice] = field(default_factory=list)
    reused: int = 0  # notices of this period already recorded by an earlier run

    @property
    def folder(self) -> str:
        return str(self.notices[0].html_path).rsplit("/", 1)[0] if self.notices else ""


# One notice to render: (audience, kind, template, context, recipients[, attachments]), where
# attachments are files already archived beside the notice (list[Path]).
NoticeJob = tuple[Any, ...]


def render_all(
    ctx: LoopContext,
    loop: str,
    period: str,
    jobs: Sequence[NoticeJob],
    dry_run: bool,
) -> RenderResult:
    """Render, archive and record each job's notice once per (loop, period, audience, kind);
    a notice recorded by an earlier run of the same period is reused, not rendered again.
    A dry run writes under reports/dry-run and records nothing."""
    result = RenderResult()
    reports = ctx.settings.reports_dir
    with session_scope(ctx.engine) as session:
        known = {} if dry_run else existing_notices(session, loop, period)
        archived: list[Archived] = []
        for job in jobs:
            audience, kind, template, context, recipients = job[:5]
            files: list[Path] = [Path(f) for f in job[5]] if len(job) > 5 else []
            if (audience, kind) in known:
                result.reused += 1
                continue
            rendered = render_notice(ctx.templates, template, context)
            if dry_run:
                path = write_notice_files(
                    reports / "dry-run", loop, period, audience, kind, rendered
                )
                result.notices.append(
                    PlannedNotice(audience, kind, rendered.subject, recipients, str(path),
                                  attachments=[str(f) for f in files])
                )  # fmt: skip
                continue
            archived.append(archive_files(reports, loop, period, audience, kind, rendered, files))
        if dry_run:
            return _logged(result, loop, period, dry_run)
        # One INSERT for the period's new notices (not a SELECT and a SAVEPOINT each).
        if archived:
            known = record_notices(session, loop, period, archived)
        for job in jobs:
            notice = known[(job[0], job[1])]
            result.notices.append(
                PlannedNotice(
                    notice.audience, notice.kind, notice.subject, job[4], notice.html_path,
                    notice.id, attachments=list(notice.attachments or []),
                )
            )  # fmt: skip
    return _logged(result, loop, period, dry_run)


def _logged(result: RenderResult, loop: str, period: str, dry_run: bool) -> RenderResult:
    run_logger().info(
        "%s %s: %d notices (%d already recorded)%s",
        loop, period, len(result.notices), result.reused, " — dry run" if dry_run else "",
    )  # fmt: skip
    return result
