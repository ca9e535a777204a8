"""config/lookback.yaml: the scheduled look-backs (回头看) run by flows/scheduled_lookback.py;
the file may be absent (no scheduled look-backs). See docs/lookback.md."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from duban.config.base import Strict

FILE_NAME = "lookback.yaml"


class LookbackSchedule(Strict):
    """A look-back run for the items whose recurrence window has just ended."""

    name: str = Field(description="shown in logs and the run record, e.g. 30天回头看")
    window_days: int = Field(ge=1, le=366, description="the recurrence window, in days")
    closed_days: int = Field(
        default=1, ge=1, le=31, description="days of closures examined by each run"
    )
    same_place: Literal["address", "community", "street"] = "address"
    same_category: bool = True
    reopen: bool = False
    notify: bool = True
    problems: list[str] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list)


class LookbackConfig(Strict):
    """config/lookback.yaml; the file may be absent (no scheduled look-backs)."""

    lookback_schedules: list[LookbackSchedule] = Field(default_factory=list)
