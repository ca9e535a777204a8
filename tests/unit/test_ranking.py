"""The ranking of units within peer groups (duban/rules/ranking.py): score, tie-break, missing
rates, units below the minimum, the lowest named and why."""

from __future__ import annotations

import math

import pytest

from duban.rules.ranking import (
    DEFAULT_WEIGHTS,
    RATES,
    UnitRates,
    named_count,
    rank_units,
    score,
)

EQUAL = dict.fromkeys(RATES, 1.0)


def unit(code: str, kind: str = "street", tickets: int = 10, **rates: float | None) -> UnitRates:
    values: dict[str, float | None] = dict.fromkeys(RATES, 0.9)
    values.update(rates)
    return UnitRates(code=code, name=f"name-{code}", kind=kind, tickets=tickets, rates=values)


def by_code(result: list) -> dict:
    return {r.code: r for r in result}


def test_score_is_the_weighted_mean_of_the_rates_times_100() -> None:
    rates = {
        "response_rate": 1.0,
        "on_time_rate": 0.5,
        "resolution_rate": 0.8,
        "satisfaction_rate": 0.6,
    }
    expected = 100 * (0.2 * 1.0 + 0.2 * 0.5 + 0.3 * 0.8 + 0.3 * 0.6) / 1.0
    assert score(rates, DEFAULT_WEIGHTS) == pytest.approx(expected)
    assert score(rates, EQUAL) == pytest.approx(72.5)


def test_a_missing_rate_gives_its_weight_to_the_others() -> None:
    rates = {"response_rate": 1.0, "on_time_rate": None, "resolution_rate": math.nan,
             "satisfaction_rate": 0.5}  # fmt: skip
    # only response (0.2) and satisfaction (0.3) count: (0.2*1 + 0.3*0.5) / 0.5
    assert score(rates, DEFAULT_WEIGHTS) == pytest.approx(70.0)
    assert score(dict.fromkeys(RATES), DEFAULT_WEIGHTS) is None
    # a rate with weight 0 takes no part even when present
    only_response = {"response_rate": 1.0}
    assert score({**rates, "response_rate": 0.0}, only_response) == pytest.approx(0.0)


def test_units_are_ranked_only_within_their_peer_group() -> None:
    result = rank_units(
        [
            unit("s1", "street", response_rate=1.0),
            unit("s2", "street", response_rate=0.1),
            unit("d1", "district", response_rate=0.2),
            unit("d2", "district", response_rate=0.3),
            unit("dept", "department", response_rate=0.5),
            unit("co", "company", response_rate=0.6),
            unit("city", "city"),
            unit("comm", "community"),
        ],
        EQUAL,
    )
    r = by_code(result)
    assert "city" not in r and "comm" not in r  # kinds without a group are not ranked
    assert [x.code for x in result] == ["d2", "d1", "s1", "s2", "co", "dept"]
    assert (r["s1"].rank, r["s2"].rank, r["d2"].rank, r["d1"].rank) == (1, 2, 1, 2)
    assert r["co"].group == r["dept"].group == "department"  # companies with departments
    assert (r["co"].rank, r["dept"].rank) == (1, 2)
    # a configured mapping may put companies in a group of their own
    own = by_code(
        rank_units(
            [unit("co", "company"), unit("dept", "department")],
            EQUAL,
            peer_groups={"department": "department", "company": "company"},
        )
    )
    assert own["co"].group == "company" and own["co"].rank == own["dept"].rank == 1


def test_ties_go_to_more_tickets_then_to_the_code() -> None:
    result = rank_units(
        [
            unit("b", tickets=10),
            unit("a", tickets=10),
            unit("c", tickets=50),
            unit("d", tickets=5, satisfaction_rate=1.0),
        ],
        EQUAL,
        lowest_named=0,
    )
    assert [(x.code, x.rank) for x in result] == [("d", 1), ("c", 2), ("a", 3), ("b", 4)]


def test_scores_equal_up_to_float_noise_are_a_tie() -> None:
    # 0.1 + 0.2 != 0.3 in binary floating point; the two scores must still tie.
    a = unit("a", tickets=1, response_rate=0.1 + 0.2, on_time_rate=0.3)
    b = unit("b", tickets=2, response_rate=0.3, on_time_rate=0.1 + 0.2)
    result = rank_units([a, b], EQUAL)
    assert [x.code for x in result] == ["b", "a"]  # more tickets wins the tie


