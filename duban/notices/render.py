"""Rendering notices from templates/mail/<name>.html.j2 and .txt.j2, and archiving them.

- HTML is autoescaped: citizen text can never inject markup or scripts.
- Undefined template variables are errors (StrictUndefined), and a broken template is
  reported with its file and line.
- Personal numbers are masked in the values before they reach a template (`masked`), and
  the `mask` filter is there for anything else.
- Every rendered notice is archived under DUBAN_REPORTS_DIR/<loop>/<period>/ and recorded
  once per (loop, period, audience, kind).
"""

from __future__ import annotations

import html
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    select_autoescape,
)
from markupsafe import Markup
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duban.db import insert_ignore
from duban.db.models import Notice
from duban.rules.masking import mask_personal_data


class TemplateProblem(ValueError):
    """A template is missing or broken; the message names the file and line."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def _collapse(html: str) -> str:
    """One line per block: mail libraries turn newlines in HTML into <br>."""
    return re.sub(r">\s*\n\s*", ">", html).replace("\n", " ")


UNFILLED = "（未填写）"


def shown(value: Any) -> Any:
    """What a template prints for `value` (the environment's finalize): a missing value
    (None) prints as nothing, never as the text ``None``; plain text is masked (ID and phone
    numbers, duban/rules/masking.py), whichever field it came from — an id, a category, an
    address — so no notice shows one unmasked. Markup (the templates' own HTML) is left as
    it is."""
    if value is None:
        return ""
    if type(value) is str:
        return mask_personal_data(value)
    return value


# A ticket without a deadline (due_at NULL: a source with `deadline: export_only`).
NO_DEADLINE = "无办理时限"


def filled(value: Any) -> Any:
    """The `filled` filter: a missing or empty value as （未填写）, where a label would
    otherwise stand alone (``内容：`` at the end of a line of a text notice)."""
    return UNFILLED if value is None or value == "" else value


def minute(value: Any) -> str:
    """`value` as "%Y-%m-%d %H:%M", from its fields: a pandas Timestamp's strftime costs
    ~70 µs, and a daily report prints ~30,000 of them."""
    if isinstance(value, datetime) and value.year >= 1000:
        return f"{value.year}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"
    return f"{value:%Y-%m-%d %H:%M}"


def make_environment(templates_dir: Path) -> Environment:
    if not templates_dir.is_dir():
        raise TemplateProblem(f"{templates_dir}: templates folder not found")
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=shown,
    )
    env.filters["mask"] = mask_personal_data
    env.filters["filled"] = filled
    env.filters["pct"] = lambda v: "—" if v is None or v != v else f"{100 * v:.1f}%"  # NaN too
    env.filters["dt"] = lambda v: "" if v is None else minute(v)
    env.filters["due"] = lambda v: NO_DEADLINE if v is None or v != v else minute(v)
    env.filters["d"] = lambda v: "" if v is None else f"{v:%Y-%m-%d}"
    # Python's html.escape (quotes as &#x27; / &quot;), for text that must read as it always has
    env.filters["html_escape"] = lambda v: Markup(html.escape(str(v)))
    return env


def render_notice(
    env: Environment, name: str, context: dict[str, Any], *, collapse: bool = True
) -> Rendered:
    """Render mail/<name>.html.j2, mail/<name>.txt.j2 and the subject block.

    collapse: put the HTML on one line per block (False: keep it exactly as rendered)."""
    parts: dict[str, str] = {}
    for kind in ("html", "txt"):
        template_name = f"mail/{name}.{kind}.j2"
        try:
            template = env.get_template(template_name)
            parts[kind] = template.render(**context)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                f"templates/{exc.name or template_name}: line {exc.lineno}: {exc.message}"
            ) from None
        except TemplateError as exc:
            raise TemplateProblem(f"templates/{template_name}: {exc}") from None
    first, _, text = parts["txt"].partition("\n")
    if not first.startswith("Subject: "):
        raise TemplateProblem(f"templates/mail/{name}.txt.j2: line 1 must be 'Subject: …'")
    return Rendered(
        subject=first.removeprefix("Subject: ").strip(),
        html=_collapse(parts["html"]) if collapse else parts["html"],
        text=text.lstrip("\n"),
    )


def masked(value: str | None) -> str:
    return mask_personal_data(value)


def archive_base(reports_dir: Path, loop: str, period: str, audience: str, kind: str) -> Path:
    """reports_dir/<loop>/<period>/<audience>-<kind> (suffixes .html and .txt added)."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{audience}-{kind}")
    return reports_dir / loop / period / safe


def archive_folder(reports_dir: Path, loop: str, period: str, dry_run: bool) -> Path:
    """The folder of a period's notices, reports_dir/<loop>/<period>/ (under
    reports_dir/dry-run/ in a dry run): its charts, workbooks and CSV files sit beside them."""
    reports = reports_dir / "dry-run" if dry_run else reports_dir
    return archive_base(reports, loop, period, "office", "notice").parent


def write_notice_files(
    reports_dir: Path, loop: str, period: str, audience: str, kind: str, rendered: Rendered
) -> Path:
    """Write the .html and .txt of a notice atomically; returns the .html path."""
    base = archive_base(reports_dir, loop, period, audience, kind)
    base.parent.mkdir(parents=True, exist_ok=True)
    html_path = base.parent / f"{base.name}.html"
    for path, body in (
        (html_path, rendered.html),
        (base.parent / f"{base.name}.txt", rendered.text),
    ):
        # A temp name of its own: two runs archiving the same notice at once (threads of one
        # process, or processes) must not rename each other's file away.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    return html_path


def existing_notices(session: Session, loop: str, period: str) -> dict[tuple[str, str], Notice]:
    rows = session.scalars(select(Notice).where(Notice.loop == loop, Notice.period == period))
    return {(n.audience, n.kind): n for n in rows}


@dataclass(frozen=True)
class Archived:
    """A notice's files, written: what `record_notices` records for it."""

    audience: str
    kind: str
    subject: str
    html_path: Path
    attachments: tuple[Path, ...] = ()


def archive_files(
    reports_dir: Path, loop: str, period: str, audience: str, kind: str, rendered: Rendered,
    attachments: Sequence[Path] = (),
) -> Archived:  # fmt: skip
    """Write a notice's .html and .txt where `record_notices` will record them."""
    html_path = write_notice_files(reports_dir, loop, period, audience, kind, rendered)
    return Archived(audience, kind, rendered.subject, html_path, tuple(attachments))


def record_notices(
    session: Session, loop: str, period: str, archived: Sequence[Archived]
) -> dict[tuple[str, str], Notice]:
    """Record the archived notices of (loop, period) in one multi-row INSERT … ON CONFLICT DO
    NOTHING, and return every notice of the period by (audience, kind): a notice a parallel
    run recorded first keeps its record (ours is dropped: its files are an identical render
    of the same period)."""
    now = datetime.now()
    rows = [
        {
            "loop": loop, "period": period, "audience": a.audience, "kind": a.kind,
            "subject": a.subject, "html_path": str(a.html_path),
            "text_path": str(a.html_path.with_suffix(".txt")), "created_at": now,
            "attachments": [str(path) for path in a.attachments],
        }
        for a in archived
    ]  # fmt: skip
    table = Notice.__table__
    assert isinstance(table, Table)
    insert_ignore(session.connection(), table, rows, ["loop", "period", "audience", "kind"])
    session.expire_all()
    return existing_notices(session, loop, period)


def archive_notice(
    session: Session,
    reports_dir: Path,
    *,
    loop: str,
    period: str,
    audience: str,
    kind: str,
    rendered: Rendered,
    attachments: Sequence[Path] = (),
) -> Notice:
    """Archive and record a notice once per (loop, period, audience, kind).

    `attachments`: files already archived beside the notice that go with it (a PNG shown by
    the HTML as <img src="NAME.png"> is sent inline; anything else as an attachment).

    If a parallel run recorded the same notice first, its record is returned and ours is
    dropped (the files are identical renders of the same period).
    """
    key = (
        Notice.loop == loop,
        Notice.period == period,
        Notice.audience == audience,
        Notice.kind == kind,
    )
    existing = session.scalar(select(Notice).where(*key))
    if existing is not None:
        return existing
    html_path = write_notice_files(reports_dir, loop, period, audience, kind, rendered)
    notice = Notice(
        loop=loop,
        period=period,
        audience=audience,
        kind=kind,
        subject=rendered.subject,
        html_path=str(html_path),
        text_path=str(html_path.with_suffix(".txt")),
        created_at=datetime.now(),
        attachments=[str(path) for path in attachments],
    )
    try:
        with session.begin_nested():
            session.add(notice)
    except IntegrityError:
        return session.scalars(select(Notice).where(*key)).one()
    return notice
