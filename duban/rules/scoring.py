"""The year-end evaluation (年终绩效考评): one score per unit, explained component by component.

Pure functions on plain values: no database, no Prefect. docs/evaluation.md has the rule in
words; tests/unit/test_scoring.py checks it.

A unit's score is the sum of its **components**; each shows its raw value, its weight and
its points (points = weight × value):

- **Rate components** (the rate block, 0..100 together): the three rates of the year —
  response 响应率, on-time closure 按时办结率, resolution 解决率, satisfaction 满意率 — and the
  plan-task completion 任务完成率 and policy issuance 政策出台率 of the plan items the unit
  leads or owns. value = the rate × 100 (0..100); weight = its configured weight divided by
  the sum of the weights of the rates the unit **has** (a missing rate — no tickets due,
  none rated, no plan items — takes no part: its weight is spread over the others, as in the
  monthly ranking, duban/rules/ranking.py). So the block is ``100 × Σ wᵢ·rᵢ / Σ wᵢ``.
  The clock's rates (docs/clock.md "The figures") — 一次解决率 `first_time_rate`, 退单率
  `return_rate`, 重办率 `redo_rate` — are rate components of weight 0 unless
  config/evaluation.yaml gives them one: shown, not scored. 退单率 and 重办率 are better
  low: they score ``100 − value`` (`LOWER_IS_BETTER`).
- **Penalties** (negative): failed spot checks 抽查未通过, ladder escalations 挂账/通报 steps,
  look-back recurrences 回头看复发, and the approved extensions 延期 (0 points per
  extension unless configured). value = the count (extensions: none when the year's data
  carries no approved extension — missing, not 0); weight = −points per item;
  points = max(weight × value, −cap).
- **Credit** (positive): old, hard items closed in the year 攻坚销号 — tickets that had been
  on the city ledger or were closed long after their deadline. value = the count; weight =
  +points per item; points = min(weight × value, cap). Units are rewarded for closing hard
  cases, not only punished for lateness.

**Exact sums**: every component's points are rounded to 2 decimals (half up) first; the
total is the sum of those rounded points, computed in whole cents, so the total shown is
exactly the sum of the points shown.

**Ranking** within peer groups (the monthly bulletin's `peer_groups`: districts, streets,
departments with companies): higher total first; equal totals go to the unit with **fewer
escalation steps**, then **more tickets** received, then the **unit code** in code-point
order. Ranks are 1..n without gaps. A unit with no rate at all, or with fewer than
`min_tickets` tickets received and no plan item, is listed but not ranked. The top
`top_named` and the bottom `bottom_named` of each ranked group are named, each never more
than half the group (rounded down): a group of 1 names none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from duban.rules.ranking import DEFAULT_PEER_GROUPS, group_sort_key, named_count

ComponentKind = Literal["rate", "penalty", "credit"]

# The rate block, in the order shown.
RATE_COMPONENTS: tuple[str, ...] = (
    "response_rate",
    "on_time_rate",
    "resolution_rate",
    "satisfaction_rate",
    "plan_task_completion",
    "policy_issuance",
    "first_time_rate",
    "return_rate",
    "redo_rate",
)
# The clock's figures (docs/clock.md): shown with weight 0 unless configured.
CLOCK_COMPONENTS: tuple[str, ...] = ("first_time_rate", "return_rate", "redo_rate", "extensions")
LOWER_IS_BETTER: frozenset[str] = frozenset({"return_rate", "redo_rate"})
PENALTIES: tuple[str, ...] = ("spot_check_failures", "escalations", "recurrences", "extensions")
CREDITS: tuple[str, ...] = ("old_items_closed",)
COMPONENTS: tuple[str, ...] = (*RATE_COMPONENTS, *PENALTIES, *CREDITS)
COMPONENT_NAMES: dict[str, str] = {
    "response_rate": "响应率",
    "on_time_rate": "按时办结率",
    "resolution_rate": "解决率",
    "satisfaction_rate": "满意率",
    "plan_task_completion": "任务完成率",
    "policy_issuance": "政策出台率",
    "first_time_rate": "一次解决率",
    "return_rate": "退单率",
    "redo_rate": "重办率",
    "extensions": "延期",
    "spot_check_failures": "抽查核验未通过",
    "escalations": "挂账、通报",
    "recurrences": "回头看复发",
    "old_items_closed": "攻坚销号（挂账或长期超期事项办结）",
}
DEFAULT_RATE_WEIGHTS: dict[str, float] = {
    "response_rate": 0.15,
    "on_time_rate": 0.20,
    "resolution_rate": 0.25,
    "satisfaction_rate": 0.25,
    "plan_task_completion": 0.10,
    "policy_issuance": 0.05,
    "first_time_rate": 0.0,
    "return_rate": 0.0,
    "redo_rate": 0.0,
}


@dataclass(frozen=True)
class PerItem:
    """A penalty or a credit: `points` per item, at most `cap` points in all."""

    points: float
    cap: float


@dataclass(frozen=True)
class ScoringRule:
    rate_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE_WEIGHTS))
    spot_check_failures: PerItem = PerItem(2.0, 10.0)
    escalations: PerItem = PerItem(0.5, 15.0)
    recurrences: PerItem = PerItem(1.0, 10.0)
    old_items_closed: PerItem = PerItem(1.0, 10.0)
    extensions: PerItem = PerItem(0.0, 0.0)

    def per_item(self, key: str) -> PerItem:
        rule = getattr(self, key)
        assert isinstance(rule, PerItem), key
        return rule


@dataclass(frozen=True)
class UnitRecord:
    """One unit's record of the year (from duban/queries/annual.py)."""

    code: str
    name: str
    kind: str
    tickets: int  # received in the year
    rates: Mapping[str, float | None]  # the rate components, fractions 0..1; missing: None/NaN
    counts: Mapping[str, int | None]  # penalties and credit: items per component (None: missing)
    plan_items: int = 0  # plan tasks and policies of the year it leads or owns


