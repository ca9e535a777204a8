"""Loads and validates config/*.yaml into typed models.

Every error names the file, the path inside it and the bad value, e.g.
``config/units.yaml: units[3].supervisor: unknown unit 'xc-999'``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from duban.db.models import Approach, Satisfaction, TicketStatus, UnitKind

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- units and problems


class UnitConfig(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=200)
    kind: UnitKind
    parent: str | None = None
    supervisor: str | None = None  # defaults to the parent
    emails: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)  # other names exports use for this unit

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            local, _, domain = address.partition("@")
            if not local or "." not in domain or " " in address:
                raise ValueError(f"not an e-mail address: {address!r}")
        return value


class UnitsFile(Strict):
    units: list[UnitConfig]


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

    @model_validator(mode="after")
    def _consistent(self) -> UrgencyFile:
        numbers = [lv.level for lv in self.levels]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"levels: duplicate level numbers {numbers}")
        if self.default_level not in numbers:
            raise ValueError(f"default_level {self.default_level} is not one of {numbers}")
        return self

    def limit(self, level: int) -> UrgencyLevel:
        for lv in self.levels:
            if lv.level == level:
                return lv
        raise KeyError(level)


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
    office: list[str] = Field(min_length=1, description="the supervision office's addresses")
    admins: list[str] = Field(default_factory=list, description="told when a run fails")
    leadership: list[str] = Field(
        default_factory=list, description="receive the annual summary (年总结) with the office"
    )
    allowed_domains: list[str] = Field(min_length=1)
    staging_redirect: str | None = Field(
        default=None, description="when set, every e-mail goes to this one address instead"
    )
    subject_prefix: str = "【督办】"
    max_attempts_per_run: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=2.0, ge=0, le=300)


# ---------------------------------------------------------------- hotline export mappings

TICKET_FIELDS = (
    "external_id",
    "received_at",
    "dispatched_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "due_at",
    "category",
    "district",
    "street",
    "community",
    "address",
    "content",
    "caller_phone",
    "unit",
    "urgency",
    "status",
    "resolved",
    "satisfaction",
    "returned_count",
    "reassigned_count",
)
REQUIRED_COLUMNS = ("external_id", "received_at", "category", "unit")
TicketField = Literal[
    "external_id",
    "received_at",
    "dispatched_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "due_at",
    "category",
    "district",
    "street",
    "community",
    "address",
    "content",
    "caller_phone",
    "unit",
    "urgency",
    "status",
    "resolved",
    "satisfaction",
    "returned_count",
    "reassigned_count",
]


class ValueMaps(Strict):
    status: dict[str, TicketStatus] = Field(default_factory=dict)
    satisfaction: dict[str, Satisfaction | None] = Field(default_factory=dict)
    urgency: dict[str, int] = Field(default_factory=dict)
    resolved: dict[str, bool | None] = Field(default_factory=dict)


class SourceDefaults(Strict):
    urgency: int | None = None
    category: str | None = None


class SourceMapping(Strict):
    """How one kind of hotline export maps onto Duban's tickets."""

    name: str = Field(pattern=r"^[a-z0-9_\-]+$", max_length=32)
    description: str = ""
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    timezone: str = "Asia/Shanghai"
    datetime_formats: list[str] = Field(min_length=1)
    columns: dict[TicketField, str]
    values: ValueMaps = ValueMaps()
    unit_by: Literal["code", "name"] = "code"
    unit_aliases: dict[str, str] = Field(default_factory=dict, description="export value -> code")
    defaults: SourceDefaults = SourceDefaults()

    @model_validator(mode="after")
    def _required(self) -> SourceMapping:
        missing = [f for f in REQUIRED_COLUMNS if f not in self.columns]
        if missing:
            raise ValueError(f"columns: must map {', '.join(missing)}")
        if "urgency" not in self.columns and self.defaults.urgency is None:
            raise ValueError("columns: map 'urgency' or set defaults.urgency")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


