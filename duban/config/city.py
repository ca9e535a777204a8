"""The city's own sections: city.yaml, units.yaml, problems.yaml, urgency.yaml, calendar.yaml,
escalation.yaml and mail.yaml, with the checks across the entries of a file."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from duban.config.base import (
    IANA_HINT,
    ConfigError,
    EmailAddress,
    Strict,
    check_time_zone,
    find,
    parse_optional,
)
from duban.db.models import Approach, UnitKind
from duban.rules.plain_text import control_character

# ---------------------------------------------------------------- the city itself

CITY_FILE = "city.yaml"
DEFAULT_TIMEZONE = "Asia/Shanghai"
TIMEZONE_ENV = "DUBAN_TIMEZONE"


class CityFile(Strict):
    """config/city.yaml (optional): what is true of the whole city."""

    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="the city's time zone: every stored time is local to it; "
        "DUBAN_TIMEZONE overrides it",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_time_zone(value, IANA_HINT)


def city_timezone(config_dir: Path, override: str | None) -> tuple[str, str]:
    """The city's time zone and where it comes from: `override` (DUBAN_TIMEZONE) when set,
    else config/city.yaml's `timezone`, else Asia/Shanghai (the default of both)."""
    if override:
        return check_time_zone(override, IANA_HINT), TIMEZONE_ENV
    path = Path(config_dir) / CITY_FILE
    if path.exists():
        return parse_optional(path, CityFile).timezone, str(path)
    return DEFAULT_TIMEZONE, f"default (no {path}, no {TIMEZONE_ENV})"


# ---------------------------------------------------------------- units and problems


def one_line(value: Any) -> Any:
    """The value (a string, a list of strings or None) unchanged; a ValueError naming the
    character when one holds a control or line-separator character (it would break, or be
    refused in, an e-mail header)."""
    for item in value if isinstance(value, list) else [value]:
        found = control_character(item) if isinstance(item, str) else None
        if found is not None:
            raise ValueError(f"{item!r} contains a control or line-separator character {found}")
    return value


class UnitConfig(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=200)
    kind: UnitKind
    parent: str | None = None
    supervisor: str | None = None  # defaults to the parent
    emails: list[EmailAddress] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)  # other names exports use for this unit

    @field_validator("name", "emails", "aliases", mode="before")  # before the address check
    @classmethod
    def _one_line(cls, value: str | list[str]) -> str | list[str]:
        return one_line(value)


class UnitsFile(Strict):
    units: list[UnitConfig]

    def display_names(self) -> dict[str, str]:
        """Code -> the name people read: the unit's name, or, where two units share it (a
        城关镇 in two districts), "name（parent's name）", and the code only if that is
        still ambiguous. Notices and charts show names, never codes alone."""
        by_code = {u.code: u for u in self.units}
        counts = Counter(u.name for u in self.units)
        out = {u.code: u.name for u in self.units}
        shared = [u for u in self.units if counts[u.name] > 1]
        for u in shared:
            parent = by_code.get(u.parent) if u.parent else None
            out[u.code] = f"{u.name}（{parent.name}）" if parent is not None else u.name
        again = Counter(out[u.code] for u in shared)
        for u in shared:
            if again[out[u.code]] > 1:
                out[u.code] = f"{u.name}（{u.code}）"
        return out


class ProblemConfig(Strict):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)
    approach: Approach
    lead: str
    cooperating: list[str] = Field(default_factory=list)
    ticket_categories: list[str] = Field(default_factory=list)
    focus_month: int | None = Field(default=None, ge=1, le=12)
    plan: str | None = None


class ProblemsFile(Strict):
    year: int = Field(ge=2000, le=2100)
    problems: list[ProblemConfig] = Field(default_factory=list)


# ---------------------------------------------------------------- deadlines and calendar


class UrgencyLevel(Strict):
    level: int = Field(ge=1, le=9)
    name: str
    working_days: int = Field(ge=1, le=60, description="handling limit in working days")
    response_hours: float = Field(default=24, gt=0, description="limit for the first response")


class UrgencyFile(Strict):
    default_level: int
    levels: list[UrgencyLevel]
    catalogue: dict[str, int] = Field(
        default_factory=dict,
        description="the dispatch catalogue (派单目录): category -> urgency level, for sources "
        "with `deadline: catalogue`",
    )

    @model_validator(mode="after")
    def _consistent(self) -> UrgencyFile:
        numbers = [lv.level for lv in self.levels]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"levels: duplicate level numbers {numbers}")
        if self.default_level not in numbers:
            raise ValueError(f"default_level {self.default_level} is not one of {numbers}")
        unknown = sorted(c for c, level in self.catalogue.items() if level not in numbers)
        if unknown:
            raise ValueError(f"catalogue: {', '.join(unknown)}: level is not one of {numbers}")
        return self

    def catalogue_level(self, category: str, fallback: int) -> int:
        """The level of `category` in the dispatch catalogue, else `fallback`."""
        return self.catalogue.get(category, fallback)

    def limit(self, level: int) -> UrgencyLevel:
        return find(self.levels, lambda lv: lv.level, level)


