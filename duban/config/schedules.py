"""config/schedules.yaml: which loops are deployed, and their schedules on first deployment.

Each loop names its flow by import path ("flows.daily:daily_report"), a cron expression in
the city's time zone, default parameters, and the days it does its work (`run_on`, checked
by the flow with duban.rules.schedule.is_due). Once a deployment exists on the Prefect
server, its schedules belong to the administrators: `duban serve` and `duban deploy` never
change them again (see docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from duban.config.base import IANA_HINT, ConfigError, Strict, check_time_zone, find, parse_file
from duban.rules.schedule import RunOn, cron_problem

FILE_NAME = "schedules.yaml"


def _check_zone(value: str | None) -> str | None:
    return value if value is None else check_time_zone(value, IANA_HINT)


class LoopSchedule(Strict):
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9\-]*$", max_length=64, description="the deployment's name"
    )
    flow: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function of the flow"
    )
    description: str = ""
    cron: str | None = Field(default=None, description="none: started by hand or from a form")
    timezone: str | None = Field(default=None, description="default: the file's, else DUBAN_")
    parameters: dict[str, Any] = Field(default_factory=dict)
    working_days_only: bool = Field(
        default=False, description="the flow does its work on working days only"
    )
    run_on: RunOn | None = Field(
        default=None,
        description="the days the flow does its work; default working_day or any_day",
    )
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @property
    def days(self) -> RunOn:
        if self.run_on is not None:
            return self.run_on
        return "working_day" if self.working_days_only else "any_day"

    @model_validator(mode="after")
    def _consistent(self) -> LoopSchedule:
        if self.working_days_only and self.run_on == "any_day":
            raise ValueError("run_on: any_day contradicts working_days_only: true")
        if self.cron is not None:
            problem = cron_problem(self.cron, self.days)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def module(self) -> str:
        return self.flow.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.flow.partition(":")[2]


class SchedulesFile(Strict):
    timezone: str | None = Field(default=None, description="default: the city's")
    loops: list[LoopSchedule] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @model_validator(mode="after")
    def _unique(self) -> SchedulesFile:
        names = [loop.name for loop in self.loops]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"loops: duplicate names {doubled}")
        return self

    def loop(self, name: str) -> LoopSchedule:
        return find(self.loops, lambda loop: loop.name, name)

    def zone_of(self, loop: LoopSchedule, city_timezone: str) -> str:
        return loop.timezone or self.timezone or city_timezone


def load_schedules(config_dir: Path) -> SchedulesFile:
    """Read and validate config_dir/schedules.yaml (ConfigError names file, path, value)."""
    path = Path(config_dir) / FILE_NAME
    if not path.exists():
        raise ConfigError([f"{path}: file not found (the loops to deploy and their schedules)"])
    return parse_file(path, SchedulesFile)
