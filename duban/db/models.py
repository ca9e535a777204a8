"""The ORM: what Duban keeps.

All times are naive datetimes in the city's local time (DUBAN_TIMEZONE); importers convert
from the export's own time zone. Dates of plan items are calendar dates.

Keys that make re-runs safe (see docs/architecture.md):
ticket (source, external_id); escalation (item_kind, item_id, step);
notice (loop, period, audience, kind); delivery (notice_id, recipient);
spot-check sample (quarter, item_kind, item_id); publication (loop, period, version);
published figure (publication, unit, figure); published file (publication, name).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from duban.rules import places

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT keys on PostgreSQL, INTEGER (rowid alias, autoincrementing) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _place_key_of_row(context: DefaultExecutionContext) -> str | None:
    row = context.get_current_parameters()
    return places.place_key(row.get("district"), row.get("street"), row.get("address"))


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the values (readable in SQL), as VARCHAR + CHECK, portable across dialects.
    return Enum(
        cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        create_constraint=True,
        length=24,
        name=cls.__name__.lower(),
    )


class UnitKind(enum.StrEnum):
    city = "city"
    district = "district"
    street = "street"  # street or township (街道/乡镇)
    community = "community"
    department = "department"  # city department (委办局)
    company = "company"  # public-service company


class Approach(enum.StrEnum):
    reform = "reform"  # 改革
    governance = "governance"  # 治理
    rectification = "rectification"  # 整治


class TicketStatus(enum.StrEnum):
    open = "open"  # received or dispatched, nobody has answered yet
    in_progress = "in_progress"
    closed = "closed"
    reopened = "reopened"  # by a spot check or look-back
    cancelled = "cancelled"  # 作废 (withdrawn, referred out): out of every rate and the ladder
    invalid = "invalid"  # 无效 (not a valid request): out of every rate and the ladder


# Statuses whose tickets count in no rate, no ranking and no ladder (shown as counts only).
EXCLUDED_STATUSES: tuple[TicketStatus, ...] = (TicketStatus.cancelled, TicketStatus.invalid)


class Satisfaction(enum.StrEnum):
    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    dissatisfied = "dissatisfied"


class PlanItemStatus(enum.StrEnum):
    planned = "planned"
    in_progress = "in_progress"
    done = "done"


class ItemKind(enum.StrEnum):
    ticket = "ticket"
    plan_task = "plan_task"
    policy = "policy"


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    refused = "refused"  # e.g. recipient outside the allowed mail domains: never sent
    failed = "failed"  # refused for good by the server (5xx) or unbuildable; an admin re-sends
    parked = "parked"  # failed `park_after` runs in a row; an admin re-sends


problem_cooperating_units = Table(
    "problem_cooperating_units",
    Base.metadata,
    Column("problem_id", ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_id", ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
)


class Unit(Base):
    """A responsible organisation (承办单位), in a hierarchy."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[UnitKind] = mapped_column(_enum(UnitKind))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Unit | None] = relationship(remote_side=[id], foreign_keys=[parent_id])
    supervisor: Mapped[Unit | None] = relationship(remote_side=[id], foreign_keys=[supervisor_id])


class Problem(Base):
    """One of the chronic problems of One Question a Month (每月一题)."""

    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100))
    approach: Mapped[Approach] = mapped_column(_enum(Approach))
    year: Mapped[int] = mapped_column(Integer)
    focus_month: Mapped[int | None] = mapped_column(SmallInteger)
    lead_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    # Hotline ticket categories that count towards this problem.
    ticket_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    plan: Mapped[str | None] = mapped_column(Text)  # the solution plan (解决方案): its measures

    lead_unit: Mapped[Unit] = relationship(foreign_keys=[lead_unit_id])
    cooperating_units: Mapped[list[Unit]] = relationship(secondary=problem_cooperating_units)


