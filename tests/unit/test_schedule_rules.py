"""When scheduled loops are due (first working day of month/quarter/year across National Day,
Spring Festival and make-up days), and config/schedules.yaml validation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from duban.calendar import WorkCalendar
from duban.config import ConfigError
from duban.config.schedules import load_schedules
from duban.rules.schedule import (
    LATEST_FIRST_WORKING_DAY,
    cron_days,
    cron_problem,
    first_working_day_of_month,
    first_working_day_of_quarter,
    is_due,
    is_first_working_day_of_month,
    is_first_working_day_of_quarter,
    is_first_working_day_of_year,
    previous_month,
    previous_quarter,
    previous_week,
    previous_year,
)

REPO = Path(__file__).resolve().parents[2]
CAL = WorkCalendar()


@pytest.mark.parametrize(
    ("year", "month", "first"),
    [
        (2026, 10, date(2026, 10, 8)),  # National Day 1–7 October
        (2025, 10, date(2025, 10, 9)),  # National Day and Mid-Autumn 1–8 October
        (2024, 10, date(2024, 10, 8)),
        (2022, 2, date(2022, 2, 7)),  # Spring Festival 31 January – 6 February
        (2026, 2, date(2026, 2, 2)),  # Spring Festival later: a plain Monday
        (2026, 1, date(2026, 1, 4)),  # a Sunday: make-up working day (调休) after New Year
        (2023, 10, date(2023, 10, 7)),  # a Saturday: make-up working day
        (2026, 5, date(2026, 5, 6)),  # Labour Day 1–5 May
        (2026, 11, date(2026, 11, 2)),  # 1 November 2026 is a Sunday
        (2026, 12, date(2026, 12, 1)),
    ],
)
def test_first_working_day_of_month(year: int, month: int, first: date) -> None:
    assert first_working_day_of_month(year, month, CAL) == first
    assert is_first_working_day_of_month(first, CAL)
    assert is_due(first, "first_working_day_of_month", CAL)
    for day in range(1, first.day):
        earlier = date(year, month, day)
        assert not is_first_working_day_of_month(earlier, CAL)
        assert not is_due(earlier, "first_working_day_of_month", CAL)
    later = CAL.next_working_day(first)
    assert not is_due(later, "first_working_day_of_month", CAL)


def test_the_guard_fires_once_a_month_within_the_cron_window() -> None:
    """Every month of 2004–2026: exactly one due day, on days 1–10 (the cron's window)."""
    for year in range(2004, 2027):
        for month in range(1, 13):
            days = [date(year, month, d) for d in range(1, 29)]
            due = [d for d in days if is_due(d, "first_working_day_of_month", CAL)]
            assert len(due) == 1, (year, month, due)
            assert due[0].day <= LATEST_FIRST_WORKING_DAY, due


def test_first_working_day_of_quarter_and_year() -> None:
    assert first_working_day_of_quarter(2026, 4, CAL) == date(2026, 10, 8)
    assert first_working_day_of_quarter(2026, 1, CAL) == date(2026, 1, 4)
    assert is_first_working_day_of_quarter(date(2026, 10, 8), CAL)
    assert not is_first_working_day_of_quarter(date(2026, 11, 2), CAL)  # a month, not quarter
    assert not is_first_working_day_of_quarter(date(2026, 10, 1), CAL)  # National Day
    assert is_due(date(2026, 7, 1), "first_working_day_of_quarter", CAL)
    assert is_first_working_day_of_year(date(2026, 1, 4), CAL)
    assert not is_first_working_day_of_year(date(2026, 1, 1), CAL)  # New Year's Day
    assert not is_first_working_day_of_year(date(2026, 2, 2), CAL)
    with pytest.raises(ValueError, match="quarter"):
        first_working_day_of_quarter(2026, 5, CAL)


def test_working_day_guard_includes_make_up_weekends() -> None:
    assert is_due(date(2026, 1, 4), "working_day", CAL)  # Sunday, 调休
    assert is_due(date(2026, 2, 14), "working_day", CAL)  # Saturday, 调休 before Spring Festival
    assert not is_due(date(2026, 10, 5), "working_day", CAL)  # National Day, a Monday
    assert not is_due(date(2026, 11, 7), "working_day", CAL)  # an ordinary Saturday
    assert is_due(date(2026, 11, 7), "any_day", CAL)


def test_periods_before_a_run_day() -> None:
    assert previous_month(date(2026, 11, 2)) == "2026-10"
    assert previous_month(date(2027, 1, 4)) == "2026-12"
    assert previous_week(date(2026, 11, 9)) == "2026-W45"
    assert previous_week(date(2026, 1, 5)) == "2026-W01"
    assert previous_week(date(2027, 1, 4)) == "2026-W53"
    assert previous_quarter(date(2026, 10, 8)) == "2026-Q3"
    assert previous_quarter(date(2027, 1, 4)) == "2026-Q4"
    assert previous_year(date(2027, 1, 4)) == "2026"


def test_cron_fields() -> None:
    assert cron_days("*", 1, 31) == set(range(1, 32))
    assert cron_days("1-10", 1, 31) == set(range(1, 11))
    assert cron_days("1,4,7,10", 1, 12) == {1, 4, 7, 10}
    assert cron_days("*/15", 0, 59) == {0, 15, 30, 45}
    assert cron_days("5/20", 0, 59) == {5, 25, 45}
    with pytest.raises(ValueError):
        cron_days("0-40", 1, 31)
    with pytest.raises(ValueError):
        cron_days("MON", 0, 7)


@pytest.mark.parametrize(
    ("cron", "run_on", "problem"),
    [
        ("30 8 * * *", "working_day", None),
        ("30 8 * * 0-6", "working_day", None),
        ("30 8 * * 1-7", "working_day", None),
        ("30 8 * * 1-6", "working_day", "Saturdays and Sundays"),
        ("30 8 * * 1-5", "working_day", "Saturdays and Sundays"),
        ("0 9 * * 1", "any_day", None),
        ("0 9 1-10 * *", "first_working_day_of_month", None),
        ("0 9 1-7 * *", "first_working_day_of_month", "8th or the 9th"),
        ("0 9 1-10 1,4,7,10 *", "first_working_day_of_quarter", None),
        ("0 9 1-10 1,7 *", "first_working_day_of_quarter", "months [1, 4, 7, 10]"),
        ("0 9 1-10 1 *", "first_working_day_of_year", None),
        ("0 9 1-10 * 1-5", "first_working_day_of_month", "Saturdays and Sundays"),
        ("0 9 * *", "any_day", "five fields"),
        ("0 25 * * *", "any_day", "outside 0-23"),
    ],
)
def test_cron_problem(cron: str, run_on: str, problem: str | None) -> None:
    found = cron_problem(cron, run_on)  # type: ignore[arg-type]
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


# ---------------------------------------------------------------- config/schedules.yaml


def test_shipped_schedules_are_valid() -> None:
    schedules = load_schedules(REPO / "config")
    daily = schedules.loop("daily-report")
    assert daily.flow == "flows.daily:daily_report"
    assert daily.days == "working_day"
    assert schedules.zone_of(daily, "Asia/Shanghai") == "Asia/Shanghai"
    assert schedules.loop("monthly-bulletin").days == "first_working_day_of_month"
    assert schedules.loop("lookback").cron is None
    # Saturday 2026-02-14 and Sunday 2026-01-04 are make-up working days: the cron fires.
    assert cron_days(daily.cron.split()[4], 0, 7) >= {0, 6}  # type: ignore[union-attr]


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "schedules.yaml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "loops:\n  - {name: daily-report, flow: flows.daily:daily_report, "
            "cron: '30 8 * * 1-6', working_days_only: true}\n",
            "schedules.yaml: loops[0]: Value error, cron '30 8 * * 1-6': a loop that runs on "
            "working days must fire on every day of the week",
        ),
        (
            "loops:\n  - {name: m, flow: flows.monthly:monthly_notice, cron: '0 9 1-7 * *', "
            "run_on: first_working_day_of_month}\n",
            "schedules.yaml: loops[0]: Value error, cron '0 9 1-7 * *': a first-working-day "
            "loop must fire on days 1-10",
        ),
        (
            "loops:\n  - {name: d, flow: flows.daily.daily_report}\n",
            "schedules.yaml: loops[0].flow: String should match pattern",
        ),
        (
            "loops:\n  - {name: Daily Report, flow: 'flows.daily:daily_report'}\n",
            "schedules.yaml: loops[0].name: String should match pattern",
        ),
        (
            "loops:\n  - {name: d, flow: 'flows.daily:daily_report', timezone: Mars/Olympus}\n",
            "schedules.yaml: loops[0].timezone: Value error, unknown time zone 'Mars/Olympus'",
        ),
        (
            "loops:\n  - {name: d, flow: 'flows.daily:daily_report', run_on: fortnightly}\n",
            "schedules.yaml: loops[0].run_on: Input should be",
        ),
        (
            "loops:\n  - {name: d, flow: 'flows.daily:daily_report', cron: '0 9 * * *', "
            "enabeld: false}\n",
            "schedules.yaml: loops[0].enabeld: Extra inputs are not permitted (got False)",
        ),
        (
            "loops:\n  - {name: d, flow: 'a:b'}\n  - {name: d, flow: 'c:d'}\n",
            "schedules.yaml: (top level): Value error, loops: duplicate names ['d']",
        ),
    ],
)
def test_schedule_config_errors_name_file_path_and_value(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_schedules(_write(tmp_path, text))
    assert any(message in problem for problem in info.value.problems), info.value.problems
    assert all(
        problem.startswith(str(tmp_path / "schedules.yaml")) for problem in info.value.problems
    )


def test_missing_schedules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"schedules.yaml: file not found"):
        load_schedules(tmp_path)


