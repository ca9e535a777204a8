"""Loads and validates config/*.yaml into typed models, one section per file of this package.

Every error names the file, the path inside it and the bad value, e.g.
``config/units.yaml: units[3].supervisor: unknown unit 'xc-999'``.

`load_config(root)` gives a `CityConfig`; each section is a cached property of it, read on
first use: the city's own (`city` — city.yaml, the time zone —, `units`, `problems`,
`urgency`, `calendar`, `escalation`, `mail`, `source(name)`: duban/config/city.py,
sources.py) and each loop's (`metrics`,
`spot_check`, `evaluation`, `lookback`, `schedules`, `clock`: metrics.py, quarterly.py,
annual.py, lookback.py, schedules.py, clock.py). `validate_all()` loads them all and runs
the checks across sections.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from duban.calendar import CalendarError, WorkCalendar
from duban.config.annual import FILE_NAME as EVALUATION_FILE
from duban.config.annual import EvaluationConfig, OldItemsConfig, PerItemConfig
from duban.config.base import (
    ConfigError,
    M,
    Strict,
    check_time_zone,
    format_loc,
    parse_file,
    parse_optional,
)
from duban.config.city import (
    CITY_FILE,
    DEFAULT_TIMEZONE,
    CalendarFile,
    CityFile,
    EscalationFile,
    LadderStep,
    LadderTrigger,
    MailFile,
    ProblemConfig,
    ProblemsFile,
    Recipient,
    UnitConfig,
    UnitsFile,
    UrgencyFile,
    UrgencyLevel,
    WarningsConfig,
    check_problems,
    check_units,
    city_timezone,
)
from duban.config.clock import FILE_NAME as CLOCK_FILE
from duban.config.clock import ClockConfig, ClockRules
from duban.config.lookback import FILE_NAME as LOOKBACK_FILE
from duban.config.lookback import LookbackConfig, LookbackSchedule
from duban.config.metrics import FILE_NAME as METRICS_FILE
from duban.config.metrics import MetricsConfig, SupervisedStreets
from duban.config.quarterly import SpotCheckConfig, failure_level, load_spot_check, secret_bytes
from duban.config.schedules import FILE_NAME as SCHEDULES_FILE
from duban.config.schedules import LoopSchedule, SchedulesFile, load_schedules
from duban.config.sources import (
    DATETIME_FIELDS,
    RATE_FIELDS,
    REQUIRED_COLUMNS,
    TICKET_FIELDS,
    SourceDefaults,
    SourceMapping,
    TicketField,
    ValueMaps,
    source_name_problem,
)

__all__ = [
    "CITY_FILE",
    "DATETIME_FIELDS",
    "DEFAULT_TIMEZONE",
    "RATE_FIELDS",
    "REQUIRED_COLUMNS",
    "TICKET_FIELDS",
    "CalendarFile",
    "CityConfig",
    "CityFile",
    "ClockConfig",
    "ClockRules",
    "ConfigError",
    "EscalationFile",
    "EvaluationConfig",
    "LadderStep",
    "LadderTrigger",
    "LookbackConfig",
    "LookbackSchedule",
    "LoopSchedule",
    "MailFile",
    "MetricsConfig",
    "OldItemsConfig",
    "PerItemConfig",
    "ProblemConfig",
    "ProblemsFile",
    "Recipient",
    "SchedulesFile",
    "SourceDefaults",
    "SourceMapping",
    "SpotCheckConfig",
    "Strict",
    "SupervisedStreets",
    "TicketField",
    "UnitConfig",
    "UnitsFile",
    "UrgencyFile",
    "UrgencyLevel",
    "ValueMaps",
    "WarningsConfig",
    "check_time_zone",
    "city_timezone",
    "format_loc",
    "load_config",
    "load_schedules",
    "parse_file",
    "parse_optional",
    "secret_bytes",
]


class _Section(cached_property[M]):
    """A section of CityConfig read from one file that must exist: a cached property,
    loaded once per CityConfig."""

    def __init__(self, file_name: str, model: type[M]) -> None:
        super().__init__(lambda config: parse_file(config.path(file_name), model))
        self.__doc__ = f"{file_name} as {model.__name__}."


class _OptionalSection(cached_property[M]):
    """A section of CityConfig read from a file that may be absent (then the model's
    defaults): a cached property, loaded once per CityConfig."""

    def __init__(self, file_name: str, model: type[M]) -> None:
        super().__init__(lambda config: parse_optional(config.path(file_name), model))
        self.__doc__ = f"{file_name}; the defaults of {model.__name__} when it is absent."


class CityConfig:
    """The validated contents of a config folder; sections load on first use, once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError([f"{self.root}: config folder not found (DUBAN_CONFIG_DIR)"])

    def path(self, name: str) -> Path:
        return self.root / name

    # ------------------------------------------------------------ the city's own sections

    city = _OptionalSection(CITY_FILE, CityFile)  # the city's time zone

    @cached_property
    def units(self) -> UnitsFile:
        units = parse_file(self.path("units.yaml"), UnitsFile)
        check_units(self.path("units.yaml"), units)
        return units

    @cached_property
    def problems(self) -> ProblemsFile:
        problems = parse_file(self.path("problems.yaml"), ProblemsFile)
        check_problems(self.path("problems.yaml"), problems, {u.code for u in self.units.units})
        return problems

    urgency = _Section("urgency.yaml", UrgencyFile)

    calendar_file = _OptionalSection("calendar.yaml", CalendarFile)

    @cached_property
    def calendar(self) -> WorkCalendar:
        cal = self.calendar_file
        try:
            return WorkCalendar(cal.holidays, cal.workdays, cal.years)
        except CalendarError as exc:
            raise ConfigError([f"{self.path('calendar.yaml')}: {exc}"]) from None

    escalation = _Section("escalation.yaml", EscalationFile)

    mail = _Section("mail.yaml", MailFile)

    def source(self, name: str) -> SourceMapping:
        """The mapping config/sources/<name>.yaml; ConfigError when `name` is not a source
        name (nothing is read then) or the file is missing or invalid."""
        problem = source_name_problem(name)
        if problem is not None:
            raise ConfigError([f"{self.path('sources')}: {problem}"])
        path = self.path(f"sources/{name}.yaml")
        if not path.exists():
            known = ", ".join(self.source_names()) or "none"
            raise ConfigError([f"{path}: no such source mapping (known: {known})"])
        mapping = parse_file(path, SourceMapping)
        if mapping.name != name:
            raise ConfigError([f"{path}: name: must match the file name (got {mapping.name!r})"])
        if mapping.deadline == "catalogue" and not self.urgency.catalogue:
            raise ConfigError(
                [f"{path}: deadline: catalogue needs a `catalogue` in {self.path('urgency.yaml')}"]
            )
        return mapping

    def source_names(self) -> list[str]:
        return sorted(p.stem for p in self.path("sources").glob("*.yaml"))

    @cached_property
    def sources_lacking(self) -> dict[str, frozenset[str]]:
        """Per rate of `RATE_FIELDS`: the sources whose mapping does not map the field it
        needs. Their tickets are not in that rate's denominator (docs/metrics.md); tickets of
        a source without a mapping here count as carrying every field."""
        mappings = [self.source(name) for name in self.source_names()]
        return {
            rate: frozenset(m.name for m in mappings if rate in m.unmeasured_rates())
            for rate in RATE_FIELDS
        }

    # ------------------------------------------------------------ the loops' sections

    metrics = _OptionalSection(METRICS_FILE, MetricsConfig)  # the weekly and monthly loops

    @cached_property
    def spot_check(self) -> SpotCheckConfig:
        """spot_check.yaml (quarterly loop) with the secret from DUBAN_SPOT_CHECK_SECRET."""
        return load_spot_check(self.root)

    @cached_property
    def spot_check_failure_level(self) -> int:
        """The ladder level a failed spot check is recorded with (its `escalate_to` step)."""
        return failure_level(self.spot_check, self.escalation, self.root)

    evaluation = _OptionalSection(EVALUATION_FILE, EvaluationConfig)  # the annual loop
    lookback = _OptionalSection(LOOKBACK_FILE, LookbackConfig)  # the scheduled look-backs
    clock_file = _OptionalSection(CLOCK_FILE, ClockConfig)  # the supervision clock

    @property
    def clock(self) -> ClockRules:
        """The rules of the supervision clock (config/clock.yaml `clock:`)."""
        return self.clock_file.clock

    @cached_property
    def schedules(self) -> SchedulesFile:
        """schedules.yaml (`duban serve`, `duban deploy`); ConfigError when it is absent."""
        return load_schedules(self.root)

    def zone_warnings(self, city_timezone: str, origin: str) -> list[str]:
        """A line for each source mapping whose `timezone` is not the city's: fine (its times
        are converted), but said, so that a wrong city zone does not go unnoticed."""
        found = []
        for name in self.source_names():
            try:
                zone = self.source(name).timezone
            except ConfigError:
                continue  # validate_all reports it
            if zone is not None and zone != city_timezone:
                found.append(
                    f"{self.path(f'sources/{name}.yaml')}: timezone: {zone} is not the city's "
                    f"{city_timezone} (from {origin}); its times are converted to {city_timezone}"
                )
        return found

    def validate_all(self) -> list[str]:
        """Load every section; return every problem found (empty when all is well)."""
        found: list[str] = []
        loaders: list[Callable[[], object]] = [
            lambda: self.city,
            lambda: self.units,
            lambda: self.problems,
            lambda: self.urgency,
            lambda: self.calendar,
            lambda: self.escalation,
            lambda: self.mail,
            lambda: self.metrics,
            lambda: self.spot_check_failure_level,  # escalate_to names a step of the ladder
            lambda: self.evaluation,
            lambda: self.lookback,
            lambda: self.clock,
            # Only `duban serve` and `duban deploy` need schedules.yaml.
            lambda: self.schedules if self.path(SCHEDULES_FILE).exists() else None,
        ]
        loaders += [lambda n=n: self.source(n) for n in self.source_names()]  # type: ignore[misc]
        for load in loaders:
            try:
                load()
            except ConfigError as exc:
                # A section that depends on a broken one repeats its errors: say each once.
                found.extend(p for p in exc.problems if p not in found)
        return found


def load_config(root: Path | str) -> CityConfig:
    return CityConfig(Path(root))
