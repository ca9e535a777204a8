"""The SQL that reads the records of published notices (duban/notices/records.py): the
publications of a (loop, period), the figures each one showed, its frozen files."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from duban.db.models import Notice, Publication, PublishedFigure, PublishedFile

__all__ = ["figures", "files", "notices_of_kind", "publications"]


def publications(conn: Connection, loop: str, period: str) -> list[Row[Any]]:
    """The publications of (loop, period), by version: id, version, notice_kind,
    published_at (NULL while a draft)."""
    stmt = (
        select(Publication.id, Publication.version, Publication.notice_kind,
               Publication.published_at)
        .where(Publication.loop == loop, Publication.period == period)
        .order_by(Publication.version)
    )  # fmt: skip
    return list(conn.execute(stmt).all())


def figures(conn: Connection, publication_id: int) -> list[Row[Any]]:
    """The figures of a publication in the order they were recorded: unit, figure, label,
    value."""
    stmt = (
        select(PublishedFigure.unit, PublishedFigure.figure, PublishedFigure.label,
               PublishedFigure.value)
        .where(PublishedFigure.publication_id == publication_id)
        .order_by(PublishedFigure.id)
    )  # fmt: skip
    return list(conn.execute(stmt).all())


def files(conn: Connection, publication_ids: list[int]) -> list[Row[Any]]:
    """The frozen files of these publications, by id: publication_id, notice_id, name, path,
    sha256, size, content."""
    stmt = (
        select(PublishedFile.publication_id, PublishedFile.notice_id, PublishedFile.name,
               PublishedFile.path, PublishedFile.sha256, PublishedFile.size,
               PublishedFile.content)
        .where(PublishedFile.publication_id.in_(publication_ids))
        .order_by(PublishedFile.id)
    )  # fmt: skip
    return list(conn.execute(stmt).all())


def notices_of_kind(
    conn: Connection, loop: str, period: str, kind: str, approved_only: bool = True
) -> list[Row[Any]]:
    """The notices of (loop, period) of one kind ("*": of any kind) — only the approved ones
    unless `approved_only` is False — by id: id, html_path, text_path, attachments."""
    stmt = (
        select(Notice.id, Notice.html_path, Notice.text_path, Notice.attachments)
        .where(Notice.loop == loop, Notice.period == period)
        .order_by(Notice.id)
    )  # fmt: skip
    if kind != "*":
        stmt = stmt.where(Notice.kind == kind)
    if approved_only:
        stmt = stmt.where(Notice.approved_at.is_not(None))
    return list(conn.execute(stmt).all())