class PlanTask(Base):
    """A dated task of a problem's task list (任务清单). Not a Prefect task."""

    __tablename__ = "plan_tasks"
    __table_args__ = (UniqueConstraint("problem_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    owner_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    start_month: Mapped[date | None] = mapped_column(Date)  # first day of the month
    due_month: Mapped[date] = mapped_column(Date, index=True)  # first day of the due month
    status: Mapped[PlanItemStatus] = mapped_column(_enum(PlanItemStatus))
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1, as reported
    completed_on: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[str | None] = mapped_column(Text)


class Responsibility(Base):
    """A line of a problem's responsibility list (责任清单): which unit does what."""

    __tablename__ = "responsibilities"
    __table_args__ = (UniqueConstraint("problem_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    duty: Mapped[str] = mapped_column(Text)


class Policy(Base):
    """A policy of a problem's policy list (政策清单), to be issued this year."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("problem_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    owner_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    due_month: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[PlanItemStatus] = mapped_column(_enum(PlanItemStatus))
    issued_on: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[str | None] = mapped_column(Text)


class Ticket(Base):
    """One citizen request (诉求/工单) from the hotline."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_tickets_unit_received", "unit_id", "received_at"),
        Index("ix_tickets_received", "received_at"),
        Index("ix_tickets_problem_received", "problem_id", "received_at"),
        # open tickets by deadline (the daily ladder, unit lists): small, since most are closed
        Index(
            "ix_tickets_open_due",
            "due_at",
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        Index("ix_tickets_street_received", "street", "received_at"),
        # look-back and repeat complaints: tickets at the same place (rules/places.py)
        Index("ix_tickets_place_received", "place_key", "received_at"),
        Index("ix_tickets_community_received", "community", "received_at"),
        Index("ix_tickets_closed", "closed_at"),
        Index("ix_tickets_first_response", "first_response_at"),
        Index("ix_tickets_due", "due_at"),  # tickets due in a period (on-time closure rate)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # None: no handling limit (无办理时限) — out of the on-time rate, never late or escalated.
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    category: Mapped[str] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100))
    street: Mapped[str | None] = mapped_column(String(100))
    community: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    # district|street|normalised address (rules.places.place_key), set at import; the default
    # covers tickets inserted any other way. None: no address, at no place.
    place_key: Mapped[str | None] = mapped_column(
        String(places.MAX_LENGTH), default=_place_key_of_row
    )
    content: Mapped[str | None] = mapped_column(Text)  # citizen text: untrusted
    caller_phone: Mapped[str | None] = mapped_column(String(40))  # personal data
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"))
    urgency: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus))
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[Satisfaction | None] = mapped_column(_enum(Satisfaction))
    returned_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    reassigned_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    row_hash: Mapped[int] = mapped_column(BigInteger)  # of the imported fields: change detection
    imported_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    # The supervision clock (docs/clock.md), materialised from the ticket's events
    # (clock_events): `due_at` above is the EFFECTIVE deadline every loop reads;
    # `base_due_at` the deadline the import fixed. Without events the two are equal.
    base_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the working-day calendar version that produced due_at (package release + checksum)
    clock_calendar: Mapped[str | None] = mapped_column(String(40))
    # False: not counted for evaluation (不纳入考核: upheld appeal), still shown, marked
    evaluated: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    excluded_reason: Mapped[str | None] = mapped_column(String(200))
    suspended_since: Mapped[datetime | None] = mapped_column(DateTime)  # an open suspension
    ladder_round: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    redo_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    extension_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # events in force (0: the clock was never touched, nothing to replay)
    clock_events: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ImportRun(Base):
    """One import of an export file (tickets, plan, ledger, checks) and what came of it."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    source: Mapped[str | None] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    read: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    report_path: Mapped[str | None] = mapped_column(String(500))


class QuarantinedRow(Base):
    """A row of an import that failed validation, with every reason; the good rows went on.

    A ticket export's bad row is recorded once per (source, file checksum, row): importing
    the same file again finds it recorded (`import_run_id` is the first run that found it).
    A plan workbook's are keyed the same way with `source` "plan:<sheet key>" (e.g.
    "plan:tasks"); rows recorded before migration 0006 have no checksum.
    """

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source", "file_sha256", "row_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    import_run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"), index=True)
    source: Mapped[str | None] = mapped_column(String(32))
    file_sha256: Mapped[str | None] = mapped_column(String(64))  # of the file's bytes, hex
    file_name: Mapped[str] = mapped_column(String(500))
    sheet: Mapped[str | None] = mapped_column(String(100))
    row_number: Mapped[int] = mapped_column(Integer)  # as a spreadsheet shows it: header is row 1
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{field, value, reason}]
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)


class Escalation(Base):
    """One step of the escalation ladder applied to one item, recorded once."""

    __tablename__ = "escalations"
    __table_args__ = (
        # a redo starts a fresh ladder: round 2's steps beside round 1's (docs/clock.md)
        UniqueConstraint("item_kind", "item_id", "step", "round"),
        Index("ix_escalations_unit_applied", "unit_id", "applied_at"),
        # the daily report's window: the steps due in it, or recorded by this run (0015)
        Index("ix_escalations_due_on", "due_on"),
        Index("ix_escalations_applied", "applied_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_kind: Mapped[ItemKind] = mapped_column(_enum(ItemKind))
    item_id: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(SmallInteger)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    due_on: Mapped[date] = mapped_column(Date)  # the working day the step became due
    applied_at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text)
    round: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")


class ClockEvent(Base):
    """One entry of an item's append-only event log (docs/clock.md): never updated in
    place; a correction is a new event whose `supersedes` names the keys it corrects. The
    key is unique per item, so a re-run or re-import records nothing twice."""

    __tablename__ = "clock_events"
    __table_args__ = (
        UniqueConstraint("item_kind", "item_id", "key"),
        Index("ix_clock_events_recorded", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_kind: Mapped[ItemKind] = mapped_column(_enum(ItemKind))
    item_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # rules.clock.EventKind
    at: Mapped[datetime] = mapped_column(DateTime)  # effective time
    actor: Mapped[str] = mapped_column(String(200), default="")  # office, a unit, the export
    reason: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    supersedes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # where it came from: export, event_export, office (decide), workbook, calendar, demo
    origin: Mapped[str] = mapped_column(String(32))
    origin_ref: Mapped[str | None] = mapped_column(String(500))  # file + row, run id
    recorded_at: Mapped[datetime] = mapped_column(DateTime)


class ClockRefusal(Base):
    """A clock event that was refused (docs/clock.md, "Refusals"): what was asked, of which
    item, when and from where, and why (a code of duban.rules.clock.RefusalCode and the
    reason in Chinese and English). Recorded once per item, event key and code, so a re-run,
    re-import or re-read records nothing twice. item_id: none for an unknown ticket."""

    __tablename__ = "clock_refusals"
    __table_args__ = (
        UniqueConstraint("item_kind", "item_ref", "event_key", "code"),
        Index("ix_clock_refusals_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_kind: Mapped[str] = mapped_column(String(24))  # as asked (ticket)
    item_ref: Mapped[str] = mapped_column(String(200))  # source:external_id
    item_id: Mapped[int | None] = mapped_column(BigInteger)  # the ticket, when it exists
    event_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # the kind asked
    at: Mapped[datetime | None] = mapped_column(DateTime)  # asked at (none: not a time)
    actor: Mapped[str] = mapped_column(String(200), default="")
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(32))
    origin_ref: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime] = mapped_column(DateTime)


class Notice(Base):
    """A rendered report (通报/日报…) for one audience, archived on disk."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("loop", "period", "audience", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loop: Mapped[str] = mapped_column(String(24))
    period: Mapped[str] = mapped_column(String(24))
    audience: Mapped[str] = mapped_column(String(64))  # a unit code, or "office"
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    html_path: Mapped[str] = mapped_column(String(500))
    text_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Archived files sent with the notice: a PNG that the HTML shows as <img src="NAME.png">
    # goes inline (cid:), anything else (a ledger workbook) as an attachment.
    attachments: Mapped[list[str] | None] = mapped_column(JSON)


