"""Config validation: every error names the file, the path inside it and the bad value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from duban.config import ConfigError, load_config


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _problems_of(config_dir: Path, section: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        getattr(load_config(config_dir), section)
    return info.value.problems


def test_shipped_config_is_valid(config_dir: Path) -> None:
    assert load_config(config_dir).validate_all() == []


def test_unknown_unit_kind_names_file_path_and_value(config_dir: Path) -> None:
    _edit(config_dir / "units.yaml", lambda d: d["units"][2].update(kind="village"))
    [problem] = _problems_of(config_dir, "units")
    assert str(config_dir / "units.yaml") in problem
    assert "units[2].kind" in problem
    assert "'village'" in problem


def test_unknown_supervisor_and_duplicate_code(config_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["units"][3]["supervisor"] = "nowhere"
        d["units"].append(dict(d["units"][1]))

    _edit(config_dir / "units.yaml", change)
    problems = _problems_of(config_dir, "units")
    assert any("units[3].supervisor: unknown unit 'nowhere'" in p for p in problems)
    assert any("duplicate code 'dc'" in p and "units[1]" in p for p in problems)


def test_hierarchy_loop_is_refused(config_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["units"][0]["parent"] = "dc"

    _edit(config_dir / "units.yaml", change)
    assert any("loops" in p for p in _problems_of(config_dir, "units"))


def test_bad_email_is_named(config_dir: Path) -> None:
    _edit(config_dir / "units.yaml", lambda d: d["units"][1].update(emails=["not-an-address"]))
    [problem] = _problems_of(config_dir, "units")
    assert "units[1].emails" in problem and "not-an-address" in problem


def test_problem_with_unknown_lead_and_shared_category(config_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["problems"][0]["lead"] = "ghost"
        d["problems"][1]["ticket_categories"].append(d["problems"][0]["ticket_categories"][0])

    _edit(config_dir / "problems.yaml", change)
    problems = _problems_of(config_dir, "problems")
    assert any("problems[0].lead: unknown unit 'ghost'" in p for p in problems)
    assert any("problems[1].ticket_categories" in p and "already counts" in p for p in problems)


def test_bad_approach_value(config_dir: Path) -> None:
    _edit(config_dir / "problems.yaml", lambda d: d["problems"][1].update(approach="magic"))
    [problem] = _problems_of(config_dir, "problems")
    assert "problems[1].approach" in problem and "'magic'" in problem


def test_urgency_default_must_be_a_level(config_dir: Path) -> None:
    _edit(config_dir / "urgency.yaml", lambda d: d.update(default_level=9))
    [problem] = _problems_of(config_dir, "urgency")
    assert "urgency.yaml" in problem and "default_level 9" in problem


def test_broken_yaml_names_line(config_dir: Path) -> None:
    (config_dir / "urgency.yaml").write_text("levels: [1, 2\n  oops: :\n", encoding="utf-8")
    [problem] = _problems_of(config_dir, "urgency")
    assert "urgency.yaml" in problem and "line" in problem


def test_missing_file(config_dir: Path) -> None:
    (config_dir / "units.yaml").unlink()
    [problem] = _problems_of(config_dir, "units")
    assert "units.yaml: file not found" in problem


def test_source_mapping_must_map_required_columns(config_dir: Path) -> None:
    _edit(config_dir / "sources/duban.yaml", lambda d: d["columns"].pop("received_at"))
    with pytest.raises(ConfigError) as info:
        load_config(config_dir).source("duban")
    assert "sources/duban.yaml" in str(info.value) and "received_at" in str(info.value)


def test_source_mapping_unknown_field_and_bad_status_value(config_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["columns"]["colour"] = "Colour"
        d["values"]["status"]["Done"] = "finished"

    _edit(config_dir / "sources/nyc311.yaml", change)
    with pytest.raises(ConfigError) as info:
        load_config(config_dir).source("nyc311")
    text = str(info.value)
    assert "columns.colour" in text
    assert "values.status.Done" in text and "'finished'" in text


def test_unknown_source_lists_known_ones(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="known: duban, nyc311"):
        load_config(config_dir).source("beijing")


@pytest.mark.parametrize("name", ["../mail", "sources/../../mail", "Duban", "a b", "/etc/x", ""])
def test_a_source_name_is_a_plain_identifier_and_nothing_else_is_read(
    config_dir: Path, name: str
) -> None:
    """`--source ../mail` once read config/mail.yaml as a mapping and echoed it (item 14)."""
    with pytest.raises(ConfigError) as info:
        load_config(config_dir).source(name)
    text = str(info.value)
    assert "not a source name" in text
    assert "office@" not in text and "admins" not in text and "allowed_domains" not in text


def test_config_check_refuses_a_source_file_whose_name_is_not_an_identifier(
    config_dir: Path,
) -> None:
    shutil.copy(config_dir / "sources/duban.yaml", config_dir / "sources/Duban Copy.yaml")
    problems = load_config(config_dir).validate_all()
    assert any("not a source name" in p and "Duban Copy" in p for p in problems), problems


def test_calendar_conflict_is_a_config_error(config_dir: Path) -> None:
    (config_dir / "calendar.yaml").write_text(
        "holidays: [2026-05-06]\nworkdays: [2026-05-06]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"calendar\.yaml.*2026-05-06"):
        _ = load_config(config_dir).calendar


def test_validate_all_collects_every_file(config_dir: Path) -> None:
    _edit(config_dir / "units.yaml", lambda d: d["units"][2].update(kind="village"))
    _edit(config_dir / "urgency.yaml", lambda d: d.update(default_level=9))
    found = load_config(config_dir).validate_all()
    assert any("units.yaml" in p for p in found)
    assert any("urgency.yaml" in p for p in found)


# ---------------------------------------------------------------- the package itself


def test_importing_the_config_imports_no_loop_and_no_query() -> None:
    """duban.config sits below the loops: no section reaches back into them (no cycle)."""
    import subprocess
    import sys

    code = (
        "import sys, duban.config\n"
        "print(sorted(m for m in sys.modules if m.startswith(('duban.loops', 'duban.queries',"
        " 'duban.metrics', 'duban.notices', 'duban.ingest'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_section_loads_once_per_config(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUBAN_SPOT_CHECK_SECRET", "a-secret-of-the-test-0123456789")
    config = load_config(config_dir)
    assert config.spot_check is config.spot_check
    assert config.metrics is config.metrics
    assert config.evaluation is config.evaluation
    assert config.lookback is config.lookback
    assert config.schedules is config.schedules
    assert config.spot_check_failure_level == 2  # escalate_to: supervision, the ladder's 2nd


def test_spot_check_escalate_to_must_name_a_ladder_step(config_dir: Path) -> None:
    path = config_dir / "spot_check.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    path.write_text(yaml.safe_dump({**(data or {}), "escalate_to": "nowhere"}), encoding="utf-8")
    problems = load_config(config_dir).validate_all()
    assert [p for p in problems if "escalate_to" in p] == [
        f"{path}: escalate_to: unknown ladder step 'nowhere' (config/escalation.yaml has "
        + ", ".join(s.step for s in load_config(config_dir).escalation.steps)
        + ")"
    ]


def test_time_zones_are_checked_by_one_function_with_each_message_kept(
    config_dir: Path,
) -> None:
    from pydantic import ValidationError

    from duban.settings import Settings

    with pytest.raises(ValidationError, match=r"unknown time zone 'Mars/Olympus' \(use an IANA"):
        Settings(timezone="Mars/Olympus")
    _edit(config_dir / "schedules.yaml", lambda d: d.update(timezone="Mars/Olympus"))
    found = _problems_of(config_dir, "schedules")
    assert any("unknown time zone 'Mars/Olympus' (use an IANA name)" in p for p in found)


# ---------------------------------------------------------------- config/clock.yaml


def test_the_shipped_clock_file_holds_the_documented_defaults(config_dir: Path) -> None:
    from datetime import time

    from duban.config import ClockRules

    clock = load_config(config_dir).clock
    assert clock == ClockRules()
    assert (clock.max_extensions, clock.max_extension_working_days) == (3, 3)
    assert clock.request_cutoff == time(17, 0) and clock.suspending_statuses == ["挂起"]
    (config_dir / "clock.yaml").unlink()
    assert load_config(config_dir).clock == ClockRules()  # the file may be absent


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("clock:\n  max_extensions: -1\n", "clock.max_extensions", "greater than or equal"),
        ("clock:\n  request_cutoff: 17:00\n", "clock.request_cutoff", "in quotes"),
        ("clock:\n  request_cutoff: '25:00'\n", "clock.request_cutoff", "'25:00'"),
        ("clock:\n  suspension_counts: hours\n", "clock.suspension_counts", "'hours'"),
        ("clock:\n  suspending_statuses: [挂起, 挂起]\n", "clock.suspending_statuses", "twice"),
        ("clock:\n  max_extension: 3\n", "clock.max_extension", "Extra inputs"),
    ],
)
def test_a_wrong_clock_value_is_one_line_naming_file_and_key(
    config_dir: Path, text: str, key: str, words: str
) -> None:
    (config_dir / "clock.yaml").write_text(text, encoding="utf-8")
    [problem] = load_config(config_dir).validate_all()
    assert problem.startswith(f"{config_dir / 'clock.yaml'}: {key}: ")
    assert words in problem and "\n" not in problem


def test_display_names_tell_units_of_the_same_name_apart(config_dir: Path) -> None:
    """Notices show names, never a code alone: a name two units share gets its parent's."""
    path = config_dir / "units.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    first, second = [u for u in data["units"] if u.get("parent")][:2]
    second["name"] = first["name"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    units = load_config(config_dir).units
    names = units.display_names()
    parents = {u.code: u.parent for u in units.units}
    by_code = {u.code: u.name for u in units.units}
    a, b = names[first["code"]], names[second["code"]]
    assert a != b
    if parents[first["code"]] != parents[second["code"]]:
        assert a == f"{first['name']}（{by_code[parents[first['code']]]}）"
    else:  # the same parent too: only the code tells them apart
        assert a == f"{first['name']}（{first['code']}）"
    others = [u for u in units.units if u.code not in (first["code"], second["code"])]
    assert all(names[u.code] == u.name for u in others if u.name != first["name"])


@pytest.mark.parametrize("bad", ["\u2028", "\r", "\x0b", "\x85", "\n", "\u2029"])
def test_a_unit_name_with_a_control_or_line_separator_is_refused_in_one_line(
    config_dir: Path, bad: str
) -> None:
    path = config_dir / "units.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["units"][1]["name"] = f"东城{bad}区"
    # Escaped (allow_unicode=False): PyYAML would write a raw NEL that reads back as a space.
    path.write_text(yaml.safe_dump(data, allow_unicode=False), encoding="utf-8")
    [problem] = _problems_of(config_dir, "units")
    assert "units[1].name" in problem and f"U+{ord(bad):04X}" in problem
    assert "\n" not in problem and bad not in problem  # one line, the character named


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject_prefix", "【督办】\u2028"),
        ("admins", ["admin@duban.example\r\nBcc: x@evil.example"]),
        ("office", ["office\x1b@duban.example"]),
        ("staging_redirect", "s\x0b@duban.example"),
    ],
)
def test_mail_prefix_and_addresses_with_control_characters_are_refused(
    config_dir: Path, field: str, value: object
) -> None:
    _edit(config_dir / "mail.yaml", lambda d: d.update({field: value}))
    [problem] = _problems_of(config_dir, "mail")
    assert field in problem and "control or line-separator character" in problem
    assert "\n" not in problem


def test_mail_from_with_a_line_separator_is_refused() -> None:
    from pydantic import ValidationError

    from duban.settings import Settings

    with pytest.raises(ValidationError, match="U\\+2028"):
        Settings(_env_file=None, mail_from="督办室\u2028 <duban@duban.example>")  # type: ignore[call-arg]
