"""Migration 0008 adds tickets.place_key and fills it for the tickets already stored, on
SQLite and PostgreSQL: the same key the import computes (rules/places.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from duban.db import make_engine, upgrade
from duban.rules.places import place_key

ROWS = [  # (district, street, address)
    ("通州区", "梨园镇", "通州区梨园镇高家庄村1号"),
    ("房山区", "周口店镇", "高家庄村1号"),
    (None, "梨园镇", "高家庄村１号院"),
    ("通州区", None, ""),
    ("通州区", "梨园镇", None),
]


def _insert_before_0008(engine: Engine) -> None:
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO units (code, name, kind, emails, active)"
                " VALUES ('u1', 'Unit', 'street', '[]', true)"
            )
        )
        unit_id = conn.execute(text("SELECT id FROM units")).scalar_one()
        for i, (district, street, address) in enumerate(ROWS * 1200):  # more than a batch
            conn.execute(
                text(
                    "INSERT INTO tickets (source, external_id, received_at, due_at, category,"
                    " district, street, address, unit_id, urgency, status, returned_count,"
                    " reassigned_count, row_hash, imported_at) VALUES ('t', :ext,"
                    " '2026-09-01 09:00:00', '2026-09-08 09:00:00', '噪声扰民', :d, :s, :a,"
                    " :u, 3, 'open', 0, 0, 0, '2026-09-01 09:00:00')"
                ),
                {"ext": f"X{i}", "d": district, "s": street, "a": address, "u": unit_id},
            )


def _check(engine: Engine) -> None:
    _insert_before_0008(engine)
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT district, street, address, place_key FROM tickets ORDER BY id")
        ).all()
    assert len(rows) == len(ROWS) * 1200
    assert all(r.place_key == place_key(r.district, r.street, r.address) for r in rows)
    keys = [r.place_key for r in rows[: len(ROWS)]]
    assert keys == ["通州区|梨园镇|高家庄村1号", "房山区|周口店镇|高家庄村1号",
                    "|梨园镇|高家庄村1号", None, None]  # fmt: skip


def test_backfill_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'duban.db'}")
    _check(engine)
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    schema = f"duban_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_backfill_postgres(pg_engine: Engine) -> None:
    _check(pg_engine)
