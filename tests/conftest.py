"""Shared fixtures: a migrated database on SQLite and on the PostgreSQL server, a config copy.

PostgreSQL: DUBAN_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Each test session works in its own schema, dropped at the end; tables are emptied per test.
Tests marked `postgres` fail (never skip) when the server is unreachable: CI starts it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from duban.config import CityConfig, load_config
from duban.db import make_engine, upgrade
from duban.db.models import Base

pytest_plugins = ["tests.smtp_server"]  # the `smtp_server` fixture: a real SMTP server

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get(
    "DUBAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

os.environ.setdefault(
    "PREFECT_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "duban-test-prefect")
)


@pytest.fixture(scope="session")
def pg_url() -> str:
    return PG_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "duban.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema_engine() -> Iterator[Engine]:
    schema = f"duban_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - only when the server is down
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable ({exc}); start it (see README)")
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _empty_pg(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Engine]:
    """A migrated, empty Duban database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "duban.db"
        shutil.copy(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_schema_engine")
        _empty_pg(eng)
        yield eng


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the repository's config/, free to edit."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    return target


@pytest.fixture
def city_config(config_dir: Path) -> CityConfig:
    return load_config(config_dir)
