"""The `duban` command's errors: clear, one line each, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from duban.cli import main
from duban.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> object:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_unreachable_database_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUBAN_DATABASE_URL", "postgresql+psycopg://duban:s3cr3t-pw@127.0.0.1:1/x")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "s3cr3t-pw" not in err
    assert err.startswith("duban: error: cannot use the database postgresql+psycopg://duban:***@")
    assert "Traceback" not in err


def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUBAN_SMTP_SECURITY", "tls")
    monkeypatch.setenv("DUBAN_SMTP_PASSWORD", "hunter2")
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "DUBAN_SMTP_SECURITY" in err and "hunter2" not in err


def test_config_check_lists_each_problem_once(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    units = yaml.safe_load((config_dir / "units.yaml").read_text(encoding="utf-8"))
    units["units"][2]["kind"] = "village"
    (config_dir / "units.yaml").write_text(yaml.safe_dump(units, allow_unicode=True), "utf-8")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["config", "check"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "units[2].kind" in lines[0] and "'village'" in lines[0]


def test_calendar_due_across_national_day(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["calendar", "due", "2026-09-30", "3"]) == 0
    assert "due 2026-10-10 Sat" in capsys.readouterr().out


def test_metrics_prints_the_documented_csv(
    config_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("DUBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'duban.db'}")
    assert main(["sync"]) == 0
    capsys.readouterr()
    assert main(["metrics", "--by", "unit", "--from", "2026-10-01", "--to", "2026-10-31"]) == 0
    header = capsys.readouterr().out.lstrip("\ufeff").splitlines()[0]
    assert header.split(",")[:3] == ["unit", "unit_name", "kind"]
    assert header.endswith(
        "tickets,responded_in_time,response_rate,due,closed_on_time,on_time_rate,resolved,"
        "resolution_rate,rated,satisfied,satisfaction_rate,returned,excluded,no_deadline"
    )


def test_config_check_names_a_wrong_clock_key(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "clock.yaml").write_text("clock:\n  max_extensions: many\n", "utf-8")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["config", "check"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "clock.yaml: clock.max_extensions:" in line and "'many'" in line
