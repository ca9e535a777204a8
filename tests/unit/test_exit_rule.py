"""The exit rule of municipal supervision (降量、提率、去低), as a pure function."""

from __future__ import annotations

import pytest

from duban.rules.exit_rule import StreetMonth, exit_verdict

RATES = ("response_rate", "resolution_rate", "satisfaction_rate")


def month(tickets: int, response: float | None, resolution: float | None,
          satisfaction: float | None) -> StreetMonth:  # fmt: skip
    return StreetMonth(tickets, {"response_rate": response, "resolution_rate": resolution,
                                 "satisfaction_rate": satisfaction})  # fmt: skip


def verdict(this: StreetMonth, last: StreetMonth, **kw: float) -> list[str]:
    rules = {"volume_fall": 0.0, "rate_floor": 0.98, "min_satisfaction": 0.85, **kw}
    result = exit_verdict("三里屯街道", this, last, rates=RATES, **rules)
    assert result.meets == (not result.reasons)
    return result.reasons


def test_fewer_tickets_better_rates_high_satisfaction_meets_the_rule() -> None:
    assert verdict(month(90, 0.99, 0.9, 0.92), month(100, 0.97, 0.88, 0.9)) == []


def test_each_condition_fails_on_its_own_with_its_reason() -> None:
    last = month(100, 0.97, 0.88, 0.9)
    [volume] = verdict(month(101, 0.99, 0.9, 0.92), last)
    assert "诉求量未下降" in volume and "101" in volume
    [rate] = verdict(month(90, 0.95, 0.9, 0.92), last)
    assert "响应率下降" in rate and "95.0%" in rate
    [low] = verdict(month(90, 0.99, 0.9, 0.92), month(100, 0.97, 0.88, 0.80), min_satisfaction=0.93)
    assert "满意率 92.0% 低于 93.0%" in low


@pytest.mark.parametrize(("this", "expected"), [(95, []), (96, ["诉求量未下降"])])
def test_volume_fall_is_a_fraction_of_last_month(this: int, expected: list[str]) -> None:
    reasons = verdict(month(this, 0.99, 0.9, 0.92), month(100, 0.97, 0.88, 0.9), volume_fall=0.05)
    assert [r.split("（")[0] for r in reasons] == expected


def test_a_rate_at_the_floor_need_not_rise_and_a_missing_rate_fails() -> None:
    last = month(100, 0.995, 0.88, 0.9)
    assert verdict(month(90, 0.99, 0.9, 0.92), last) == []  # 99.0% >= floor 98%
    reasons = verdict(month(90, None, 0.9, 0.92), last)
    assert reasons == ["响应率无数据"]
    assert verdict(month(90, 0.9, 0.9, 0.92), month(100, None, None, None)) == []


def test_a_rate_the_exports_do_not_carry_takes_no_part() -> None:
    this, last = month(90, None, 0.9, None), month(100, None, 0.88, None)
    assert "响应率无数据" in " ".join(verdict(this, last))  # missing this month: fails
    result = exit_verdict(
        "三里屯街道", this, last, rates=RATES, volume_fall=0.0, rate_floor=0.98,
        min_satisfaction=0.85, unmeasured={"response_rate", "satisfaction_rate"},
    )  # fmt: skip
    assert result.meets and result.reasons == []
    worse = month(90, None, 0.8, None)
    result = exit_verdict(
        "三里屯街道", worse, last, rates=RATES, volume_fall=0.0, rate_floor=0.98,
        min_satisfaction=0.85, unmeasured={"response_rate", "satisfaction_rate"},
    )  # fmt: skip
    assert [r[:5] for r in result.reasons] == ["解决率下降"]
