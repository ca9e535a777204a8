"""The look-back request: its form, its checks in plain code, its fingerprint, schedules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from duban.config import LookbackSchedule, load_config
from duban.loops.lookback.findings import (
    LookbackRequest,
    LookbackRequestError,
    build_request,
    check_request,
    request_problems,
    scheduled_request,
    unknown_codes,
)

SEPT = {"closed_from": date(2026, 9, 1), "closed_to": date(2026, 9, 30)}


def test_defaults() -> None:
    r = LookbackRequest(**SEPT)
    assert (r.window_days, r.same_place, r.same_category, r.reopen, r.notify) == (
        30, "address", True, False, True
    )  # fmt: skip
    assert r.problem_codes() == [] and r.unit_codes() == []


def test_closed_to_before_closed_from_is_refused_in_plain_code_too() -> None:
    with pytest.raises(LookbackRequestError, match="closed_to 2026-08-31 is before closed_from"):
        build_request(closed_from="2026-09-01", closed_to="2026-08-31")
    # What the UI submits skips the model's validators: the plain check still catches it.
    unchecked = LookbackRequest.model_construct(
        closed_from=date(2026, 9, 1), closed_to=date(2026, 8, 31), window_days=0,
        same_place="address", same_category=True, reopen=False, notify=True,
        problems=None, units=None,
    )  # fmt: skip
    problems = request_problems(unchecked)
    assert len(problems) == 2 and "window_days" in problems[1]
    with pytest.raises(LookbackRequestError, match="before closed_from"):
        check_request(unchecked)


def test_bad_values_name_the_field() -> None:
    with pytest.raises(LookbackRequestError, match="same_place"):
        build_request(**SEPT, same_place="district")
    with pytest.raises(LookbackRequestError, match="window_days"):
        build_request(**SEPT, window_days=0)
    with pytest.raises(LookbackRequestError, match="closed_from"):
        build_request(closed_from="2026-13-01", closed_to="2026-12-31")


def test_unknown_codes_are_named() -> None:
    r = build_request(**SEPT, units=["dc-jianguomen", "dc-nowhere"], problems=["P01", "P99"])
    assert unknown_codes(r, ["dc-jianguomen"], ["P01", "P02"]) == [
        "unknown unit code 'dc-nowhere'", "unknown problem code 'P99'",
    ]  # fmt: skip
    assert unknown_codes(r, ["dc-jianguomen", "dc-nowhere"], ["P01", "P99"]) == []


def test_fingerprint_is_stable_and_tells_requests_apart() -> None:
    a = build_request(**SEPT, units=["b", "a", "a"], problems=[])
    assert a.fingerprint() == build_request(**SEPT, units=[" a", "b"]).fingerprint()
    assert a.fingerprint().startswith("260901-260930-") and len(a.fingerprint()) <= 24
    # Sending or not is no part of what the request is: a later run with notify sends.
    assert a.fingerprint() == build_request(**SEPT, units=["a", "b"], notify=False).fingerprint()
    others = [
        build_request(**SEPT, units=["a"]),
        build_request(**SEPT, units=["a", "b"], window_days=31),
        build_request(**SEPT, units=["a", "b"], same_place="street"),
        build_request(**SEPT, units=["a", "b"], same_category=False),
        build_request(**SEPT, units=["a", "b"], reopen=True),
        build_request(closed_from=date(2026, 9, 1), closed_to=date(2026, 9, 29), units=["a", "b"]),
    ]
    assert len({a.fingerprint(), *(o.fingerprint() for o in others)}) == len(others) + 1


def test_the_form_has_titles_descriptions_and_a_drop_down() -> None:
    schema = LookbackRequest.model_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description"), name
    assert schema["properties"]["same_place"]["enum"] == ["address", "community", "street"]
    assert set(schema["required"]) == {"closed_from", "closed_to"}


def test_scheduled_request_takes_the_closures_whose_window_just_ended(tmp_path: Path) -> None:
    thirty = LookbackSchedule(name="30天回头看", window_days=30)
    r = scheduled_request(thirty, date(2026, 11, 2))
    assert (r.closed_from, r.closed_to, r.window_days) == (date(2026, 10, 2),) * 2 + (30,)
    week = LookbackSchedule(name="90天回头看", window_days=90, closed_days=7, reopen=True)
    r = scheduled_request(week, date(2026, 11, 2))
    assert (r.closed_from, r.closed_to, r.reopen) == (date(2026, 7, 28), date(2026, 8, 3), True)
    assert load_config(tmp_path).lookback.lookback_schedules == []


def test_the_shipped_schedules_load() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "config").lookback
    assert [s.window_days for s in config.lookback_schedules] == [30, 90]


def test_cli_names_an_unknown_code_before_anything_runs(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from duban.cli import main
    from duban.settings import get_settings

    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    get_settings.cache_clear()
    try:
        args = ["run", "lookback", "--closed-from", "2026-09-01", "--closed-to", "2026-09-30"]
        assert main([*args, "--unit", "dc-nowhere", "--problem", "P01"]) == 2
        assert "unknown unit code 'dc-nowhere'" in capsys.readouterr().err
        assert (
            main(["run", "lookback", "--closed-from", "2026-09-30", "--closed-to", "2026-09-01"])
            == 2
        )
        assert "closed_to 2026-09-01 is before closed_from 2026-09-30" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
