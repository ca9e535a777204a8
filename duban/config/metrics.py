"""config/metrics.yaml: the figures of the weekly analysis and the monthly bulletin (the
satisfaction weight, hot spots, repeat complaints, the ranking, the supervised streets).
Every key has a default and the file may be absent; definitions: docs/metrics.md."""

from __future__ import annotations

from pydantic import Field, model_validator

from duban.config.base import Strict, check_weights
from duban.rules.ranking import DEFAULT_PEER_GROUPS, DEFAULT_WEIGHTS, RATES

FILE_NAME = "metrics.yaml"


class SupervisedStreets(Strict):
    """Streets under municipal supervision (市级挂牌督办街乡) and the exit rule 降量、提率、去低
    (duban/rules/exit_rule.py): names as the tickets' street column has them."""

    streets: list[str] = Field(default_factory=list, description="street names under supervision")
    volume_fall: float = Field(
        default=0.0, ge=0, le=1, description="降量: the least month-on-month fall of tickets"
    )
    rates: list[str] = Field(
        default_factory=lambda: ["response_rate", "resolution_rate", "satisfaction_rate"],
        description="提率: rates that must not fall month on month",
    )
    rate_floor: float = Field(
        default=0.98, ge=0, le=1, description="a rate at or above this need not rise further"
    )
    min_satisfaction: float = Field(
        default=0.85, ge=0, le=1, description="去低: the satisfaction rate a street must reach"
    )

    @model_validator(mode="after")
    def _rates(self) -> SupervisedStreets:
        unknown = [r for r in self.rates if r not in RATES]
        if unknown:
            raise ValueError(f"rates: unknown rate {unknown[0]!r}; one of {', '.join(RATES)}")
        return self


class MetricsConfig(Strict):
    """config/metrics.yaml; every field has a default and the file may be absent."""

    basically_satisfied_weight: float = Field(
        default=0.8, ge=0, le=1, description="weight of 基本满意 in the satisfaction rate"
    )
    hot_spots_top_n: int = Field(default=5, ge=1, le=1000, description="streets named (重点点位)")
    repeat_min_count: int = Field(
        default=3, ge=2, le=10_000, description="tickets that make a repeat complaint"
    )
    repeat_window_days: int = Field(
        default=30, ge=1, le=366, description="days of tickets searched for repeat complaints"
    )
    fall_threshold: float = Field(
        default=0.10, ge=0, le=1, description="a steep month-on-month fall (降幅超过)"
    )
    # The monthly bulletin's ranking (duban/rules/ranking.py, docs/monthly-bulletin.md).
    score_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="weight of each rate in the score; a rate left out counts 0",
    )
    peer_groups: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PEER_GROUPS),
        description="unit kind -> peer group it is ranked in; kinds left out are not ranked",
    )
    lowest_named: int = Field(
        default=3, ge=0, le=100, description="lowest units named per group (at most half)"
    )
    min_tickets_to_rank: int = Field(
        default=10, ge=0, le=1_000_000, description="tickets a unit needs in the month to rank"
    )
    supervised_streets: SupervisedStreets = Field(default_factory=SupervisedStreets)

    @model_validator(mode="after")
    def _weights(self) -> MetricsConfig:
        check_weights("score_weights", self.score_weights, RATES)
        return self