class Delivery(Base):
    """The outbox: one e-mail of one notice to one recipient."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notice_id", "recipient"),
        Index("ix_deliveries_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(320))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Runs in which this delivery failed on its own (not the server being down): parked at
    # config/mail.yaml park_after.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The connection was lost after the message was sent: the server may have it. Tried once
    # more, by a later run; lost again, it is failed.
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SpotCheckSample(Base):
    """An item drawn for a quarterly spot check (抽查核验), and its verdict."""

    __tablename__ = "spot_check_samples"
    __table_args__ = (UniqueConstraint("quarter", "item_kind", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quarter: Mapped[str] = mapped_column(String(8))
    item_kind: Mapped[ItemKind] = mapped_column(_enum(ItemKind))
    item_id: Mapped[int] = mapped_column(BigInteger)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    seed: Mapped[str] = mapped_column(String(128))
    drawn_at: Mapped[datetime] = mapped_column(DateTime)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime)


class LookbackFinding(Base):
    """A closed item after whose closure matching tickets came back (回头看)."""

    __tablename__ = "lookback_findings"
    __table_args__ = (UniqueConstraint("run_id", "item_kind", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    item_kind: Mapped[ItemKind] = mapped_column(_enum(ItemKind))
    item_id: Mapped[int] = mapped_column(BigInteger)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    recurrences: Mapped[int] = mapped_column(Integer)
    first_recurrence_id: Mapped[int | None] = mapped_column(BigInteger)
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)


class Run(Base):
    """One run of a supervision loop, for the record and the Prefect artifact."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_loop_period", "loop", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loop: Mapped[str] = mapped_column(String(24))
    period: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    worker: Mapped[str | None] = mapped_column(String(64))  # host:pid, to tell a dead run


