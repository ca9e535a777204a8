"""Migrations upgrade an empty database to the model, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from duban.db import make_engine, schema_is_current, upgrade
from duban.db.models import Base


def _assert_matches_model(engine: Engine) -> None:
    assert schema_is_current(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_upgrade_empty_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'duban.db'}")  # folder made on demand
    upgrade(engine)
    upgrade(engine)  # a second upgrade is a no-op
    _assert_matches_model(engine)


@pytest.mark.postgres
def test_upgrade_empty_postgres(pg_url: str) -> None:
    schema = f"duban_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
        upgrade(engine)
        _assert_matches_model(engine)
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
