"""The city's time zone (config/city.yaml, DUBAN_TIMEZONE overriding it), the `date_only` key
of a source mapping, and `duban config check`'s warning about a source in another zone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from duban.cli import main
from duban.config import ConfigError, load_config
from duban.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def no_zone_in_env(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.delenv("DUBAN_TIMEZONE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_zone_comes_from_the_env_else_city_yaml_else_the_default(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = config_dir / "city.yaml"
    city.write_text("timezone: America/Chicago\n", encoding="utf-8")
    settings = Settings(config_dir=config_dir)
    assert (settings.timezone, settings.timezone_origin) == ("America/Chicago", str(city))
    assert str(settings.zone) == "America/Chicago"
    assert load_config(config_dir).city.timezone == "America/Chicago"
    monkeypatch.setenv("DUBAN_TIMEZONE", "Europe/Paris")
    assert Settings(config_dir=config_dir).timezone == "Europe/Paris"
    monkeypatch.delenv("DUBAN_TIMEZONE")
    city.unlink()
    settings = Settings(config_dir=config_dir)
    assert settings.timezone == "Asia/Shanghai" and "default" in settings.timezone_origin
    assert load_config(config_dir).city.timezone == "Asia/Shanghai"


def test_a_bad_city_zone_names_the_file(config_dir: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    (config_dir / "city.yaml").write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        _ = load_config(config_dir).city
    assert "city.yaml: timezone" in str(info.value) and "Mars/Olympus" in str(info.value)
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "city.yaml: timezone" in err and "Traceback" not in err


def write_mapping(config_dir: Path, name: str, **changes: object) -> Path:
    path = config_dir / "sources" / f"{name}.yaml"
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            mapping.pop(key, None)
        else:
            mapping[key] = value
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("date_only", "message"),
    [
        ({"closed_at": "noon"}, "date_only.closed_at"),
        ({"category": "end"}, "date_only.category"),
        ({"received_at": "end"}, "received_at can only be 'start'"),
    ],
)
def test_date_only_is_strict(config_dir: Path, date_only: dict[str, str], message: str) -> None:
    write_mapping(config_dir, "duban", date_only=date_only)
    with pytest.raises(ConfigError) as info:
        load_config(config_dir).source("duban")
    assert "sources/duban.yaml" in str(info.value) and message in str(info.value)


def test_date_only_must_name_a_mapped_column(config_dir: Path) -> None:
    write_mapping(config_dir, "nyc311", date_only={"dispatched_at": "start"})
    with pytest.raises(ConfigError) as info:
        load_config(config_dir).source("nyc311")
    assert "date_only: dispatched_at not mapped in columns" in str(info.value)


def test_config_check_warns_about_a_source_in_another_zone(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["config", "check"]) == 0  # a warning, not a failure
    out = capsys.readouterr().out.splitlines()
    warnings = [line for line in out if line.startswith("warning:")]
    assert len(warnings) == 1
    assert (
        "sources/nyc311.yaml: timezone: America/New_York is not the city's Asia/Shanghai"
        in (warnings[0])
    )
    # Another city zone: now the Chinese export is the foreign one; a mapping without a
    # timezone is in the city's zone and never warned about.
    write_mapping(config_dir, "duban", timezone=None)
    monkeypatch.setenv("DUBAN_TIMEZONE", "America/New_York")
    get_settings.cache_clear()
    assert main(["config", "check"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "warning" in line] == []
    write_mapping(config_dir, "duban", timezone="Asia/Shanghai")
    assert main(["config", "check"]) == 0
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert "duban.yaml" in warning and "(from DUBAN_TIMEZONE)" in warning
