"""`record_events` and `apply_clock`: the event log in the database, the clock replayed from
it by `duban.rules.clock.replay` and written onto the ticket (docs/clock.md, "Storing")."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import chinese_calendar
from sqlalchemy import Engine, Table, and_, func, or_, select, update
from sqlalchemy.engine import Connection

from duban.calendar import CalendarError, WorkCalendar
from duban.config import CityConfig, ClockRules, load_config
from duban.db import insert_ignore
from duban.db.models import ClockEvent as EventRow
from duban.db.models import ClockRefusal, ItemKind, Ticket, TicketStatus, Unit
from duban.rules.clock import (
    KINDS,
    ClockEvent,
    ClockStart,
    ClockState,
    EventKind,
    RefusalCode,
    replay,
)
from duban.rules.clock.correction import corrected_due
from duban.rules.clock.log import effective_events

EVENTS = cast(Table, EventRow.__table__)
REFUSALS = cast(Table, ClockRefusal.__table__)
REFUSAL_KEY = ["item_kind", "item_ref", "event_key", "code"]
TICKETS = cast(Table, Ticket.__table__)
UNITS = cast(Table, Unit.__table__)

# Where an event came from (clock_events.origin).
ORIGINS = (
    "export", "event_export", "office", "workbook", "calendar", "spot_check", "lookback", "demo",
)  # fmt: skip
# Origins that are decisions of the office (or collected for it): refused on a closed ticket
# for the kinds that only make sense while it is open.
DECISION_ORIGINS = frozenset({"office", "workbook"})
# (KINDS orders them extension_requested … redispatched, one after the other.)
OPEN_ONLY_KINDS = frozenset(
    KINDS[KINDS.index("extension_requested") : KINDS.index("redispatched") + 1]
)
CLOSED_STATUSES = (TicketStatus.closed, TicketStatus.cancelled, TicketStatus.invalid)
# The payload keys an event may carry, and their types (docs/clock.md, "The event log").
PAYLOAD_TYPES: dict[str, type] = {
    "working_days": int,
    "new_due": datetime,
    "request": str,
    "unit": str,
    "value": str,  # the export's own value the event was read from
}
DATETIME_KEYS = frozenset(k for k, t in PAYLOAD_TYPES.items() if t is datetime)
BATCH = 2000
_REASON_LEN = 200


@dataclass(frozen=True)
class NewEvent:
    """One event to record; validated before anything is written.

    item_ref: a ticket as "<source>:<external_id>", or its database id as a string.
    payload: see PAYLOAD_TYPES (datetimes as datetime or ISO text). origin: one of ORIGINS;
    origin_ref: where exactly (file and row, sheet, run id), repeated in every refusal.
    """

    item_kind: str
    item_ref: str
    key: str
    kind: EventKind
    at: datetime
    actor: str
    reason: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    supersedes: tuple[str, ...] = ()
    origin: str = "office"
    origin_ref: str | None = None


@dataclass(frozen=True)
class Refused:
    """An event that was not recorded, and why (in Chinese and English; `code`: one of
    duban.rules.clock.REFUSAL_CODES — a row that cannot be read as an event is malformed)."""

    item_ref: str
    key: str
    reason: str
    origin_ref: str | None = None
    code: RefusalCode = "malformed"

    def line(self) -> str:
        where = f"{self.origin_ref}: " if self.origin_ref else ""
        return f"{where}{self.item_ref} {self.key}: {self.reason}"


@dataclass
class RecordResult:
    recorded: list[NewEvent] = field(default_factory=list)
    already: list[NewEvent] = field(default_factory=list)  # the key was recorded before
    refused: list[Refused] = field(default_factory=list)
    changed: int = 0  # tickets whose materialised clock changed

    @property
    def ok(self) -> bool:
        return not self.refused

    def line(self) -> str:
        return (
            f"recorded {len(self.recorded)}, already recorded {len(self.already)}, "
            f"refused {len(self.refused)}; tickets changed {self.changed}"
        )


# ---------------------------------------------------------------------------- calendar


def calendar_version(calendar_path: Path | str | None) -> str:
    """The working-day calendar's version: chinese-calendar's release and the first 12 hex
    digits of the SHA-256 of config/calendar.yaml ("-" when the file is absent)."""
    release = str(getattr(chinese_calendar, "__version__", "?"))
    path = Path(calendar_path) if calendar_path is not None else None
    digest = "-"
    if path is not None and path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"cc{release}:{digest}"


# ---------------------------------------------------------------------------- context


@dataclass
class _Context:
    config: CityConfig
    calendar: WorkCalendar
    rules: ClockRules
    version: str

    @classmethod
    def of(cls, config: CityConfig | None) -> _Context:
        if config is None:
            from duban.settings import get_settings

            config = load_config(get_settings().config_dir)
        return cls(
            config,
            config.calendar,
            config.clock,
            calendar_version(config.path("calendar.yaml")),
        )

    def level_days(self, urgency: int) -> int:
        try:
            return self.config.urgency.limit(urgency).working_days
        except (KeyError, LookupError, ValueError):
            return self.config.urgency.limit(self.config.urgency.default_level).working_days


_TICKET_COLUMNS = (
    TICKETS.c.id,
    TICKETS.c.source,
    TICKETS.c.external_id,
    TICKETS.c.received_at,
    TICKETS.c.dispatched_at,
    TICKETS.c.base_due_at,
    TICKETS.c.due_at,
    TICKETS.c.urgency,
    TICKETS.c.category,
    TICKETS.c.status,
    TICKETS.c.clock_calendar,
    TICKETS.c.evaluated,
    TICKETS.c.excluded_reason,
    TICKETS.c.suspended_since,
    TICKETS.c.ladder_round,
    TICKETS.c.redo_count,
    TICKETS.c.extension_count,
    TICKETS.c.clock_events,
    UNITS.c.code.label("unit_code"),
)


def _tickets_query() -> Any:
    return select(*_TICKET_COLUMNS).join(UNITS, UNITS.c.id == TICKETS.c.unit_id)


def _base(row: Any) -> datetime | None:
    """The deadline the import fixed; a ticket never touched by the clock whose row lacks
    it (written before base_due_at existed) has its due_at."""
    if row.base_due_at is None and row.clock_events == 0:
        return row.due_at
    return row.base_due_at


def _start(ctx: _Context, row: Any) -> ClockStart:
    base = _base(row)
    return ClockStart(
        received_at=row.received_at,
        dispatched_at=row.dispatched_at,
        base_due=base,
        level_days=ctx.level_days(row.urgency),
        unit=row.unit_code,
        category=row.category,
    )


def _as_rule_event(row: Any) -> ClockEvent:
    """A stored row, or a NewEvent, as the rules' event."""
    return ClockEvent(
        key=row.key,
        kind=row.kind,
        at=row.at,
        actor=row.actor,
        reason=row.reason,
        payload=_payload_in(row.payload or {}),
        supersedes=tuple(row.supersedes or ()),
    )


