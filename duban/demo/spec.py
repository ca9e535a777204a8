"""What the demo city is generated from (the spec), what it gives, and the drawn city that
the plan and the ticket generators read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 12345
    start: date = date(2026, 8, 1)
    days: int = 92
    daily_volume: int = 1500
    year: int = 2026
    mail_domain: str = "bj.duban.example"


@dataclass
class DemoFiles:
    config_dir: Path
    plan_workbook: Path
    tickets_csv: Path
    units: int
    problems: int
    plan_tasks: int
    policies: int
    tickets: int


STREAM_UNITS, STREAM_PROBLEMS, STREAM_PLAN, STREAM_TRENDS, STREAM_DAY = 1, 2, 3, 4, 100
STREAM_SPELLING = 5  # + the day: how citizens and call-takers spell one address


def rng_for(spec: DemoSpec, *stream: int) -> np.random.Generator:
    """A generator for one purpose: the same (seed, stream) always gives the same draws."""
    return np.random.default_rng([spec.seed, *stream])


@dataclass
class City:
    """The drawn city: its units, S streets with K communities and R roads each, D departments."""

    units: list[dict[str, Any]]
    district_names: list[str]
    street_codes: np.ndarray  # (S,) object
    street_names: np.ndarray  # (S,) object
    street_district: np.ndarray  # (S,) int: index into district_names
    street_weight: np.ndarray  # (S,) float, sums to 1
    street_rural: np.ndarray  # (S,) bool: townships (镇/乡)
    communities: np.ndarray  # (S, K) object
    villages: np.ndarray  # (S, K) bool: the community is a village (村)
    roads: np.ndarray  # (S, R) object
    dept_codes: list[str]
    dept_names: dict[str, str]
    badness: np.ndarray  # (S + D,) float, mean 1: how badly each street/department handles


COMMUNITIES_PER_STREET = 10
ROADS_PER_STREET = 6