# ---------------------------------------------------------------- the registry, without a server


def test_registry_skips_a_loop_whose_flow_module_does_not_exist_yet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from deployments.registry import load_loops

    schedules = load_schedules(
        _write(
            tmp_path,
            "loops:\n"
            "  - {name: daily-report, flow: 'flows.daily:daily_report', cron: '30 8 * * *',"
            " working_days_only: true}\n"
            "  - {name: later, flow: 'flows.not_written_yet:later', cron: '0 9 * * *'}\n"
            "  - {name: switched-off, flow: 'flows.daily:daily_report', enabled: false}\n",
        )
    )
    with caplog.at_level("WARNING", logger="duban.deployments"):
        loops = load_loops(schedules, "Asia/Shanghai", tmp_path)
    assert [loop.config.name for loop in loops] == ["daily-report"]
    assert loops[0].full_name == "daily-report/daily-report"
    assert loops[0].entrypoint == "flows/daily.py:daily_report"
    assert loops[0].timezone == "Asia/Shanghai"
    assert "loop later: skipped: its flow module flows.not_written_yet does not exist" in (
        caplog.text
    )
    with pytest.raises(ConfigError, match="no loop named 'nope'"):
        load_loops(schedules, "Asia/Shanghai", tmp_path, only=["nope"])


