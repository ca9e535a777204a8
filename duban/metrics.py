"""The figures of the monthly bulletin (月通报) for the command line: settings, the rates
frame, and writing it as CSV or JSON that Excel users can open.

The SQL is in duban/queries/metrics.py; the definitions are in docs/metrics.md.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from pydantic import Field, model_validator
from sqlalchemy import Engine

from duban.config import CityConfig, Strict, parse_file
from duban.queries.metrics import BY_VALUES, unit_rates
from duban.rules.ranking import DEFAULT_PEER_GROUPS, DEFAULT_WEIGHTS, RATES

FORMATS = ("csv", "json")


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
        unknown = sorted(set(self.score_weights) - set(RATES))
        if unknown:
            raise ValueError(
                f"score_weights: unknown rate {unknown[0]!r}; one of {', '.join(RATES)}"
            )
        if any(w < 0 for w in self.score_weights.values()):
            raise ValueError("score_weights: a weight cannot be negative")
        if sum(self.score_weights.values()) <= 0:
            raise ValueError("score_weights: at least one weight must be above 0")
        return self


def load_metrics_config(config: CityConfig | Path) -> MetricsConfig:
    """metrics.yaml of a config folder (or of `config.root`); defaults when it is absent."""
    root = config.root if isinstance(config, CityConfig) else Path(config)
    path = root / "metrics.yaml"
    return parse_file(path, MetricsConfig) if path.exists() else MetricsConfig()


def period(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[date_from 00:00, date_to + 1 day 00:00): `date_to` is included."""
    if date_to < date_from:
        raise ValueError(f"--to {date_to} is before --from {date_from}")
    return datetime.combine(date_from, time()), datetime.combine(date_to + timedelta(1), time())


def repeat_window(date_to: date, days: int) -> tuple[datetime, datetime]:
    """The window of repeat complaints ending with day `date_to`: the last `days` days."""
    end = datetime.combine(date_to + timedelta(1), time())
    return end - timedelta(days=days), end


def metrics_frame(
    engine: Engine, config: CityConfig, by: str, date_from: date, date_to: date
) -> pd.DataFrame:
    """The three rates and their counts per `by` (unit, problem, category, district, street)
    for the days date_from..date_to (both included)."""
    if by not in BY_VALUES:
        raise ValueError(f"--by: must be one of {', '.join(BY_VALUES)} (got {by!r})")
    start, end = period(date_from, date_to)
    response_hours = {lv.level: lv.response_hours for lv in config.urgency.levels}
    weight = load_metrics_config(config).basically_satisfied_weight
    with engine.connect() as conn:
        return unit_rates(conn, start, end, response_hours, weight, by=by)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def write_metrics(frame: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """`frame` as CSV (UTF-8 with a BOM, for Excel; empty cells for missing rates) or JSON (a
    list of objects, null for missing rates). Rates stay fractions (0.953, not 95.3)."""
    if fmt == "csv":
        out.write("\ufeff")
        frame.to_csv(out, index=False, na_rep="", lineterminator="\n")
    elif fmt == "json":
        rows = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        json.dump(rows, out, ensure_ascii=False, indent=2, allow_nan=False)
        out.write("\n")
    else:
        raise ValueError(f"--format: must be one of {', '.join(FORMATS)} (got {fmt!r})")
