"""Which rates the data can support (duban/rules/coverage.py), as a pure function."""

from __future__ import annotations

from duban.config import RATE_FIELDS
from duban.rules.coverage import FIELD_NAMES, rate_notes, unsupported_rates
from duban.rules.ranking import RATES

LACKING = {
    "response_rate": {"nyc311", "bare"},
    "on_time_rate": set(),
    "resolution_rate": {"bare"},
    "satisfaction_rate": {"nyc311"},
}


def test_every_rate_has_its_field_and_its_name() -> None:
    assert set(RATE_FIELDS) == set(RATES) == set(FIELD_NAMES)


def test_a_rate_no_source_of_the_period_carries_is_unsupported() -> None:
    notes = rate_notes(LACKING, ["nyc311"])
    assert [n.rate for n in notes] == ["response_rate", "satisfaction_rate"]
    assert unsupported_rates(notes) == {"response_rate", "satisfaction_rate"}
    assert notes[0].text == "— 导出数据无首次响应时间，无法计算响应率"
    assert notes[1].text == "— 导出数据无回访满意度，无法计算满意率"


def test_a_rate_some_sources_carry_is_partial_and_names_the_others() -> None:
    notes = rate_notes(LACKING, ["duban", "nyc311", "bare"])
    assert unsupported_rates(notes) == set()
    by_rate = {n.rate: n for n in notes}
    assert by_rate["response_rate"].sources == ("bare", "nyc311")
    assert by_rate["response_rate"].text == (
        "响应率不含来源 bare、nyc311 的工单（其导出数据无首次响应时间）"
    )
    assert set(by_rate) == {"response_rate", "resolution_rate", "satisfaction_rate"}


def test_sources_that_carry_everything_need_no_note() -> None:
    assert rate_notes(LACKING, ["duban"]) == []
    assert rate_notes(LACKING, []) == []
    assert rate_notes({}, ["bare"]) == []
