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
DATETIME_FIELDS = tuple(f for f in TICKET_FIELDS if f.endswith("_at"))
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

    def unmeasured_rates(self) -> list[str]:
        """The rates of `RATE_FIELDS` this source's exports cannot support."""
        return [rate for rate, name in RATE_FIELDS.items() if name not in self.columns]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_time_zone(value)
