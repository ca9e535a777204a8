"""config/clock.yaml: the supervision clock's caps, windows and counting rules (延期、挂起、
退单); the file may be absent (then the defaults below). See docs/clock.md."""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import Field, field_validator

from duban.config.base import Strict

FILE_NAME = "clock.yaml"


class ClockRules(Strict):
    """The rules `duban.rules.clock.replay` applies to an item's events."""

    max_extensions: int = Field(
        default=3, ge=0, le=20, description="approved extensions (延期) per item, at most"
    )
    max_extension_working_days: int = Field(
        default=3, ge=1, le=60, description="working days one extension may add, at most"
    )
    long_cycle_categories: list[str] = Field(
        default_factory=lambda: ["征地", "拆迁"],
        description="categories (长周期事项) whose extensions may reach long_cycle_max_days",
    )
    long_cycle_max_days: int = Field(
        default=180,
        ge=1,
        le=1096,
        description="a long-cycle item's deadline may move up to this many calendar days "
        "after its base deadline",
    )
    request_cutoff: time = Field(
        default=time(17, 0),
        description="a request filed after this time of day counts as filed on the next "
        "working day (start of day)",
    )
    return_window_working_days: int = Field(
        default=1,
        ge=0,
        le=30,
        description="a unit may return (退单) an item within this many working days after "
        "dispatch; later it stays the owner (首办负责)",
    )
    suspension_counts: Literal["working_days", "calendar_days"] = Field(
        default="working_days", description="how suspended (挂起) time moves the deadline"
    )
    max_suspension_days: int | None = Field(
        default=None,
        ge=1,
        le=3660,
        description="the days (counted as suspension_counts says) one suspension may add; "
        "none: no cap",
    )
    suspending_statuses: list[str] = Field(
        default_factory=lambda: ["挂起"],
        description="export statuses meaning the item is suspended",
    )

    @field_validator("request_cutoff", mode="before")
    @classmethod
    def _time_of_day(cls, value: object) -> object:
        # YAML reads an unquoted 17:00 as the number 1020 (base 60): never guess from it.
        if isinstance(value, bool | int | float):
            raise ValueError("write the time of day in quotes, e.g. '17:00'")
        if isinstance(value, str) and len(value.split(":")) not in (2, 3):
            raise ValueError("a time of day is HH:MM, e.g. '17:00'")
        return value

    @field_validator("long_cycle_categories", "suspending_statuses")
    @classmethod
    def _no_blank_or_duplicate(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("an entry is blank")
        seen = {v for v in values if values.count(v) > 1}
        if seen:
            raise ValueError(f"listed twice: {sorted(seen)[0]!r}")
        return values


class ClockConfig(Strict):
    """config/clock.yaml; the file may be absent (the defaults of ClockRules)."""

    clock: ClockRules = Field(default_factory=ClockRules)