@dataclass(frozen=True)
class Component:
    key: str
    name: str
    kind: ComponentKind
    value: float | None  # rate × 100 (0..100), or a count; None: a missing rate
    weight: float  # rate: its share of the block (0..1); penalty: −points/item; credit: +
    points: float  # rounded to 2 decimals
    cap: float | None = None  # penalties and credit: the most points they can take or give
    capped: bool = False  # the cap applied


@dataclass
class UnitScore:
    code: str
    name: str
    kind: str
    group: str | None  # peer group; None: a kind that is not ranked
    tickets: int
    components: list[Component]
    total: float  # the sum of the components' points, exactly (to the cent)
    escalations: int  # for the tie-break
    rank: int | None = None
    group_size: int = 0
    top: bool = False
    bottom: bool = False
    not_ranked: str | None = None

    def component(self, key: str) -> Component:
        return next(c for c in self.components if c.key == key)


def _present(value: float | None) -> bool:
    return value is not None and value == value  # NaN is missing


def cents(points: float) -> int:
    """`points` rounded half up to whole cents (0.01 point)."""
    return int(Decimal(repr(float(points))).quantize(Decimal("0.01"), ROUND_HALF_UP) * 100)


def rate_components(
    rates: Mapping[str, float | None], weights: Mapping[str, float]
) -> list[Component]:
    """The rate block: each present rate's share of 100 points; a missing one scores 0 and
    its weight goes to the others."""
    present = {
        key: float(value)
        for key in RATE_COMPONENTS
        for value in [rates.get(key)]
        if value is not None and _present(value) and float(weights.get(key, 0.0)) > 0
    }
    total_weight = sum(float(weights[key]) for key in present)
    out: list[Component] = []
    for key in RATE_COMPONENTS:
        if key in present:
            share = float(weights[key]) / total_weight
            value = 100.0 * present[key]
            scored = 100.0 - value if key in LOWER_IS_BETTER else value
            out.append(Component(key, COMPONENT_NAMES[key], "rate", value, share,
                                 cents(share * scored) / 100))  # fmt: skip
        else:
            raw = rates.get(key)
            shown = 100.0 * float(raw) if raw is not None and _present(raw) else None
            out.append(Component(key, COMPONENT_NAMES[key], "rate", shown, 0.0, 0.0))
    return out


