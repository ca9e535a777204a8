"""config/evaluation.yaml: the year-end evaluation (年终绩效考评) — the weights of the rate
block, the points per item of the other components, how many units are named. Every key
has a default and the file may be absent; docs/evaluation.md describes every component."""

from __future__ import annotations

from pydantic import Field, model_validator

from duban.config.base import Strict, check_weights
from duban.rules.scoring import DEFAULT_RATE_WEIGHTS, RATE_COMPONENTS, PerItem, ScoringRule

FILE_NAME = "evaluation.yaml"


class PerItemConfig(Strict):
    points_per_item: float = Field(ge=0, le=100, description="points per item")
    cap: float = Field(ge=0, le=100, description="the most points the component takes or gives")


class OldItemsConfig(PerItemConfig):
    long_overdue_days: int = Field(
        default=30, ge=1, le=3650, description="closed more than this many days after due"
    )


class EvaluationConfig(Strict):
    """config/evaluation.yaml; every key has a default and the file may be absent."""

    rate_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_WEIGHTS),
        description="weight of each rate component in the rate block (0..100 points)",
    )
    spot_check_failures: PerItemConfig = PerItemConfig(points_per_item=2.0, cap=10.0)
    escalations: PerItemConfig = PerItemConfig(points_per_item=0.5, cap=15.0)
    recurrences: PerItemConfig = PerItemConfig(points_per_item=1.0, cap=10.0)
    old_items_closed: OldItemsConfig = OldItemsConfig(points_per_item=1.0, cap=10.0)
    # the approved extensions (延期): shown, 0 points per extension unless configured
    extensions: PerItemConfig = PerItemConfig(points_per_item=0.0, cap=0.0)
    min_tickets_to_rank: int = Field(default=10, ge=0, le=10_000_000)
    top_named: int = Field(default=3, ge=0, le=100)
    bottom_named: int = Field(default=3, ge=0, le=100)
    list_limit: int = Field(default=20, ge=1, le=1000, description="items listed per component")

    @model_validator(mode="after")
    def _weights(self) -> EvaluationConfig:
        check_weights("rate_weights", self.rate_weights, RATE_COMPONENTS)
        return self

    def rule(self) -> ScoringRule:
        def per(c: PerItemConfig) -> PerItem:
            return PerItem(c.points_per_item, c.cap)

        return ScoringRule(
            rate_weights=dict(self.rate_weights),
            spot_check_failures=per(self.spot_check_failures),
            escalations=per(self.escalations),
            recurrences=per(self.recurrences),
            old_items_closed=per(self.old_items_closed),
            extensions=per(self.extensions),
        )
