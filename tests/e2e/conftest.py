"""Fixtures of the end-to-end tests: a clean environment for Prefect and Duban processes,
and `start`, which runs a process in its own group and stops it at the end, even on failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import REPO, free_port, stop


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    home = tmp_path / "prefect-home"
    home.mkdir()
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    values = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_LOGGING_LEVEL": "INFO",
        "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
        "DUBAN_CONFIG_DIR": str(config),
        "DUBAN_REPORTS_DIR": str(tmp_path / "reports"),
        "DUBAN_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DUBAN_TEMPLATES_DIR": str(REPO / "templates"),
        "DUBAN_TIMEZONE": "Asia/Shanghai",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DUBAN_"))}
    return {**clean, **values}


@pytest.fixture
def start(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """start(name, *argv): a process in its own group, output to tmp; all stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(name: str, *argv: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(proc)
        return proc, log

    try:
        yield _start
    finally:
        for proc in reversed(started):
            stop(proc)