def test_units_below_the_minimum_or_without_rates_are_listed_but_not_ranked() -> None:
    result = rank_units(
        [
            unit("few", tickets=2, response_rate=1.0),
            unit("none", tickets=40, **dict.fromkeys(RATES)),
            unit("ok1", tickets=3),
            unit("ok2", tickets=30, response_rate=0.5),
        ],
        EQUAL,
        min_tickets=3,
        lowest_named=1,
    )
    assert [x.code for x in result] == ["ok1", "ok2", "few", "none"]
    r = by_code(result)
    assert r["few"].rank is None and "少于3件" in (r["few"].not_ranked or "")
    assert r["none"].rank is None and r["none"].score is None and r["none"].not_ranked
    assert not r["few"].named and not r["none"].named
    assert r["ok1"].group_size == r["few"].group_size == 2
    assert r["ok2"].named and r["ok2"].rank == 2


def test_the_lowest_are_named_never_more_than_half_the_group() -> None:
    assert [named_count(n, 3) for n in range(0, 9)] == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert named_count(10, 0) == 0
    streets = [unit(f"s{i}", response_rate=i / 10) for i in range(1, 8)]
    result = rank_units(streets, EQUAL, lowest_named=3)
    named = [x.code for x in result if x.named]
    assert named == ["s3", "s2", "s1"]
    assert [x.rank for x in result if x.named] == [5, 6, 7]


def test_the_reason_is_the_rate_with_the_largest_weighted_shortfall() -> None:
    weights = {"response_rate": 0.1, "on_time_rate": 0.1, "resolution_rate": 0.4,
               "satisfaction_rate": 0.4}  # fmt: skip
    result = rank_units(
        [
            unit("good", response_rate=0.9, resolution_rate=0.9),
            unit("good2", response_rate=0.9, resolution_rate=0.9),
            # response far below the mean (0.6 short) but light; resolution 0.2 short, heavy:
            # 0.1 × (0.7 − 0.3) = 0.04 < 0.4 × (0.833 − 0.7) = 0.053
            unit("low", response_rate=0.3, resolution_rate=0.7),
        ],
        weights,
        lowest_named=1,
    )
    low = by_code(result)["low"]
    assert low.named and low.drag == "resolution_rate"
    assert low.drag_value == pytest.approx(0.7)
    assert low.drag_mean == pytest.approx((0.9 + 0.9 + 0.7) / 3)


def test_without_a_rate_below_the_mean_the_reason_is_the_lowest_rate() -> None:
    # The last one's score is lower only because its high rate is missing: nothing is below
    # the group's mean, so the reason is its own lowest rate.
    result = rank_units(
        [
            unit(
                "a", response_rate=1.0, on_time_rate=0.5, resolution_rate=0.5, satisfaction_rate=0.5
            ),
            unit(
                "b",
                response_rate=None,
                on_time_rate=0.6,
                resolution_rate=0.6,
                satisfaction_rate=0.6,
            ),
        ],
        {
            "response_rate": 0.7,
            "on_time_rate": 0.1,
            "resolution_rate": 0.1,
            "satisfaction_rate": 0.1,
        },
        lowest_named=1,
    )
    b = by_code(result)["b"]
    assert b.rank == 2 and b.named and b.drag == "on_time_rate"


def test_the_result_does_not_depend_on_the_input_order() -> None:
    units = [unit(f"u{i}", tickets=10 + i % 3, response_rate=(i % 4) / 4) for i in range(12)]
    first = [(x.code, x.rank, x.named) for x in rank_units(units, EQUAL)]
    second = [(x.code, x.rank, x.named) for x in rank_units(list(reversed(units)), EQUAL)]
    assert first == second


def test_metrics_config_checks_the_ranking_settings() -> None:
    from pydantic import ValidationError

    from duban.config import MetricsConfig

    defaults = MetricsConfig()
    assert defaults.score_weights == DEFAULT_WEIGHTS
    assert defaults.peer_groups["company"] == "department"
    assert (defaults.lowest_named, defaults.min_tickets_to_rank) == (3, 10)
    for bad in (
        {"score_weights": {"speed": 1.0}},
        {"score_weights": {"response_rate": -0.1, "on_time_rate": 1.0}},
        {"score_weights": {"response_rate": 0.0}},
        {"lowest_named": -1},
    ):
        with pytest.raises(ValidationError):
            MetricsConfig(**bad)