def _payload_in(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored payload (JSON) as the rules read it: datetimes parsed back."""
    out = dict(payload)
    for key in DATETIME_KEYS & out.keys():
        if isinstance(out[key], str):
            out[key] = datetime.fromisoformat(out[key])
    return out


def _payload_out(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in payload.items()}


def _events_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[ClockEvent]]:
    found: dict[int, list[ClockEvent]] = defaultdict(list)
    if not ids:
        return found
    rows = conn.execute(
        select(EVENTS).where(EVENTS.c.item_kind == ItemKind.ticket, EVENTS.c.item_id.in_(ids))
    )
    for row in rows:
        found[int(row.item_id)].append(_as_rule_event(row))
    return found


# ---------------------------------------------------------------------------- record


def _resolve(conn: Connection, refs: Iterable[str]) -> dict[str, Any]:
    """item_ref -> ticket row, for the refs that name a ticket."""
    by_ref: dict[str, Any] = {}
    pairs: dict[tuple[str, str], str] = {}
    ids: dict[int, str] = {}
    for ref in set(refs):
        if ref.isdigit():
            ids[int(ref)] = ref
        elif ":" in ref:
            source, external = ref.split(":", 1)
            pairs[(source, external)] = ref
    id_list = list(ids)
    for start in range(0, len(id_list), BATCH):
        id_chunk = id_list[start : start + BATCH]
        for row in conn.execute(_tickets_query().where(TICKETS.c.id.in_(id_chunk))):
            by_ref[ids[row.id]] = row
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external in pairs:
        by_source[source].append(external)
    for source, externals in by_source.items():
        for start in range(0, len(externals), BATCH):
            chunk = externals[start : start + BATCH]
            query = _tickets_query().where(
                TICKETS.c.source == source, TICKETS.c.external_id.in_(chunk)
            )
            for row in conn.execute(query):
                by_ref[pairs[(source, row.external_id)]] = row
    return by_ref


def _malformed(event: NewEvent) -> str | None:
    """Why an event cannot be recorded whatever the item's clock, or None."""
    if event.item_kind != ItemKind.ticket:
        return f"只支持工单事件 (only ticket events are recorded, got {event.item_kind!r})"
    if event.kind not in KINDS:
        return f"未知事件类型 (unknown event kind {event.kind!r})"
    if event.origin not in ORIGINS:
        return f"未知来源 (unknown origin {event.origin!r})"
    if not event.key or len(event.key) > 200:
        return "事件键须为 1–200 个字符 (the key must be 1 to 200 characters)"
    if not isinstance(event.at, datetime) or event.at.tzinfo is not None:
        return "事件时间须为本地时间 (the time must be a naive local datetime)"
    if event.key in event.supersedes:
        return "事件不能更正自身 (an event cannot supersede itself)"
    for name, value in event.payload.items():
        wanted = PAYLOAD_TYPES.get(name)
        if wanted is None:
            return f"未知载荷字段 (unknown payload field {name!r})"
        if wanted is datetime and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return f"{name} 不是时间 (not a date and time: {value!r})"
        if wanted is int and isinstance(value, bool):
            return f"{name} 须为整数 (must be a whole number, got {value!r})"
        if not isinstance(value, wanted):
            return f"{name} 类型错误 (must be {wanted.__name__}, got {value!r})"
    return None


def _closed(row: Any) -> bool:
    return TicketStatus(row.status) in CLOSED_STATUSES


def _validate_item(
    ctx: _Context,
    row: Any,
    stored: list[ClockEvent],
    candidates: list[NewEvent],
    as_of: datetime,
) -> dict[str, tuple[RefusalCode, str]]:
    """key -> (code, reason) of the refusals of the item's candidate events (the rules' own
    refusals, found by replaying the stored events with the candidates)."""
    refused: dict[str, tuple[RefusalCode, str]] = {}
    start = _start(ctx, row)
    horizon = max([as_of, *(c.at for c in candidates)])
    before = replay(start, stored, ctx.calendar, ctx.rules, horizon)
    already_refused = {r.event_key for r in before.refusals}
    live = list(candidates)
    while live:
        events = [*stored, *(_as_rule_event(c) for c in live)]
        state = replay(start, events, ctx.calendar, ctx.rules, horizon)
        keys = {c.key for c in live}
        fresh = [r for r in state.refusals if r.event_key not in already_refused]
        own = {r.event_key: (r.code, r.reason) for r in fresh if r.event_key in keys}
        if not own:
            broken = [r for r in fresh if r.event_key not in keys]
            if broken:  # the candidates would make a stored event refused
                why = (
                    f"会使已记录的事件 {broken[0].event_key} 失效 (would make the recorded "
                    f"event {broken[0].event_key} refused: {broken[0].reason})"
                )
                refused.update({c.key: ("breaks_recorded", why) for c in live})
            return refused
        refused.update(own)
        live = [c for c in live if c.key not in own]
    return refused


def _pending(ctx: _Context, row: Any, stored: list[ClockEvent], as_of: datetime) -> ClockState:
    return replay(_start(ctx, row), stored, ctx.calendar, ctx.rules, as_of)


def record_events(
    engine: Engine | Connection,
    events: Iterable[NewEvent],
    *,
    as_of: datetime,
    all_or_nothing: bool,
    config: CityConfig | None = None,
) -> RecordResult:
    """Validate the events, insert the accepted ones, replay the clock of the tickets they
    touched. `all_or_nothing`: one refusal and nothing is recorded. A key already recorded
    for the item is `already` (not validated again, not written twice). `config`: the city's
    (its calendar, urgency levels, clock rules); None: the settings' config folder.
    `engine` may be a Connection in a transaction of the caller's (a reopening recorded
    with the change of status that causes it): then the caller commits or rolls back."""
    ctx = _Context.of(config)
    result = RecordResult()
    todo = list(events)
    begin = nullcontext(engine) if isinstance(engine, Connection) else engine.begin()
    with begin as conn:
        rows = _resolve(conn, (e.item_ref for e in todo))
        refusals = _Refusals(result, rows)
        by_item: dict[int, list[NewEvent]] = defaultdict(list)
        seen: set[tuple[int, str]] = set()
        for event in todo:
            why = _malformed(event)
            row = rows.get(event.item_ref)
            if row is None:
                if why is None:
                    refusals.add(
                        event, "unknown_ticket", f"未知工单 (unknown ticket {event.item_ref!r})"
                    )
                else:
                    refusals.add(event, "malformed", why)
                continue
            code: RefusalCode = "malformed"
            if why is None and (
                event.origin in DECISION_ORIGINS and event.kind in OPEN_ONLY_KINDS and _closed(row)
            ):
                code, why = (
                    "closed_ticket",
                    f"工单已办结 (the ticket is {row.status}: no decision about it)",
                )
            if why is None and (row.id, event.key) in seen:
                code, why = (
                    "duplicate_key",
                    f"同一事件键重复 (the key {event.key!r} is given twice)",
                )
            if why is not None:
                refusals.add(event, code, why)
                continue
            seen.add((row.id, event.key))
            by_item[row.id].append(event)
        stored = _events_of(conn, list(by_item))
        accepted: list[tuple[int, NewEvent]] = []
        for item_id, candidates in by_item.items():
            known = {e.key for e in stored[item_id]}
            fresh: list[NewEvent] = []
            for event in candidates:
                (result.already if event.key in known else fresh).append(event)
            row = rows[fresh[0].item_ref] if fresh else None
            if row is None:
                continue
            fresh = _unanswered(ctx, row, stored[item_id], fresh, refusals)
            try:
                by_rules = _validate_item(ctx, row, stored[item_id], fresh, as_of)
            except CalendarError as exc:  # e.g. a fresh deadline in a year it does not know
                why = f"工作日历无法计算时限 (the working-day calendar cannot tell: {exc})"
                by_rules = {e.key: ("no_calendar", why) for e in fresh}
            for event in fresh:
                if event.key in by_rules:
                    refusals.add(event, *by_rules[event.key])
                else:
                    accepted.append((item_id, event))
        refusals.store(conn)
        if result.refused and all_or_nothing:
            return result
        now = datetime.now()
        records = [
            {
                "item_kind": ItemKind.ticket.value,
                "item_id": item_id,
                "key": e.key,
                "kind": e.kind,
                "at": e.at,
                "actor": e.actor[:200],
                "reason": e.reason,
                "payload": _payload_out(e.payload),
                "supersedes": list(e.supersedes),
                "origin": e.origin,
                "origin_ref": (e.origin_ref or None) and str(e.origin_ref)[:500],
                "recorded_at": now,
            }
            for item_id, e in accepted
        ]
        insert_ignore(conn, EVENTS, records, ["item_kind", "item_id", "key"])
        result.recorded = [e for _, e in accepted]
        touched = sorted({item_id for item_id, _ in accepted})
        result.changed = _apply(conn, ctx, touched, as_of)
    return result


_ANSWERS: dict[str, str] = {
    "extension_approved": "extension_requested",
    "extension_refused": "extension_requested",
    "appeal_upheld": "appeal_filed",
    "appeal_rejected": "appeal_filed",
}


def _unanswered(
    ctx: _Context,
    row: Any,
    stored: list[ClockEvent],
    fresh: list[NewEvent],
    refusals: _Refusals,
) -> list[NewEvent]:
    """An office decision names the request (extension) or filing (appeal) it answers when
    there is one (docs/clock.md): refused when it names none while one is pending, or names
    one that is not pending (unknown, or decided already)."""
    deciding = [e for e in fresh if e.origin in DECISION_ORIGINS and e.kind in _ANSWERS]
    if not deciding:
        return fresh
    corrected = {key for e in fresh for key in e.supersedes}  # a correction answers again
    kept = [e for e in stored if e.key not in corrected]
    state = _pending(ctx, row, kept, datetime.max)
    pending = {
        "extension_requested": set(state.pending_requests),
        "appeal_filed": set(_open_appeals(effective_events(kept, datetime.max))),
    }
    for e in fresh:
        if e.kind in pending:
            pending[e.kind].add(e.key)
    refused: dict[str, tuple[RefusalCode, str]] = {}
    for e in sorted(deciding, key=lambda e: (e.at, e.key)):
        named, open_ = e.payload.get("request"), pending[_ANSWERS[e.kind]]
        what = "延期申请" if _ANSWERS[e.kind] == "extension_requested" else "申诉"
        if not named and open_:
            refused[e.key] = (
                "request_not_named",
                f"请指明所答复的{what} (name the request it answers: pending "
                f"{', '.join(sorted(open_))})",
            )
        elif named and named not in open_:
            refused[e.key] = (
                "request_not_pending",
                f"{what} {named} 不存在或已有决定 (no pending request {named!r}: "
                "unknown or already decided)",
            )
        elif named:
            open_.discard(str(named))
    for e in deciding:
        if e.key in refused:
            refusals.add(e, *refused[e.key])
    return [e for e in fresh if e.key not in refused]


class _Refusals:
    """The refusals of one `record_events` call: reported in its result and stored in
    clock_refusals (once per item, event key and code: re-recording stores nothing twice)."""

    def __init__(self, result: RecordResult, rows: Mapping[str, Any]) -> None:
        self.result, self.rows = result, rows
        self.records: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    def add(self, event: NewEvent, code: RefusalCode, reason: str) -> None:
        self.result.refused.append(
            Refused(event.item_ref, event.key, reason, event.origin_ref, code)
        )
        row = self.rows.get(event.item_ref)
        ref = f"{row.source}:{row.external_id}" if row is not None else str(event.item_ref)
        at = event.at if isinstance(event.at, datetime) and event.at.tzinfo is None else None
        key = (str(event.item_kind)[:24], ref[:200], str(event.key)[:200], str(code))
        record = {
            "item_kind": key[0],
            "item_ref": key[1],
            "item_id": int(row.id) if row is not None else None,
            "event_key": key[2],
            "kind": str(event.kind)[:32],
            "at": at,
            "actor": str(event.actor)[:200],
            "code": code,
            "reason": reason,
            "origin": str(event.origin)[:32],
            "origin_ref": (event.origin_ref or None) and str(event.origin_ref)[:500],
            "recorded_at": datetime.now(),
        }
        self.records.setdefault(key, record)

    def store(self, conn: Connection) -> None:
        insert_ignore(conn, REFUSALS, list(self.records.values()), REFUSAL_KEY)


# ---------------------------------------------------------------------------- apply


def _columns(ctx: _Context, state: ClockState, in_force: int) -> dict[str, Any]:
    reason = state.excluded_reason
    return {
        "due_at": state.due,
        "evaluated": state.counts_for_evaluation,
        "excluded_reason": reason[:_REASON_LEN] if reason else None,
        "suspended_since": state.suspended_since,
        "ladder_round": state.ladder_round,
        "redo_count": state.redo_count,
        "extension_count": state.extensions,
        "clock_events": in_force,
        "clock_calendar": ctx.version,
    }


def _apply(conn: Connection, ctx: _Context, ids: Sequence[int], as_of: datetime) -> int:
    """Replay and write the clock of the tickets `ids` (in batches); a ticket whose calendar
    version is not the current one and that is still open gets a calendar_correction event
    when the current calendar moves its deadline. Returns the tickets changed."""
    changed = 0
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        rows = conn.execute(_tickets_query().where(TICKETS.c.id.in_(chunk))).all()
        events = _events_of(conn, chunk)
        updates: list[dict[str, Any]] = []
        corrections: list[dict[str, Any]] = []
        for row in rows:
            stored = events.get(row.id, [])
            # A ticket stamped by another calendar version (a never stamped one is taken to
            # be of the current calendar: stamped, not corrected).
            stale = row.clock_calendar is not None and row.clock_calendar != ctx.version
            if not _closed(row):
                correction = (
                    _correction(ctx, row, stored, as_of)
                    if stale
                    else _recorrection(ctx, row, stored)
                )
                if correction is not None:
                    corrections.append(correction)
                    stored = [*stored, _as_rule_event(_Row(correction))]
            state = replay(_start(ctx, row), stored, ctx.calendar, ctx.rules, as_of)
            # Events in force, future ones included (0: never touched; the daily replays
            # every open ticket with events, so a future event takes effect on its day).
            values = _columns(ctx, state, len(effective_events(stored, datetime.max)))
            values["base_due_at"] = _base(row)
            if any(getattr(row, k) != v for k, v in values.items()):
                updates.append({"ticket_id": row.id, **values})
        if corrections:
            insert_ignore(conn, EVENTS, corrections, ["item_kind", "item_id", "key"])
        if updates:
            from sqlalchemy import bindparam

            stmt = (
                update(TICKETS)
                .where(TICKETS.c.id == bindparam("ticket_id"))
                .values({k: bindparam(k) for k in updates[0] if k != "ticket_id"})
            )
            conn.execute(stmt, updates)
        changed += len(updates)
    return changed


class _Row:
    """A dict with attribute access (a correction not yet read back from the table)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _correction(
    ctx: _Context, row: Any, stored: list[ClockEvent], as_of: datetime
) -> dict[str, Any] | None:
    """A calendar_correction event (as a clock_events record) when the current calendar
    gives the open ticket another effective deadline than the one in force, which another
    calendar version produced (`duban.rules.clock.correction`: every deadline the calendar
    produced is recomputed — the level's, a redo's or re-dispatch's, extensions and
    suspensions in working days; an export's fixed times are kept); else None."""
    if _base(row) is None:
        return None
    fresh = corrected_due(
        _start(ctx, row), stored, ctx.calendar, ctx.rules, as_of, previous_due=row.due_at
    )
    return None if fresh is None else _correction_record(ctx, row, stored, as_of, fresh)


def _recorrection(ctx: _Context, row: Any, stored: list[ClockEvent]) -> dict[str, Any] | None:
    """The current calendar's correction in force, recomputed when an event dated before it
    was recorded since (an event export, a decision given `--at`): the correction pins the
    deadline at its time, so it must include every earlier event. A correction at the same
    time with the new deadline, superseding it; None when it still holds."""
    if not any(e.kind == "calendar_correction" for e in stored):
        return None
    corrections = [
        e for e in effective_events(stored, datetime.max) if e.kind == "calendar_correction"
    ]
    if not corrections or not corrections[-1].key.startswith(f"calendar:{ctx.version}"):
        return None
    last = corrections[-1]
    fresh = corrected_due(
        _start(ctx, row), stored, ctx.calendar, ctx.rules, last.at,
        previous_due=last.payload.get("new_due"),
    )  # fmt: skip
    return None if fresh is None else _correction_record(ctx, row, stored, last.at, fresh)


def _correction_record(
    ctx: _Context, row: Any, stored: list[ClockEvent], at: datetime, new_due: datetime
) -> dict[str, Any]:
    """It supersedes the corrections before it (it recomputes what they did); its key is
    `calendar:<version>`, `calendar:<version>:<n>` when that is taken (the calendar returned
    to a version it had before, or the correction was recomputed)."""
    keys = {e.key for e in stored}
    key, n = f"calendar:{ctx.version}", 1
    while key in keys:
        n += 1
        key = f"calendar:{ctx.version}:{n}"
    earlier = sorted(e.key for e in stored if e.kind == "calendar_correction")
    return {
        "item_kind": ItemKind.ticket.value,
        "item_id": row.id,
        "key": key,
        "kind": "calendar_correction",
        "at": at,
        "actor": "calendar",
        "reason": f"工作日历 {ctx.version} (working-day calendar {ctx.version})",
        "payload": {"new_due": new_due.isoformat()},
        "supersedes": earlier,
        "origin": "calendar",
        "origin_ref": ctx.version,
        "recorded_at": datetime.now(),
    }


def _stamp_untouched(conn: Connection, ctx: _Context) -> int:
    """Open tickets without events not stamped yet: nothing to replay or correct, their
    deadline is the current calendar's; stamped in one statement (base_due_at filled from
    due_at where a row lacks it)."""
    result = conn.execute(
        update(TICKETS)
        .where(_open(), TICKETS.c.clock_events == 0, TICKETS.c.clock_calendar.is_(None))
        .values(
            clock_calendar=ctx.version,
            base_due_at=func.coalesce(TICKETS.c.base_due_at, TICKETS.c.due_at),
        )
    )
    return max(int(result.rowcount or 0), 0)


def _open() -> Any:
    """Open tickets; `status <> 'closed'` spelled out so that the small partial index
    ix_tickets_open_due serves the query (most tickets are closed)."""
    return and_(
        TICKETS.c.status != TicketStatus.closed.value,
        TICKETS.c.status.notin_([s.value for s in CLOSED_STATUSES]),
    )


def apply_clock(
    engine: Engine,
    ticket_ids: Iterable[int] | None,
    *,
    as_of: datetime,
    since: datetime | None = None,
    config: CityConfig | None = None,
) -> int:
    """Replay the events of the tickets and write their clock; return the tickets changed.

    None: every open ticket with events in force, and every open ticket whose
    `clock_calendar` is not the current calendar version (a changed calendar.yaml or
    package): those whose deadline the calendar moves get a calendar_correction event.
    Closed tickets keep the deadline they were judged by.

    `since` (with None): the clock was applied to every ticket as of `since` already (the
    previous daily run): only the open tickets with an event effective after it, up to
    `as_of`, can have changed — those are replayed, with the stale ones of the calendar."""
    ctx = _Context.of(config)
    if ticket_ids is not None:
        ids = sorted(set(ticket_ids))
    else:
        stale = or_(TICKETS.c.clock_calendar.is_(None), TICKETS.c.clock_calendar != ctx.version)
        touched: Any = TICKETS.c.clock_events > 0
        if since is not None:
            recent = select(EVENTS.c.item_id).where(
                EVENTS.c.item_kind == ItemKind.ticket, EVENTS.c.at > since, EVENTS.c.at <= as_of
            )
            touched = and_(touched, TICKETS.c.id.in_(recent))
        query = select(TICKETS.c.id).where(and_(_open(), or_(touched, stale)))
        with engine.begin() as conn:
            stamped = _stamp_untouched(conn, ctx)
        with engine.connect() as conn:
            ids = [int(i) for i in conn.scalars(query.order_by(TICKETS.c.id))]
    changed = 0 if ticket_ids is not None else stamped
    for start in range(0, len(ids), BATCH):
        with engine.begin() as conn:
            changed += _apply(conn, ctx, ids[start : start + BATCH], as_of)
    return changed


# ---------------------------------------------------------------------------- pending


@dataclass(frozen=True)
class Pending:
    """A unit's request not decided yet: an extension request or an appeal."""

    item_ref: str  # source:external_id
    kind: EventKind  # extension_requested or appeal_filed
    key: str
    at: datetime
    actor: str
    reason: str
    due_at: datetime | None  # the ticket's effective deadline now
    unit: str


def pending_requests(
    engine: Engine, *, as_of: datetime, config: CityConfig | None = None
) -> list[Pending]:
    """The extension requests and appeals of open tickets not yet decided, oldest first."""
    ctx = _Context.of(config)
    open_ = _open()
    found: list[Pending] = []
    with engine.connect() as conn:
        ids = [
            int(i)
            for i in conn.scalars(
                select(TICKETS.c.id).where(open_, TICKETS.c.clock_events > 0).order_by("id")
            )
        ]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            rows = conn.execute(_tickets_query().where(TICKETS.c.id.in_(chunk))).all()
            events = _events_of(conn, chunk)
            for row in rows:
                stored = events.get(row.id, [])
                state = replay(_start(ctx, row), stored, ctx.calendar, ctx.rules, as_of)
                by_key = {e.key: e for e in effective_events(stored, as_of)}
                keys = [*state.pending_requests, *_open_appeals(by_key.values())]
                for key in keys:
                    e = by_key[key]
                    found.append(
                        Pending(
                            f"{row.source}:{row.external_id}",
                            e.kind,
                            key,
                            e.at,
                            e.actor,
                            e.reason,
                            state.due,
                            row.unit_code,
                        )
                    )
    return sorted(found, key=lambda p: (p.at, p.item_ref, p.key))


def _open_appeals(events: Iterable[ClockEvent]) -> list[str]:
    """The last appeal filing when no decision follows it."""
    last: str | None = None
    for e in events:  # in replay order
        if e.kind == "appeal_filed":
            last = e.key
        elif e.kind in ("appeal_upheld", "appeal_rejected"):
            last = None
    return [last] if last else []


def ticket_ids(engine: Engine, refs: Iterable[str]) -> dict[str, int]:
    """item_ref -> ticket id, for the refs that name a ticket."""
    with engine.connect() as conn:
        return {ref: int(row.id) for ref, row in _resolve(conn, refs).items()}
