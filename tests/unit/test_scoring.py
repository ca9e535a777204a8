"""The year-end evaluation's scoring (duban/rules/scoring.py): points per component, caps,
missing rates, the exact sum, the ranking within peer groups and its tie-break."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from duban.config import ConfigError, EvaluationConfig, load_config
from duban.rules.scoring import (
    COMPONENTS,
    CREDITS,
    DEFAULT_RATE_WEIGHTS,
    PENALTIES,
    RATE_COMPONENTS,
    PerItem,
    ScoringRule,
    UnitRecord,
    cents,
    rank_scores,
    score_unit,
)

RULE = ScoringRule()
ALL_RATES = dict.fromkeys(RATE_COMPONENTS, 0.9)


def record(
    code: str,
    kind: str = "street",
    tickets: int = 50,
    rates: dict[str, float | None] | None = None,
    plan_items: int = 0,
    **counts: int | None,
) -> UnitRecord:
    return UnitRecord(
        code=code, name=f"name-{code}", kind=kind, tickets=tickets,
        rates=dict(ALL_RATES if rates is None else rates), counts=counts, plan_items=plan_items,
    )  # fmt: skip


def exact_sum(points: list[float]) -> Decimal:
    return sum((Decimal(str(p)) for p in points), Decimal(0))


def test_total_is_the_exact_sum_of_the_rounded_components_for_random_units() -> None:
    rng = random.Random(20261231)
    for _ in range(3000):
        weights = {k: rng.choice([0.0, rng.random(), rng.randint(1, 5) / 7]) for k in
                   RATE_COMPONENTS}  # fmt: skip
        if sum(weights.values()) == 0:
            weights["response_rate"] = 0.3
        rule = ScoringRule(
            rate_weights=weights,
            **{k: PerItem(rng.choice([0.1, 1 / 3, 0.5, 2.0, rng.random() * 5]),
                          rng.choice([1.0, 7.77, 10.0, rng.random() * 20]))
               for k in (*PENALTIES, *CREDITS)},
        )  # fmt: skip
        rates = {
            k: (None if rng.random() < 0.2 else float("nan") if rng.random() < 0.05
                else rng.random())
            for k in RATE_COMPONENTS
        }  # fmt: skip
        counts = {k: rng.choice([0, 1, rng.randint(0, 40)]) for k in (*PENALTIES, *CREDITS)}
        s = score_unit(record("u", rates=rates, **counts), rule)
        points = [c.points for c in s.components]
        for p in points:  # each component is rounded to 2 decimals
            assert Decimal(str(p)) == Decimal(str(p)).quantize(Decimal("0.01"))
        assert Decimal(str(s.total)) == exact_sum(points)
        assert [c.key for c in s.components] == list(COMPONENTS)
        # the rate block never exceeds 100 points; penalties and the credit stay within caps
        block = sum(c.points for c in s.components if c.kind == "rate")
        assert -0.01 <= block <= 100.0 + 0.01 * len(RATE_COMPONENTS)
        for c in s.components:
            if c.kind == "penalty":
                assert -c.cap - 0.005 <= c.points <= 0  # type: ignore[operator]
            if c.kind == "credit":
                assert 0 <= c.points <= c.cap + 0.005  # type: ignore[operator]


def test_rate_points_are_weight_times_value_on_a_0_to_100_scale() -> None:
    rule = ScoringRule(rate_weights={"response_rate": 1.0, "satisfaction_rate": 3.0})
    rates = dict.fromkeys(RATE_COMPONENTS, 0.5) | {"response_rate": 0.8, "satisfaction_rate": 0.6}
    s = score_unit(record("a", rates=rates), rule)
    response, satisfaction = s.component("response_rate"), s.component("satisfaction_rate")
    assert response.value == pytest.approx(80.0) and response.weight == pytest.approx(0.25)
    assert response.points == 20.0
    assert satisfaction.weight == pytest.approx(0.75) and satisfaction.points == 45.0
    # rates without weight show their value and score nothing
    assert s.component("resolution_rate").value == pytest.approx(50.0)
    assert s.component("resolution_rate").points == 0.0
    assert s.total == 65.0


def test_a_missing_rate_takes_no_part_and_its_weight_goes_to_the_others() -> None:
    full = score_unit(record("a", rates=dict.fromkeys(RATE_COMPONENTS, 0.8)), RULE)
    assert full.total == 80.0
    no_plan = dict.fromkeys(RATE_COMPONENTS, 0.8) | {
        "plan_task_completion": None, "policy_issuance": float("nan")
    }  # fmt: skip
    s = score_unit(record("b", rates=no_plan), RULE)
    assert s.total == 80.0  # a street without plan items is not punished for them
    plan = s.component("plan_task_completion")
    assert plan.value is None and plan.weight == 0.0 and plan.points == 0.0
    shares = [c.weight for c in s.components if c.kind == "rate"]
    assert sum(shares) == pytest.approx(1.0)
    nothing = score_unit(record("c", rates=dict.fromkeys(RATE_COMPONENTS)), RULE)
    assert nothing.total == 0.0 and all(c.points == 0 for c in nothing.components)


def test_penalties_and_credit_per_item_with_caps() -> None:
    rule = ScoringRule(
        spot_check_failures=PerItem(2.0, 10.0), escalations=PerItem(0.5, 15.0),
        recurrences=PerItem(1.0, 3.0), old_items_closed=PerItem(1.5, 6.0),
    )  # fmt: skip
    s = score_unit(
        record("a", rates=dict.fromkeys(RATE_COMPONENTS, 1.0), spot_check_failures=3,
               escalations=7, recurrences=5, old_items_closed=3),
        rule,
    )  # fmt: skip
    keys = ("spot_check_failures", "escalations", "recurrences", "old_items_closed")
    spot, esc, rec, old = (s.component(k) for k in keys)
    assert (spot.value, spot.weight, spot.points, spot.capped) == (3, -2.0, -6.0, False)
    assert (esc.value, esc.weight, esc.points) == (7, -0.5, -3.5)
    assert (rec.points, rec.cap, rec.capped) == (-3.0, 3.0, True)  # 5 × 1 capped at 3
    assert (old.weight, old.points, old.capped) == (1.5, 4.5, False)
    assert s.total == 100.0 - 6.0 - 3.5 - 3.0 + 4.5
    capped = score_unit(record("b", old_items_closed=100), rule).component("old_items_closed")
    assert capped.points == 6.0 and capped.capped
    # the credit rewards closing hard, old items: same rates, one more closed → higher total
    base = score_unit(record("c", escalations=4), rule).total
    assert score_unit(record("d", escalations=4, old_items_closed=1), rule).total == base + 1.5


def test_rounding_is_half_up_to_the_cent() -> None:
    assert cents(0.125) == 13 and cents(-0.125) == -13 and cents(2.675) == 268
    assert cents(1 / 3) == 33 and cents(99.999) == 10000


def test_ties_go_to_fewer_escalations_then_more_tickets_then_code() -> None:
    rates = dict.fromkeys(RATE_COMPONENTS, 0.9)
    units = [
        record("s-b", tickets=40, rates=rates),
        record("s-a", tickets=40, rates=rates),
        record("s-more", tickets=90, rates=rates),
        record("s-esc", tickets=500, rates=dict.fromkeys(RATE_COMPONENTS, 0.91), escalations=2),
        record("s-best", tickets=12, rates=dict.fromkeys(RATE_COMPONENTS, 0.95)),
    ]
    # s-esc: 91 − 2 × 0.5 = 90.0, equal to the others, but it had an escalation step
    ranked = rank_scores(units, RULE, top_named=1, bottom_named=1)
    assert [s.code for s in ranked] == ["s-best", "s-more", "s-a", "s-b", "s-esc"]
    assert [s.rank for s in ranked] == [1, 2, 3, 4, 5]
    assert {s.code for s in ranked if s.top} == {"s-best"}
    assert {s.code for s in ranked if s.bottom} == {"s-esc"}
    assert all(s.group_size == 5 for s in ranked)


def test_peer_groups_minimum_and_unranked_units() -> None:
    units = [
        record("d1", kind="district", rates=dict.fromkeys(RATE_COMPONENTS, 0.7)),
        record("d2", kind="district", rates=dict.fromkeys(RATE_COMPONENTS, 0.8)),
        record("dep", kind="department", tickets=2, plan_items=3),  # few tickets, leads a plan
        record("co", kind="company", tickets=3),  # below the minimum, no plan: not ranked
        record("quiet", kind="street", tickets=0, rates=dict.fromkeys(RATE_COMPONENTS)),
        record("city", kind="city"),
    ]
    ranked = rank_scores(units, RULE, min_tickets=10, top_named=3, bottom_named=3)
    by = {s.code: s for s in ranked}
    assert [s.code for s in ranked] == ["d2", "d1", "quiet", "dep", "co", "city"]
    assert by["d2"].rank == 1 and by["d1"].rank == 2
    assert by["d2"].top and by["d1"].bottom  # a group of 2: one each, at most half
    assert by["dep"].rank == 1 and not by["dep"].top  # a group of 1 names nobody
    assert by["co"].rank is None and "少于10件" in (by["co"].not_ranked or "")
    assert by["quiet"].rank is None and "无可计算的指标" in (by["quiet"].not_ranked or "")
    assert by["quiet"].total == 0.0
    assert by["city"].group is None and by["city"].rank is None
    assert by["dep"].group == "department" and by["co"].group == "department"


def test_ranking_is_by_total_for_many_random_units() -> None:
    rng = random.Random(7)
    units = [
        record(f"u{i:03d}", tickets=rng.randint(10, 30),
               rates={k: rng.choice([0.5, 0.75, 1.0]) for k in RATE_COMPONENTS},
               escalations=rng.randint(0, 3), old_items_closed=rng.randint(0, 2))
        for i in range(200)
    ]  # fmt: skip
    ranked = rank_scores(units, RULE)
    keys = [(-s.total, s.escalations, -s.tickets, s.code) for s in ranked]
    assert keys == sorted(keys)
    assert [s.rank for s in ranked] == list(range(1, 201))


def test_evaluation_config_errors_name_file_key_and_value(tmp_path: Path) -> None:
    assert load_config(tmp_path).evaluation == EvaluationConfig()  # the file may be absent
    shipped = load_config(Path(__file__).resolve().parents[2] / "config").evaluation
    assert shipped.rule() == ScoringRule()  # config/evaluation.yaml holds the defaults
    path = tmp_path / "evaluation.yaml"
    path.write_text("escalations: {points_per_item: -1, cap: 5}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        _ = load_config(tmp_path).evaluation
    assert str(path) in str(caught.value)
    assert "escalations.points_per_item" in str(caught.value) and "-1" in str(caught.value)
    path.write_text("rate_weights: {happiness: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown rate 'happiness'"):
        _ = load_config(tmp_path).evaluation


def test_the_clock_figures_are_shown_with_weight_0_unless_configured() -> None:
    """一次解决率, 退单率, 重办率 and the extensions (docs/evaluation.md): by default shown with
    their value and weight 0, no points, the total unchanged; weighted when configured, the
    退单率 and 重办率 scoring 100 − value (lower is better); extensions missing, not 0."""
    clock = {"first_time_rate": 0.9, "return_rate": 0.2, "redo_rate": 0.1}
    block = ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate",
             "plan_task_completion", "policy_issuance")  # fmt: skip
    plain = dict.fromkeys(block, 0.5)
    without = score_unit(record("a", rates=plain), RULE)
    shown = score_unit(record("a", rates={**plain, **clock}, extensions=4), RULE)
    assert shown.total == without.total == 50.0
    for key, value in (("first_time_rate", 90.0), ("return_rate", 20.0), ("redo_rate", 10.0)):
        c = shown.component(key)
        assert (c.value, c.weight, c.points) == (pytest.approx(value), 0.0, 0.0)
    ext = shown.component("extensions")
    assert (ext.value, ext.points) == (4.0, 0.0)
    missing = score_unit(record("b", rates=plain, extensions=None), RULE).component("extensions")
    assert missing.value is None and missing.points == 0.0

    weights = {**DEFAULT_RATE_WEIGHTS, "return_rate": 0.5, "redo_rate": 0.5}
    weights = {k: (0.0 if k not in ("return_rate", "redo_rate") else w) for k, w in weights.items()}
    rule = ScoringRule(rate_weights=weights, extensions=PerItem(1.0, 3.0))
    s = score_unit(record("c", rates=clock, extensions=4), rule)
    # 50 % × (100 − 20) + 50 % × (100 − 10) = 85; 4 extensions × 1 capped at 3
    assert s.component("return_rate").points == 40.0
    assert s.component("redo_rate").points == 45.0
    assert s.component("extensions").points == -3.0 and s.total == 82.0
