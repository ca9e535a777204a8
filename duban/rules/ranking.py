"""Ranking units within their peer group (同类单位排名) for the monthly bulletin (月通报).

Pure functions on plain values: no database, no Prefect. docs/monthly-bulletin.md has the
rule in words; tests/unit/test_ranking.py checks it.

- **Peer groups**: a unit is compared only with units of its group, given by its kind through
  `peer_groups` (districts with districts, streets with streets, departments with
  departments; companies with departments by default). A kind without a group (the city,
  communities) is not ranked.
- **Score**: the weighted mean of the unit's rates (fractions 0..1), as a number 0..100:
  ``100 × Σ wᵢ·rᵢ / Σ wᵢ`` over the rates that are **present**. A missing rate (no tickets
  due, none rated…) takes no part: its weight is spread over the others. A unit with no
  rate at all, or with fewer than `min_tickets` tickets received, is listed but not ranked.
- **Order and tie-break**: the higher score first; equal scores (compared to 6 decimal
  places of the 0..100 score) go to the unit with more tickets received (it carried the
  larger load), then to the unit code in code-point order. Ranks are 1..n without gaps,
  so every unit has its own place.
- **Named lowest** (排名靠后): the last `lowest_named` ranked units of each group, but never
  more than half the group (rounded down): a group of 2 names one, a group of 1 none.
- **Reason** (拖后腿的指标): for a named unit, the rate with the largest weighted shortfall
  below the group's mean of that rate, ``wᵢ × (meanᵢ − rᵢ)``; when no rate is below its
  mean, the unit's lowest rate. Ties go to the order of `RATES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# The rates that make the score, in the order used to break ties between reasons.
RATES: tuple[str, ...] = ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate")
RATE_NAMES: dict[str, str] = {
    "response_rate": "响应率",
    "on_time_rate": "按时办结率",
    "resolution_rate": "解决率",
    "satisfaction_rate": "满意率",
}
DEFAULT_WEIGHTS: dict[str, float] = {
    "response_rate": 0.2,
    "on_time_rate": 0.2,
    "resolution_rate": 0.3,
    "satisfaction_rate": 0.3,
}
DEFAULT_PEER_GROUPS: dict[str, str] = {
    "district": "district",
    "street": "street",
    "department": "department",
    "company": "department",
}
# Groups in the order the bulletin lists them; any other group follows by name.
GROUP_ORDER: tuple[str, ...] = ("district", "street", "department")
GROUP_NAMES: dict[str, str] = {"district": "区", "street": "街道（乡镇）", "department": "市级部门"}
SCORE_DECIMALS = 6


@dataclass(frozen=True)
class UnitRates:
    """One unit's figures for the month (a row of `unit_rates(by="unit")`)."""

    code: str
    name: str
    kind: str
    tickets: int
    rates: Mapping[str, float | None]  # missing: None (or NaN)


@dataclass
class RankedUnit:
    code: str
    name: str
    kind: str
    group: str
    tickets: int
    rates: dict[str, float | None]
    score: float | None  # 0..100; None when not ranked for want of rates
    rank: int | None = None  # 1..group_size; None when not ranked
    group_size: int = 0  # ranked units in the group
    named: bool = False  # among the lowest, named in the bulletin
    drag: str | None = None  # the rate that pulls a named unit down
    drag_value: float | None = None
    drag_mean: float | None = None  # the group's mean of that rate
    not_ranked: str | None = None  # why a unit of a ranked kind has no rank
    group_means: dict[str, float | None] = field(default_factory=dict)


def _present(value: float | None) -> bool:
    return value is not None and value == value  # NaN is missing


def score(rates: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """100 × the weighted mean of the present rates; None when no weighted rate is present."""
    total = 0.0
    weight = 0.0
    for name in RATES:
        w = float(weights.get(name, 0.0))
        value = rates.get(name)
        if w > 0 and value is not None and _present(value):
            total += w * float(value)
            weight += w
    if weight == 0:
        return None
    return 100.0 * total / weight


def named_count(group_size: int, lowest_named: int) -> int:
    """How many of a group's ranked units are named: `lowest_named`, at most half the group."""
    return max(0, min(lowest_named, group_size // 2))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _drag(
    rates: Mapping[str, float | None],
    means: Mapping[str, float | None],
    weights: Mapping[str, float],
) -> str | None:
    best: tuple[float, str] | None = None
    for name in RATES:
        w = float(weights.get(name, 0.0))
        value, mean = rates.get(name), means.get(name)
        if w <= 0 or value is None or not _present(value) or mean is None:
            continue
        shortfall = w * (mean - float(value))
        if shortfall > 0 and (best is None or shortfall > best[0]):
            best = (shortfall, name)
    if best is not None:
        return best[1]
    present: list[tuple[float, int, str]] = []
    for index, name in enumerate(RATES):
        value = rates.get(name)
        if float(weights.get(name, 0.0)) > 0 and value is not None and _present(value):
            present.append((float(value), index, name))
    return min(present)[2] if present else None


def group_sort_key(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group), "") if group in GROUP_ORDER else (len(GROUP_ORDER), group)


def rank_units(
    units: Sequence[UnitRates],
    weights: Mapping[str, float] | None = None,
    *,
    min_tickets: int = 1,
    lowest_named: int = 3,
    peer_groups: Mapping[str, str] | None = None,
) -> list[RankedUnit]:
    """Rank `units` within their peer groups (see the module's docstring for the rule).

    Returns every unit of a ranked kind: by group (district, street, department, others by
    name), the ranked ones by rank, then the unranked ones by code.
    """
    weights = DEFAULT_WEIGHTS if weights is None else weights
    groups_of = DEFAULT_PEER_GROUPS if peer_groups is None else peer_groups
    by_group: dict[str, list[RankedUnit]] = {}
    for unit in units:
        group = groups_of.get(unit.kind)
        if group is None:
            continue
        rates: dict[str, float | None] = {}
        for name in RATES:
            value = unit.rates.get(name)
            rates[name] = float(value) if value is not None and _present(value) else None
        by_group.setdefault(group, []).append(
            RankedUnit(
                code=unit.code, name=unit.name, kind=unit.kind, group=group,
                tickets=int(unit.tickets), rates=rates, score=score(rates, weights),
            )
        )  # fmt: skip
    out: list[RankedUnit] = []
    for group in sorted(by_group, key=group_sort_key):
        members = by_group[group]
        ranked: list[RankedUnit] = []
        unranked: list[RankedUnit] = []
        for m in members:
            if m.tickets < min_tickets:
                m.not_ranked = f"本月工单少于{min_tickets}件，不参与排名"
                unranked.append(m)
            elif m.score is None:
                m.not_ranked = "本月无可计算的指标，不参与排名"
                unranked.append(m)
            else:
                ranked.append(m)
        ranked.sort(key=lambda m: (-round(m.score or 0.0, SCORE_DECIMALS), -m.tickets, m.code))
        means = {
            name: _mean([float(v) for m in ranked for v in [m.rates[name]] if v is not None])
            for name in RATES
        }
        n_named = named_count(len(ranked), lowest_named)
        for position, m in enumerate(ranked, start=1):
            m.rank = position
            m.group_size = len(ranked)
            m.group_means = means
            if position > len(ranked) - n_named:
                m.named = True
                m.drag = _drag(m.rates, means, weights)
                if m.drag is not None:
                    m.drag_value = m.rates[m.drag]
                    m.drag_mean = means[m.drag]
        for m in unranked:
            m.group_size = len(ranked)
            m.group_means = means
        out += ranked + sorted(unranked, key=lambda m: m.code)
    return out
