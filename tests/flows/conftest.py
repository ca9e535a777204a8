"""For every flow test: one Prefect test harness (a temporary Prefect server, ~13 s to
start), and `city`: the example city synced into the test's database, with DUBAN_* settings
pointing at that database, a private config copy, a reports folder and a real SMTP server.
Helpers to seed data are in tests/flows/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from duban.config import load_config
from duban.db import session_scope
from duban.ingest.city import sync_city
from duban.settings import get_settings


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def city(
    engine: Engine,
    config_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: Any,
) -> Iterator[dict[str, Any]]:
    """The example city, its settings pointing at this test's database and SMTP server."""
    mail = yaml.safe_load((config_dir / "mail.yaml").read_text(encoding="utf-8"))
    mail["retry_backoff_seconds"] = 0.01
    (config_dir / "mail.yaml").write_text(
        yaml.safe_dump(mail, allow_unicode=True), encoding="utf-8"
    )
    config = load_config(config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    url = engine.url.render_as_string(hide_password=False)
    options = (engine.dialect.name == "postgresql") and _search_path(engine)
    if options:
        url += f"?options={options}"
    env = {
        "DUBAN_DATABASE_URL": url,
        "DUBAN_CONFIG_DIR": str(config_dir),
        "DUBAN_REPORTS_DIR": str(tmp_path / "reports"),
        "DUBAN_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DUBAN_SMTP_HOST": smtp_server.host,
        "DUBAN_SMTP_PORT": str(smtp_server.port),
        "DUBAN_SMTP_SECURITY": "none",
        "DUBAN_MAIL_FROM": "duban@duban.example",
        "DUBAN_TEMPLATES_DIR": str(Path(__file__).resolve().parents[2] / "templates"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield {"config": config, "engine": engine, "smtp": smtp_server, "reports": tmp_path / "reports"}
    get_settings.cache_clear()


def _search_path(engine: Engine) -> str:
    with engine.connect() as conn:
        schema = conn.exec_driver_sql("SHOW search_path").scalar()
    return f"-csearch_path%3D{schema}"