# ---------------------------------------------------------------- the whole config


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            [f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None


def parse_file(path: Path, model: type[M]) -> M:
    """Read `path` and validate it as `model`, or raise ConfigError naming file, path and value."""
    data = _read_yaml(path)
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            problems.append(f"{path}: {_format_loc(err['loc'])}: {err['msg']}{shown}")
        raise ConfigError(problems) from None


class CityConfig:
    """The validated contents of a config folder; sections load on first use."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError([f"{self.root}: config folder not found (DUBAN_CONFIG_DIR)"])

    def path(self, name: str) -> Path:
        return self.root / name

    @cached_property
    def units(self) -> UnitsFile:
        units = parse_file(self.path("units.yaml"), UnitsFile)
        _check_units(self.path("units.yaml"), units)
        return units

    @cached_property
    def problems(self) -> ProblemsFile:
        problems = parse_file(self.path("problems.yaml"), ProblemsFile)
        _check_problems(self.path("problems.yaml"), problems, {u.code for u in self.units.units})
        return problems

    @cached_property
    def urgency(self) -> UrgencyFile:
        return parse_file(self.path("urgency.yaml"), UrgencyFile)

    @cached_property
    def calendar_file(self) -> CalendarFile:
        path = self.path("calendar.yaml")
        return parse_file(path, CalendarFile) if path.exists() else CalendarFile()

    @cached_property
    def calendar(self) -> Any:  # WorkCalendar; typed loosely to keep import order simple
        from duban.calendar import CalendarError, WorkCalendar

        cal = self.calendar_file
        try:
            return WorkCalendar(cal.holidays, cal.workdays, cal.years)
        except CalendarError as exc:
            raise ConfigError([f"{self.path('calendar.yaml')}: {exc}"]) from None

    @cached_property
    def escalation(self) -> EscalationFile:
        return parse_file(self.path("escalation.yaml"), EscalationFile)

    @cached_property
    def mail(self) -> MailFile:
        return parse_file(self.path("mail.yaml"), MailFile)

    def source(self, name: str) -> SourceMapping:
        path = self.path(f"sources/{name}.yaml")
        if not path.exists():
            known = ", ".join(self.source_names()) or "none"
            raise ConfigError([f"{path}: no such source mapping (known: {known})"])
        mapping = parse_file(path, SourceMapping)
        if mapping.name != name:
            raise ConfigError([f"{path}: name: must match the file name (got {mapping.name!r})"])
        return mapping

    def source_names(self) -> list[str]:
        return sorted(p.stem for p in self.path("sources").glob("*.yaml"))

    def validate_all(self) -> list[str]:
        """Load every section; return every problem found (empty when all is well)."""
        found: list[str] = []
        loaders: list[Callable[[], object]] = [
            lambda: self.units,
            lambda: self.problems,
            lambda: self.urgency,
            lambda: self.calendar,
            lambda: self.escalation,
            lambda: self.mail,
            lambda: _metrics_config(self),
            lambda: _spot_check_config(self),
            lambda: _evaluation_config(self),
            lambda: _lookback_config(self),
            lambda: _schedules_config(self),
        ]
        loaders += [lambda n=n: self.source(n) for n in self.source_names()]  # type: ignore[misc]
        for load in loaders:
            try:
                load()
            except ConfigError as exc:
                # A section that depends on a broken one repeats its errors: say each once.
                found.extend(p for p in exc.problems if p not in found)
        return found


def _spot_check_config(config: CityConfig) -> object:
    from duban.loops.quarterly.sample import (
        failure_level,
        load_spot_check_config,
    )  # imports this module

    spot = load_spot_check_config(config)
    failure_level(spot, config)  # escalate_to names a step of the ladder
    return spot


def _metrics_config(config: CityConfig) -> object:
    from duban.metrics import load_metrics_config  # imports this module: load it late

    return load_metrics_config(config)


def _lookback_config(config: CityConfig) -> object:
    from duban.loops.lookback.findings import (
        load_lookback_config,
    )  # imports this module: load it late

    return load_lookback_config(config.root)


def _schedules_config(config: CityConfig) -> object:
    from duban.config.schedules import FILE_NAME, load_schedules

    if not (config.root / FILE_NAME).exists():
        return None  # only `duban serve` and `duban deploy` need it
    return load_schedules(config.root)


def _evaluation_config(config: CityConfig) -> object:
    from duban.loops.annual.evaluation import (
        load_evaluation_config,
    )  # imports this module: load it late

    return load_evaluation_config(config)


def _check_units(path: Path, units: UnitsFile) -> None:
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


def _check_problems(path: Path, problems_file: ProblemsFile, unit_codes: set[str]) -> None:
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


def load_config(root: Path | str) -> CityConfig:
    return CityConfig(Path(root))