def per_item_component(
    key: str, count: int | None, rule: PerItem, kind: ComponentKind
) -> Component:
    """A penalty (negative points) or a credit (positive), capped at `rule.cap` points; a
    missing count (None) has no value and no points."""
    sign = -1.0 if kind == "penalty" else 1.0
    if count is None:
        return Component(key, COMPONENT_NAMES[key], kind, None, sign * rule.points, 0.0,
                         rule.cap)  # fmt: skip
    raw = rule.points * max(0, int(count))
    capped = raw > rule.cap
    points = sign * min(raw, rule.cap)
    return Component(key, COMPONENT_NAMES[key], kind, float(count), sign * rule.points,
                     cents(points) / 100, rule.cap, capped)  # fmt: skip


def score_unit(record: UnitRecord, rule: ScoringRule) -> UnitScore:
    components = rate_components(record.rates, rule.rate_weights)
    components += [
        per_item_component(key, record.counts.get(key, 0), rule.per_item(key), "penalty")
        for key in PENALTIES
    ]
    components += [
        per_item_component(key, record.counts.get(key, 0), rule.per_item(key), "credit")
        for key in CREDITS
    ]
    return UnitScore(
        code=record.code, name=record.name, kind=record.kind, group=None,
        tickets=int(record.tickets), components=components, total=total_of(components),
        escalations=int(record.counts.get("escalations") or 0),
    )  # fmt: skip


def total_of(components: Sequence[Component]) -> float:
    """The exact sum of the components' (already rounded) points."""
    return sum(cents(c.points) for c in components) / 100


def sort_key(s: UnitScore) -> tuple[int, int, int, str]:
    """Higher total, then fewer escalation steps, then more tickets, then the unit code."""
    return (-cents(s.total), s.escalations, -s.tickets, s.code)


def rank_scores(
    records: Sequence[UnitRecord],
    rule: ScoringRule,
    *,
    peer_groups: Mapping[str, str] | None = None,
    min_tickets: int = 1,
    top_named: int = 3,
    bottom_named: int = 3,
) -> list[UnitScore]:
    """Score every unit and rank those of a ranked kind within their peer groups.

    Returns every unit: by group (district, street, department, others by name), the ranked
    ones by rank, then the unranked ones by code; then the units of kinds not ranked (the
    city, communities) by code, with `group` None.
    """
    groups_of = DEFAULT_PEER_GROUPS if peer_groups is None else peer_groups
    by_group: dict[str, list[UnitScore]] = {}
    outside: list[UnitScore] = []
    for record in records:
        s = score_unit(record, rule)
        group = groups_of.get(record.kind)
        if group is None:
            s.not_ranked = "该类单位不参与同类排名"
            outside.append(s)
            continue
        s.group = group
        has_rate = any(c.kind == "rate" and c.weight > 0 for c in s.components)
        if not has_rate:
            s.not_ranked = "全年无可计算的指标，不参与排名"
        elif record.tickets < min_tickets and record.plan_items == 0:
            s.not_ranked = f"全年工单少于{min_tickets}件，不参与排名"
        by_group.setdefault(group, []).append(s)
    out: list[UnitScore] = []
    for group in sorted(by_group, key=group_sort_key):
        members = by_group[group]
        ranked = sorted((m for m in members if m.not_ranked is None), key=sort_key)
        unranked = sorted((m for m in members if m.not_ranked is not None), key=lambda m: m.code)
        n_top = named_count(len(ranked), top_named)
        n_bottom = named_count(len(ranked), bottom_named)
        for position, m in enumerate(ranked, start=1):
            m.rank = position
            m.top = position <= n_top
            m.bottom = position > len(ranked) - n_bottom
        for m in members:
            m.group_size = len(ranked)
        out += ranked + unranked
    return out + sorted(outside, key=lambda m: m.code)
