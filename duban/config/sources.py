"""config/sources/<name>.yaml: how one kind of hotline export maps onto Duban's tickets."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from duban.config.base import Strict, check_time_zone
from duban.db.models import Satisfaction, TicketStatus

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
TICKET_FIELDS: tuple[str, ...] = get_args(TicketField)
DatetimeField = Literal[
    "received_at", "dispatched_at", "first_response_at", "resolved_at", "closed_at", "due_at"
]
DATETIME_FIELDS: tuple[str, ...] = get_args(DatetimeField)
# Where a ticket's deadline comes from (docs/sources.md, "Deadlines"): the export's own due time
# wins in every mode; a row without one gets
# - default_level: the handling limit of its urgency level (mapped, or defaults.urgency, or
#   config/urgency.yaml default_level);
# - catalogue: the level of its category in config/urgency.yaml `catalogue` (派单目录), a
#   category not listed there as default_level;
# - export_only: no deadline (无办理时限): out of the on-time rate, never late or escalated.
DeadlineMode = Literal["default_level", "catalogue", "export_only"]
# A date-only column: the time of day it stands for (start 00:00:00, end 23:59:59).
DayEnd = Literal["start", "end"]
REQUIRED_COLUMNS = ("external_id", "received_at", "category", "unit")
# The rates (docs/metrics.md) and the ticket field each needs from the export: a mapping that
# leaves the field out declares that its exports have no data for that rate (missing, not 0).
RATE_FIELDS: dict[str, str] = {
    "response_rate": "first_response_at",
    "on_time_rate": "closed_at",
    "resolution_rate": "resolved",
    "satisfaction_rate": "satisfaction",
}


class ValueMaps(Strict):
    status: dict[str, TicketStatus] = Field(default_factory=dict)
    satisfaction: dict[str, Satisfaction | None] = Field(default_factory=dict)
    urgency: dict[str, int] = Field(default_factory=dict)
    resolved: dict[str, bool | None] = Field(default_factory=dict)


class SourceDefaults(Strict):
    urgency: int | None = None
    category: str | None = None


# The supervision clock's columns a hotline export may carry (docs/sources.md, "The clock's
# columns"): each becomes an event with a deterministic key (docs/clock.md).
ClockColumn = Literal[
    "extended_due",
    "extensions",
    "suspended_days",
    "evaluated",
    "redo_count",
    "callback",
    "callback_at",
]
# The columns of an event export (one row per event, docs/sources.md "Event exports").
EventColumn = Literal[
    "ticket", "kind", "at", "key", "actor", "reason", "working_days", "new_due", "request", "unit"
]


class EventExport(Strict):
    """An event export of this source: one row per clock event."""

    columns: dict[EventColumn, str]
    kinds: dict[str, str] = Field(
        default_factory=dict, description="export word -> event kind (docs/clock.md)"
    )

    @model_validator(mode="after")
    def _required(self) -> EventExport:
        missing = [f for f in ("ticket", "kind", "at") if f not in self.columns]
        if missing:
            raise ValueError(f"events.columns: must map {', '.join(missing)}")
        return self


class SourceMapping(Strict):
    """How one kind of hotline export maps onto Duban's tickets."""

    name: str = Field(pattern=r"^[a-z0-9_\-]+$", max_length=32)
    description: str = ""
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    timezone: str | None = Field(default=None, description="the export's; unset: the city's")
    datetime_formats: list[str] = Field(min_length=1)
    columns: dict[TicketField, str]
    date_only: dict[DatetimeField, DayEnd] = Field(
        default_factory=dict,
        description="time columns that carry a date (a bare date or midnight): start or end "
        "of that day",
    )
    values: ValueMaps = ValueMaps()
    deadline: DeadlineMode = Field(
        default="default_level",
        description="where a row without a due time gets its deadline: default_level, "
        "catalogue (by category, config/urgency.yaml) or export_only (none)",
    )
    unit_by: Literal["code", "name"] = "code"
    unit_aliases: dict[str, str] = Field(default_factory=dict, description="export value -> code")
    defaults: SourceDefaults = SourceDefaults()
    clock_columns: dict[ClockColumn, str] = Field(
        default_factory=dict,
        description="clock columns of the export (docs/sources.md): extended_due (延期后时限), "
        "extensions (延期次数), suspended_days (挂起工作日), evaluated (是否纳入考核), "
        "redo_count (重办次数), callback (回访结果) with callback_at (回访时间)",
    )
    events: EventExport | None = Field(default=None, description="the source's event export")

    @model_validator(mode="after")
    def _required(self) -> SourceMapping:
        if ("callback" in self.clock_columns) != ("callback_at" in self.clock_columns):
            raise ValueError("clock_columns: callback and callback_at go together")
        missing = [f for f in REQUIRED_COLUMNS if f not in self.columns]
        if missing:
            raise ValueError(f"columns: must map {', '.join(missing)}")
        if "urgency" not in self.columns and self.defaults.urgency is None:
            raise ValueError("columns: map 'urgency' or set defaults.urgency")
        unmapped = [f for f in self.date_only if f not in self.columns]
        if unmapped:
            raise ValueError(f"date_only: {', '.join(unmapped)} not mapped in columns")
        if self.deadline == "export_only" and "due_at" not in self.columns:
            raise ValueError("deadline: export_only needs a due_at column in columns")
        if self.date_only.get("received_at", "start") != "start":
            raise ValueError("date_only: received_at can only be 'start' (00:00:00)")
        return self

    def unmeasured_rates(self) -> list[str]:
        """The rates of `RATE_FIELDS` this source's exports cannot support."""
        return [rate for rate, name in RATE_FIELDS.items() if name not in self.columns]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)

    def zone(self, city_timezone: str) -> str:
        """The export's time zone: its own `timezone`, else the city's."""
        return self.timezone or city_timezone