class CalendarFile(Strict):
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    years: list[int] = Field(default_factory=list, description="years supplied wholly by config")


# ---------------------------------------------------------------- warnings, ladder, mail


class WarningsConfig(Strict):
    """Three-colour warnings (三色督办): see docs/daily-loop.md."""

    blue_working_days: int = Field(
        default=1, ge=1, le=30, description="blue within this many last working days"
    )
    blue_working_days_by_level: dict[int, int] = Field(default_factory=dict)
    plan_task_lag: float = Field(
        default=0.2, ge=0, le=1, description="yellow when progress lags elapsed time by more"
    )

    def blue_days(self, level: int) -> int:
        return self.blue_working_days_by_level.get(level, self.blue_working_days)


LadderTrigger = Literal["blue", "red", "overdue"]
Recipient = Literal["unit", "supervisor", "office"]


class LadderStep(Strict):
    step: str = Field(pattern=r"^[a-z_]+$", max_length=32)
    name: str
    trigger: LadderTrigger
    working_days: int = Field(default=0, ge=0, le=250, description="for overdue: days late")
    notify: list[Recipient] = Field(default_factory=lambda: list[Recipient](["unit"]))


class EscalationFile(Strict):
    warnings: WarningsConfig = WarningsConfig()
    steps: list[LadderStep] = Field(min_length=1)
    send_on_non_working_days: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> EscalationFile:
        names = [s.step for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"steps: duplicate step names {names}")
        rank = {"blue": 0, "red": 1, "overdue": 2}
        keys = [(rank[s.trigger], s.working_days) for s in self.steps]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValueError(
                "steps: must climb: blue, then red, then overdue with growing working_days"
            )
        return self


class MailFile(Strict):
    office: list[EmailAddress] = Field(
        min_length=1, description="the supervision office's addresses"
    )
    admins: list[EmailAddress] = Field(default_factory=list, description="told when a run fails")
    leadership: list[EmailAddress] = Field(
        default_factory=list, description="receive the annual summary (年总结) with the office"
    )
    allowed_domains: list[str] = Field(min_length=1)
    staging_redirect: EmailAddress | None = Field(
        default=None, description="when set, every e-mail goes to this one address instead"
    )
    subject_prefix: str = "【督办】"
    max_attempts_per_run: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=2.0, ge=0, le=300)

    @field_validator(
        "office",
        "admins",
        "leadership",
        "allowed_domains",
        "staging_redirect",
        "subject_prefix",
        mode="before",  # before the address check, so that the error names the character
    )
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        return one_line(value)

    park_after: int = Field(
        default=5, ge=1, le=100, description="runs a delivery may fail on its own before parked"
    )
    max_citizen_text: int = Field(
        default=2000, ge=100, description="characters of citizen text per field in a mail"
    )


def check_units(path: Path, units: UnitsFile) -> None:
    problems: list[str] = []
    index: dict[str, int] = {}
    for i, unit in enumerate(units.units):
        if unit.code in index:
            problems.append(
                f"{path}: units[{i}].code: duplicate code {unit.code!r} "
                f"(first at units[{index[unit.code]}])"
            )
        index.setdefault(unit.code, i)
    for i, unit in enumerate(units.units):
        for field in ("parent", "supervisor"):
            ref = getattr(unit, field)
            if ref is not None and ref not in index:
                problems.append(f"{path}: units[{i}].{field}: unknown unit {ref!r}")
            if ref == unit.code:
                problems.append(f"{path}: units[{i}].{field}: a unit cannot be its own {field}")
    # No cycles in the hierarchy.
    parents = {u.code: u.parent for u in units.units}
    for i, unit in enumerate(units.units):
        seen = {unit.code}
        ref = unit.parent
        while ref is not None and ref in parents:
            if ref in seen:
                problems.append(f"{path}: units[{i}].parent: the hierarchy loops at {ref!r}")
                break
            seen.add(ref)
            ref = parents[ref]
    if problems:
        raise ConfigError(problems)


def check_problems(path: Path, problems_file: ProblemsFile, unit_codes: set[str]) -> None:
    problems: list[str] = []
    seen_codes: set[str] = set()
    category_owner: dict[str, str] = {}
    for i, problem in enumerate(problems_file.problems):
        if problem.code in seen_codes:
            problems.append(f"{path}: problems[{i}].code: duplicate code {problem.code!r}")
        seen_codes.add(problem.code)
        if problem.lead not in unit_codes:
            problems.append(f"{path}: problems[{i}].lead: unknown unit {problem.lead!r}")
        for j, code in enumerate(problem.cooperating):
            if code not in unit_codes:
                problems.append(f"{path}: problems[{i}].cooperating[{j}]: unknown unit {code!r}")
        for j, category in enumerate(problem.ticket_categories):
            owner = category_owner.setdefault(category, problem.code)
            if owner != problem.code:
                problems.append(
                    f"{path}: problems[{i}].ticket_categories[{j}]: {category!r} already counts "
                    f"towards {owner}"
                )
    if problems:
        raise ConfigError(problems)
