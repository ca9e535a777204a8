"""The `duban` command's errors: clear, one line each, no secrets."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from duban.cli import build_parser, main
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
        "resolution_rate,rated,satisfied,satisfaction_rate,returned,excluded,no_deadline,"
        # the supervision clock's figures (docs/clock.md "The figures")
        "not_evaluated,dispatched,returned_items,return_rate,closed,redone,redo_rate,"
        "first_time_rate,extensions,extended_items,extensions_per_item"
    )


def test_config_check_names_a_wrong_clock_key(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "clock.yaml").write_text("clock:\n  max_extensions: many\n", "utf-8")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["config", "check"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "clock.yaml: clock.max_extensions:" in line and "'many'" in line


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"duban {version('duban')}"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["run", "daily", "--date", "2026/11/02"],
         "duban: --date: expected YYYY-MM-DD (got '2026/11/02')"),
        (["run", "daily", "--date", "2026-02-30"],
         "duban: --date: expected YYYY-MM-DD: day is out of range for month (got '2026-02-30')"),
        (["run", "monthly", "--month", "2026-13"],
         "duban: --month: expected YYYY-MM, e.g. 2026-10 (got '2026-13')"),
        (["run", "weekly", "--week", "2026-45"],
         "duban: --week: expected YYYY-Www, e.g. 2026-W45 (got '2026-45')"),
        (["run", "quarterly", "--quarter", "2026-Q5"],
         "duban: --quarter: expected YYYY-Qn, e.g. 2026-Q3 (got '2026-Q5')"),
        (["run", "annual", "--year", "26"], "duban: --year: expected YYYY, e.g. 2026 (got '26')"),
        (["metrics", "--from", "2026-11-01", "--to", "1.11.2026"],
         "duban: --to: expected YYYY-MM-DD (got '1.11.2026')"),
        (["metrics", "--from", "yesterday", "--to", "2026-11-01"],
         "duban: --from: expected YYYY-MM-DD (got 'yesterday')"),
        (["run", "lookback", "--closed-from", "2026-10-01", "--closed-to", "20261031"],
         "duban: --closed-to: expected YYYY-MM-DD (got '20261031')"),
        (["approve", "monthly", "2026-1"],
         "duban: month: expected YYYY-MM, e.g. 2026-10 (got '2026-1')"),
        (["calendar", "due", "2026-09-30", "three"],
         "duban: working_days: expected a whole number, 0 or more (got 'three')"),
        (["demo", "--daily-runs", "some"],
         "duban: --daily-runs: expected a number of working days or 'all' (got 'some')"),
        (["demo", "--days", "0"], "duban: --days: expected a whole number, 1 or more (got '0')"),
    ],
)  # fmt: skip
def test_a_bad_option_names_itself_and_the_format(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == line
    assert "Traceback" not in err


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_command_and_argument_has_a_help_text() -> None:
    missing = []
    for prog, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{prog} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "daily", "--dry-run"],
        ["run", "weekly", "--week", "2026-W45", "--dry-run"],
        ["run", "monthly", "--month", "2026-10", "--dry-run"],
        ["run", "quarterly", "--quarter", "2026-Q3", "--dry-run"],
        ["run", "annual", "--year", "2026", "--dry-run"],
        ["run", "lookback", "--closed-from", "2026-10-01", "--closed-to", "2026-10-31"],
        ["approve", "monthly", "2026-10"],
    ],
)
def test_a_config_error_at_run_time_is_one_line_per_problem(
    argv: list[str],
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    units = yaml.safe_load((config_dir / "units.yaml").read_text(encoding="utf-8"))
    units["units"][2]["kind"] = "village"
    units["units"][4]["kind"] = "town"
    (config_dir / "units.yaml").write_text(yaml.safe_dump(units, allow_unicode=True), "utf-8")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Prefect" not in err  # refused before Prefect starts
    path = config_dir / "units.yaml"
    assert err.splitlines() == [
        f"duban: {path}: units[2].kind: Input should be 'city', 'district', 'street', "
        "'community', 'department' or 'company' (got 'village')",
        f"duban: {path}: units[4].kind: Input should be 'city', 'district', 'street', "
        "'community', 'department' or 'company' (got 'town')",
    ]


def test_a_config_error_logged_by_a_flow_run_keeps_its_message_but_not_its_traceback() -> None:
    import io
    import logging

    from duban.cli.errors import quiet_config_tracebacks
    from duban.config import ConfigError

    stream = io.StringIO()
    logger = logging.getLogger("test.duban.flow_runs")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    quiet_config_tracebacks("test.duban.flow_runs")
    try:
        for exc in (ConfigError(["units.yaml: units[2].kind: bad"]), KeyError("other")):
            try:
                raise exc
            except Exception as caught:
                logger.error("Encountered exception during execution: %r", caught, exc_info=True)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "units[2].kind: bad" in text
    assert text.count("Traceback") == 1 and "KeyError" in text.split("Traceback")[1]


def test_config_check_refuses_addresses_that_cannot_work(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = yaml.safe_load((config_dir / "mail.yaml").read_text(encoding="utf-8"))
    mail["office"] = ["office-at-duban.example"]
    mail["admins"] = ["admin@duban.example", "a%evil.com@duban.example"]
    (config_dir / "mail.yaml").write_text(yaml.safe_dump(mail, allow_unicode=True), "utf-8")
    units = yaml.safe_load((config_dir / "units.yaml").read_text(encoding="utf-8"))
    units["units"][1]["emails"] = ["d01@bj..duban.example"]
    (config_dir / "units.yaml").write_text(yaml.safe_dump(units, allow_unicode=True), "utf-8")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    assert main(["config", "check"]) == 2
    lines = sorted(capsys.readouterr().err.strip().splitlines())
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"{config_dir / 'mail.yaml'}: admins[1]: ")
    assert "'%' before the @-sign" in lines[0] and "'a%evil.com@duban.example'" in lines[0]
    assert lines[1].startswith(f"{config_dir / 'mail.yaml'}: office[0]: ")
    assert "must have an @-sign" in lines[1] and "'office-at-duban.example'" in lines[1]
    assert lines[2].startswith(f"{config_dir / 'units.yaml'}: units[1].emails[0]: ")
    assert "two periods in a row" in lines[2] and "'d01@bj..duban.example'" in lines[2]


def test_the_example_config_is_valid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(Path(__file__).resolve().parents[2] / "config"))
    assert main(["config", "check"]) == 0, capsys.readouterr().err


def test_import_refuses_a_source_name_that_is_not_an_identifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.csv"
    export.write_text("x\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["import", "tickets", str(export), "--source", "../mail"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "duban: --source: expected a source name" in err and "'../mail'" in err
    assert "office@" not in err and "admins" not in err


@pytest.mark.parametrize(("reader", "quarantined"), [(None, 1), ("openpyxl", 0)])
def test_the_excel_reader_is_a_setting(
    reader: str | None,
    quarantined: int,
    config_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """DUBAN_XLSX_READER reaches the import: an array formula without a cached value is
    quarantined by calamine (the default), read as empty by openpyxl (docs/sources.md)."""
    from tests.db.test_xlsx_differential import array_formula_export

    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("DUBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'duban.db'}")
    monkeypatch.setenv("DUBAN_REPORTS_DIR", str(tmp_path / "reports"))
    if reader:
        monkeypatch.setenv("DUBAN_XLSX_READER", reader)
    array_formula_export(tmp_path / "export.xlsx")
    assert main(["sync"]) == 0
    assert main(["import", "tickets", str(tmp_path / "export.xlsx"), "--source", "duban"]) == 0
    assert f"quarantined {quarantined}," in capsys.readouterr().out
