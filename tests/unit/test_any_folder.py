"""`duban` from any folder: the mail templates and the example city ship with the package
(duban/resources), `duban init DIR` writes a city's config folder from the example, and a
temporary Prefect server that cannot start in time is one line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from duban.notices.render import make_environment
from duban.resources import example_config, templates
from duban.settings import Settings

DUBAN = Path(sys.executable).parent / "duban"


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    return {**clean, "PREFECT_HOME": os.environ.get("PREFECT_HOME", "/tmp"), **extra}


def _duban(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DUBAN), *argv], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_the_defaults_do_not_depend_on_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DUBAN_CONFIG_DIR", "DUBAN_TEMPLATES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.templates_dir == templates() and settings.config_dir == example_config()
    assert (settings.templates_dir / "mail" / "daily_office.html.j2").is_file()
    make_environment(settings.templates_dir).get_template("mail/daily_office.html.j2")
    # A folder with a config/ of its own uses it.
    (tmp_path / "config").mkdir()
    assert Settings().config_dir == Path("config")


def test_check_and_init_from_a_folder_outside_the_checkout(tmp_path: Path) -> None:
    checked = _duban(tmp_path, "config", "check")
    assert checked.returncode == 0, checked.stderr
    assert "configuration is valid" in checked.stdout and "example city" in checked.stdout

    made = _duban(tmp_path, "init", "city")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "city" / "units.yaml").read_bytes() == (
        example_config() / "units.yaml"
    ).read_bytes()
    assert (tmp_path / "city" / "sources" / "duban.yaml").is_file()
    own = _duban(tmp_path, "config", "check", DUBAN_CONFIG_DIR=str(tmp_path / "city"))
    assert own.returncode == 0, own.stderr
    assert "example city" not in own.stdout

    again = _duban(tmp_path, "init", "city")
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_a_temporary_prefect_server_that_does_not_start_is_one_line(tmp_path: Path) -> None:
    ran = _duban(
        tmp_path, "run", "daily", "--date", "2026-11-02", "--dry-run",
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1",
        DUBAN_DATABASE_URL=f"sqlite:///{tmp_path / 'duban.db'}",
    )  # fmt: skip
    assert ran.returncode == 2, ran.stderr[-3000:]
    ours = [line for line in ran.stderr.splitlines() if line.startswith("duban:")]
    assert ours == [
        "duban: error: the temporary Prefect server did not start within 1 s: set "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or start a server "
        "(`prefect server start`) and set PREFECT_API_URL (docs/operations.md)"
    ]
    assert "Traceback" not in ran.stderr