def test_registry_skips_a_scheduled_loop_that_needs_a_parameter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from deployments.registry import load_loops, missing_parameters
    from flows.daily import daily_report

    assert missing_parameters(daily_report, {}) == []
    schedules = load_schedules(
        _write(
            tmp_path,
            "loops:\n  - {name: needs, flow: 'tests.unit.test_schedule_rules:needs_week',"
            " cron: '0 9 * * 1'}\n"
            "  - {name: given, flow: 'tests.unit.test_schedule_rules:needs_week',"
            " cron: '0 9 * * 1', parameters: {week: 2026-W45}}\n"
            "  - {name: by-hand, flow: 'tests.unit.test_schedule_rules:needs_week'}\n",
        )
    )
    with caplog.at_level("WARNING", logger="duban.deployments"):
        loops = load_loops(schedules, "Asia/Shanghai", tmp_path)
    assert [loop.config.name for loop in loops] == ["given", "by-hand"]
    assert "loop needs: skipped: tests.unit.test_schedule_rules:needs_week requires week" in (
        caplog.text
    )


def test_an_existing_deployment_is_registered_without_schedules() -> None:
    """The PATCH of an existing deployment must carry no `schedules` (the server would
    replace the admins' with it) and must keep its paused flag."""
    from types import SimpleNamespace
    from typing import Any, cast

    from deployments.registry import Loop, build_deployment
    from duban.config.schedules import LoopSchedule
    from flows.daily import daily_report

    config = LoopSchedule(
        name="daily-report", flow="flows.daily:daily_report", cron="30 8 * * *",
        working_days_only=True,
    )  # fmt: skip
    loop = Loop(config, daily_report, "Asia/Shanghai")
    new = build_deployment(loop, None)
    assert [s.schedule.cron for s in new.schedules or []] == ["30 8 * * *"]  # type: ignore[union-attr]
    assert new.concurrency_limit == 1
    assert new.concurrency_options is not None
    assert new.concurrency_options.collision_strategy == "CANCEL_NEW"

    existing = cast(Any, SimpleNamespace(paused=True))
    kept = build_deployment(loop, existing)
    payload = kept.model_dump(mode="json", exclude_unset=True)
    assert "schedules" not in payload
    assert payload["paused"] is True
    assert payload["concurrency_limit"] == 1


def needs_week(week: str) -> str:  # a flow that cannot run on a schedule without parameters
    return week


def _as_flow() -> None:
    global needs_week
    from prefect import flow

    needs_week = flow(name="needs-week")(needs_week)  # type: ignore[assignment]


_as_flow()
