"""A published notice is a record (记录): what it showed stays what it showed.

For a loop whose notices are approved before they go out (the monthly bulletin), each
**publication** of a (loop, period) is recorded: version 0 the bulletin, version n its n-th
correction (更正). A publication is written as a draft when its notices are rendered — with
every figure they show (`Figure`: unit, figure, label, value as printed; None = missing) —
and is **published** when its notices are approved: then its files (HTML, text, charts,
workbooks) are frozen in the database with their SHA-256.

- `reproduce` writes the frozen files back where they were archived (or into another
  folder): a re-run of a published period sends and shows what was published, byte for
  byte, never a render of today's data.
- `changes` compares the latest published figures with today's: what a correction lists.

docs/monthly-bulletin.md ("Records and corrections") tells the reader's side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.db.models import Publication, PublishedFigure, PublishedFile
from duban.queries import records as qr

__all__ = [
    "ALL_KINDS",
    "Change",
    "Figure",
    "Published",
    "Reproduced",
    "changes",
    "describe",
    "digest",
    "draft_version",
    "keep",
    "latest_published",
    "publish",
    "record_draft",
    "reproduce",
]


ALL_KINDS = "*"  # a publication of every notice of its (loop, period), whatever its kind


@dataclass(frozen=True)
class Figure:
    unit: str  # the unit code the figure is about, or "*" (city-wide)
    figure: str  # its name, e.g. "satisfaction_rate"
    label: str  # what a reader sees, e.g. "建国门街道 满意率"
    value: str | None  # as printed; None: missing (never zero)


@dataclass(frozen=True)
class Change:
    unit: str
    figure: str
    label: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Published:
    version: int
    published_at: datetime
    figures: list[Figure]


@dataclass(frozen=True)
class Reproduced:
    files: int  # frozen files of the period's publications
    restored: int  # of those, written back (missing or different on disk)


def record_draft(
    engine: Engine, loop: str, period: str, version: int, notice_kind: str,
    figures: Sequence[Figure], *, replace: bool = False,
) -> bool:  # fmt: skip
    """Record publication `version` of (loop, period) as a draft with its figures, once:
    False if it was recorded already (by an earlier or a parallel run). `replace`: a draft
    (never a published version) recorded earlier gets these figures instead — the drafts
    are being rendered again from the same measurement as `figures`."""
    with session_scope(engine) as session:
        rows = qr.publications(session.connection(), loop, period)
    earlier = next((r for r in rows if r.version == version), None)
    if earlier is not None:
        if not replace or earlier.published_at is not None:
            return False
        with session_scope(engine) as session:
            session.execute(
                delete(PublishedFigure).where(PublishedFigure.publication_id == earlier.id)
            )
            _insert_figures(session, earlier.id, figures)
        return True
    try:
        with session_scope(engine) as session:
            pub = Publication(
                loop=loop, period=period, version=version, notice_kind=notice_kind,
                created_at=datetime.now(),
            )  # fmt: skip
            session.add(pub)
            session.flush()
            _insert_figures(session, pub.id, figures)
    except IntegrityError:
        return False
    return True


def _insert_figures(session: Session, publication_id: int, figures: Sequence[Figure]) -> None:
    if figures:
        session.execute(
            insert(PublishedFigure),
            [{"publication_id": publication_id, "unit": f.unit, "figure": f.figure,
              "label": f.label[:300], "value": f.value} for f in figures],
        )  # fmt: skip


def draft_version(engine: Engine, loop: str, period: str) -> int | None:
    """The version of (loop, period) recorded but not published yet, if any."""
    with session_scope(engine) as session:
        rows = qr.publications(session.connection(), loop, period)
    drafts = [r.version for r in rows if r.published_at is None]
    return drafts[-1] if drafts else None


def latest_published(engine: Engine, loop: str, period: str) -> Published | None:
    """The latest published version of (loop, period) and its figures; None if none is."""
    with session_scope(engine) as session:
        conn = session.connection()
        rows = [r for r in qr.publications(conn, loop, period) if r.published_at is not None]
        if not rows:
            return None
        last = rows[-1]
        figures = [Figure(*row) for row in qr.figures(conn, last.id)]
    return Published(last.version, last.published_at, figures)


def publish(engine: Engine, loop: str, period: str, *, approved_only: bool = True) -> list[int]:
    """Publish each draft publication of (loop, period) whose notices are approved: freeze
    the files of those notices (bytes and SHA-256) and set `published_at`. Returns the
    versions published by this call (none when there was nothing to publish).
    approved_only=False: for a loop whose notices go out without approval (weekly, annual)."""
    published: list[int] = []
    with session_scope(engine) as session:
        conn = session.connection()
        for pub in qr.publications(conn, loop, period):
            if pub.published_at is not None:
                continue
            notices = qr.notices_of_kind(conn, loop, period, pub.notice_kind, approved_only)
            if not notices:
                continue  # its notices are still drafts
            done = session.execute(
                update(Publication)
                .where(Publication.id == pub.id, Publication.published_at.is_(None))
                .values(published_at=datetime.now())
                .returning(Publication.id)
            ).all()
            if not done:
                continue  # published by a parallel approval
            session.execute(insert(PublishedFile), _frozen(pub.id, notices))
            published.append(pub.version)
    return published


def _frozen(publication_id: int, notices: Sequence[object]) -> list[dict[str, object]]:
    rows: dict[str, dict[str, object]] = {}
    for notice in notices:
        paths = [notice.html_path, notice.text_path, *(notice.attachments or [])]  # type: ignore[attr-defined]
        for raw in paths:
            path = Path(raw)
            if path.name in rows:
                continue  # a chart shared by every notice is frozen once
            content = path.read_bytes()
            rows[path.name] = {
                "publication_id": publication_id, "notice_id": notice.id,  # type: ignore[attr-defined]
                "name": path.name, "path": str(path), "sha256": sha256(content),
                "size": len(content), "content": content,
            }  # fmt: skip
    return list(rows.values())


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def reproduce(engine: Engine, loop: str, period: str, folder: Path | None = None) -> Reproduced:
    """Write the frozen files of every published version of (loop, period) back where they
    were archived — or into `folder` (a dry run) — unless the file there already has the
    same bytes (SHA-256). Atomic per file."""
    with session_scope(engine) as session:
        conn = session.connection()
        ids = [r.id for r in qr.publications(conn, loop, period) if r.published_at is not None]
        frozen = qr.files(conn, ids) if ids else []
    restored = 0
    for row in frozen:
        target = folder / row.name if folder is not None else Path(row.path)
        if target.is_file() and sha256(target.read_bytes()) == row.sha256:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(row.content)
        tmp.replace(target)
        restored += 1
    return Reproduced(len(frozen), restored)


def keep(
    engine: Engine,
    loop: str,
    period: str,
    notice_kind: str,
    figures: Sequence[Figure],
    *,
    rendered_now: bool,
) -> dict[str, object]:
    """For a loop whose notices go out without approval (the weekly analysis, the annual
    summary), called after rendering and before delivery. The run that rendered the
    period's notices records them as published version 0 — these figures, the notices'
    files frozen. A later run writes the frozen files back (a re-run's charts, drawn again
    from today's data, are replaced by the published ones before anything is sent) and
    reports how many figures changed since. Returns the run summary's keys."""
    latest = latest_published(engine, loop, period)
    if latest is None:
        if not rendered_now:  # rendered before records were kept: nothing to freeze
            return {"record": "none (rendered before records were kept)"}
        record_draft(engine, loop, period, 0, notice_kind, figures, replace=True)
        publish(engine, loop, period, approved_only=False)
        return {"published_version": 0, "figures_recorded": len(figures)}
    copied = reproduce(engine, loop, period)
    found = changes(latest.figures, figures)
    out: dict[str, object] = {
        "published_version": latest.version,
        "files_reproduced": copied.files,
        "files_restored": copied.restored,
        "figures_changed": len(found),
    }
    if found:
        out["changed"] = describe(found)
    return out


def describe(found: Sequence[Change], limit: int = 20) -> str:
    """`label: old → new; …` for the first `limit` changes (a missing value as —)."""
    text = "; ".join(f"{c.label}: {_shown(c.old)} → {_shown(c.new)}" for c in list(found)[:limit])
    return text + ("; …" if len(found) > limit else "")


def _shown(value: str | None) -> str:
    return "—" if value is None else value


def changes(old: Sequence[Figure], new: Sequence[Figure]) -> list[Change]:
    """Every figure whose printed value differs between `old` and `new` (one missing on one
    side counts as changed: missing is not zero), in the order of `new`, then those only
    `old` has."""
    before = {(f.unit, f.figure): f for f in old}
    after = {(f.unit, f.figure): f for f in new}
    out = [
        Change(f.unit, f.figure, f.label, before[key].value if key in before else None, f.value)
        for key, f in after.items()
        if (before[key].value != f.value if key in before else f.value is not None)
    ]
    out += [
        Change(f.unit, f.figure, f.label, f.value, None)
        for key, f in before.items()
        if key not in after and f.value is not None
    ]
    return out


def digest(found: Sequence[Change]) -> str:
    """A short fingerprint of a set of changes (the key of the office's notice about it)."""
    text = "\n".join(f"{c.unit}\t{c.figure}\t{c.old}\t{c.new}" for c in found)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