class AuditRecord(Base):
    """Who changed what, when, and from which file: every update from outside is traced."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(64))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str | None] = mapped_column(String(500))


class Publication(Base):
    """A bulletin is a record (docs/monthly-bulletin.md, "Records and corrections"): version 0
    of (loop, period) is the bulletin as rendered and approved, version n its n-th correction
    (更正). `published_at` is NULL while its notices are drafts; once approved, its figures
    and its files (below) are what was published, whatever the data says later."""

    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("loop", "period", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loop: Mapped[str] = mapped_column(String(24))
    period: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer)  # 0: the bulletin; n: the n-th correction
    notice_kind: Mapped[str] = mapped_column(String(32))  # the kind of its notices
    created_at: Mapped[datetime] = mapped_column(DateTime)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)


class PublishedFigure(Base):
    """One figure a publication shows, as it shows it (text; NULL: missing, never zero).
    `unit` is the unit code the figure is about, or "*" for a city-wide figure."""

    __tablename__ = "published_figures"
    __table_args__ = (UniqueConstraint("publication_id", "unit", "figure"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    publication_id: Mapped[int] = mapped_column(
        ForeignKey("publications.id", ondelete="CASCADE"), index=True
    )
    unit: Mapped[str] = mapped_column(String(64))
    figure: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(300))  # what a reader sees, e.g. 建国门街道 满意率
    value: Mapped[str | None] = mapped_column(String(300))


class PublishedFile(Base):
    """A rendered file of a publication, frozen when it was approved: its bytes and SHA-256.
    A re-run restores it byte for byte (`path`: where it was archived)."""

    __tablename__ = "published_files"
    __table_args__ = (UniqueConstraint("publication_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    publication_id: Mapped[int] = mapped_column(
        ForeignKey("publications.id", ondelete="CASCADE"), index=True
    )
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    name: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
