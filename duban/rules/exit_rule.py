"""The exit rule of municipal supervision (市级挂牌督办街乡): a supervised street may leave
supervision when, month on month, it "reduces volume, raises the rates and sheds the low
scores" (降量、提率、去低). Pure: figures in, verdict and reasons out.

For one street, comparing this month with the previous one:

- 降量 reduce volume: tickets this month <= (1 - volume_fall) x tickets last month
  (volume_fall 0: any month without a rise counts);
- 提率 raise the rates: each of `rates` (response, resolution, satisfaction by default) this
  month >= last month's, or >= `rate_floor` (a street already at the top cannot rise
  further); a rate missing this month fails, one missing last month passes;
- 去低 shed the low scores: the satisfaction rate this month >= `min_satisfaction`.

A rate the exports carry no data for (`unmeasured`) takes no part: missing is not failing.

The street meets the rule when all three hold; `reasons` names every condition that failed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

RATE_LABELS = {
    "response_rate": "响应率",
    "on_time_rate": "按时办结率",
    "resolution_rate": "解决率",
    "satisfaction_rate": "满意率",
}


@dataclass(frozen=True)
class StreetMonth:
    tickets: int
    rates: dict[str, float | None]


@dataclass(frozen=True)
class ExitVerdict:
    street: str
    meets: bool
    reasons: list[str] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def exit_verdict(
    street: str,
    this: StreetMonth,
    last: StreetMonth,
    *,
    volume_fall: float,
    rates: tuple[str, ...],
    rate_floor: float,
    min_satisfaction: float,
    unmeasured: Collection[str] = (),
) -> ExitVerdict:
    """The verdict of the exit rule; a rate in `unmeasured` (the exports carry no data for
    it, duban/rules/coverage.py) takes no part in 提率 or 去低."""
    reasons: list[str] = []
    limit = (1 - volume_fall) * last.tickets
    if this.tickets > limit:
        reasons.append(f"诉求量未下降（{this.tickets} 件，上月 {last.tickets} 件）")
    for name in (r for r in rates if r not in unmeasured):
        now, before = this.rates.get(name), last.rates.get(name)
        label = RATE_LABELS.get(name, name)
        if now is None:
            reasons.append(f"{label}无数据")
        elif before is not None and now < before and now < rate_floor:
            reasons.append(f"{label}下降（{_pct(now)}，上月 {_pct(before)}）")
    satisfaction = this.rates.get("satisfaction_rate")
    if "satisfaction_rate" not in unmeasured and (
        satisfaction is None or satisfaction < min_satisfaction
    ):
        reasons.append(f"满意率 {_pct(satisfaction)} 低于 {_pct(min_satisfaction)}")
    return ExitVerdict(street, not reasons, reasons)


def as_dict(verdict: ExitVerdict, this: StreetMonth, last: StreetMonth) -> dict[str, Any]:
    """For a template: the figures beside the verdict."""
    return {
        "street": verdict.street,
        "meets": verdict.meets,
        "reasons": verdict.reasons,
        "tickets": this.tickets,
        "tickets_last_month": last.tickets,
        "rates": this.rates,
        "rates_last_month": last.rates,
    }
