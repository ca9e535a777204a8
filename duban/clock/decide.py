"""An office decision (`duban decide …`, the `decide` deployment's form): one typed request
that becomes one clock event, recorded through `record_events` (docs/clock.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from duban.clock.store import NewEvent, RecordResult, record_events
from duban.config import CityConfig
from duban.rules.clock import EventKind

Action = Literal[
    "approve_extension",
    "refuse_extension",
    "uphold_appeal",
    "reject_appeal",
    "suspend",
    "resume",
    "request_extension",
    "file_appeal",
]
KIND_OF: dict[str, EventKind] = {
    "approve_extension": "extension_approved",
    "refuse_extension": "extension_refused",
    "uphold_appeal": "appeal_upheld",
    "reject_appeal": "appeal_rejected",
    "suspend": "suspended",
    "resume": "resumed",
    "request_extension": "extension_requested",
    "file_appeal": "appeal_filed",
}
ANSWERS = frozenset({"approve_extension", "refuse_extension", "uphold_appeal", "reject_appeal"})


class Decision(BaseModel):
    """督办决定 An office decision about one ticket."""

    model_config = ConfigDict(
        title="督办决定 Office decision", extra="forbid", str_strip_whitespace=True
    )

    ticket: str = Field(
        min_length=1,
        max_length=100,
        title="工单 Ticket",
        description="The ticket: source:external_id (e.g. duban:T1), or its external id in "
        "the default source. 工单编号。",
    )
    action: Action = Field(
        title="决定 Decision",
        description="approve/refuse an extension, uphold/reject an appeal, suspend/resume; "
        "or record a unit's request or appeal. 批准/不批准延期、申诉成立/不成立、挂起/恢复。",
    )
    at: datetime = Field(
        title="生效时间 Effective time", description="When the decision takes effect (local)."
    )
    request: str | None = Field(
        default=None,
        max_length=200,
        title="所答复的申请 Request answered",
        description="The key of the extension request or appeal this decision answers "
        "(required when the ticket has pending requests). 所答复的申请编号。",
    )
    working_days: int | None = Field(
        default=None, ge=1, le=400, title="延期工作日 Working days added"
    )
    new_due: datetime | None = Field(default=None, title="新办理时限 New deadline")
    reason: str = Field(default="", max_length=500, title="理由 Reason")
    actor: str = Field(default="督办办公室", min_length=1, max_length=200, title="决定人 Actor")
    key: str | None = Field(
        default=None,
        max_length=200,
        title="事件编号 Event key",
        description="Leave empty: derived from the decision, so the same decision twice is "
        "recorded once.",
    )

    def event_key(self) -> str:
        if self.key:
            return self.key
        anchor = self.request if self.action in ANSWERS and self.request else None
        return f"office:{self.action}:{anchor or self.at.isoformat(timespec='seconds')}"

    def item_ref(self, default_source: str) -> str:
        return self.ticket if ":" in self.ticket else f"{default_source}:{self.ticket}"

    def to_event(self, default_source: str = "duban", origin: str = "office") -> NewEvent:
        payload: dict[str, Any] = {}
        if self.request:
            payload["request"] = self.request
        if self.working_days is not None:
            payload["working_days"] = self.working_days
        if self.new_due is not None:
            payload["new_due"] = self.new_due
        return NewEvent(
            item_kind="ticket",
            item_ref=self.item_ref(default_source),
            key=self.event_key(),
            kind=KIND_OF[self.action],
            at=self.at,
            actor=self.actor,
            reason=self.reason,
            payload=payload,
            origin=origin,
            origin_ref=None,
        )


def record_decision(
    engine: Engine,
    config: CityConfig,
    decision: Decision,
    *,
    now: datetime | None = None,
    default_source: str = "duban",
) -> RecordResult:
    """Record one decision, or refuse it whole with the reason (the rules, an unknown or
    closed ticket); the ticket's clock is replayed as of `now` (default: now) or the
    decision's time, whichever is later."""
    as_of = max(now or datetime.now(), decision.at)
    event = decision.to_event(default_source)
    return record_events(engine, [event], as_of=as_of, all_or_nothing=True, config=config)
