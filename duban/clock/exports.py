"""Clock events from hotline exports (docs/sources.md): the clock columns of a ticket export
(`clock_columns` of config/sources/<name>.yaml) and an event export (its `events:`), each
turned into events with deterministic keys, so a re-import records nothing twice; and the
import's check that it erased no decision (docs/clock.md, "The import never erases")."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from duban.clock.store import KINDS, NewEvent, RecordResult, Refused, apply_clock, record_events
from duban.config import CityConfig, SourceMapping
from duban.db.models import ClockEvent as EventRow
from duban.db.models import ItemKind, Ticket, TicketStatus

TICKETS = cast(Table, Ticket.__table__)
EVENTS = cast(Table, EventRow.__table__)
NOT_COUNTED = frozenset({"否", "0", "no", "false", "不纳入", "不纳入考核", "n"})


@dataclass
class ClockImport:
    """What the clock made of an import: events recorded from the export, and where the
    export disagrees with the decisions in force (kept)."""

    result: RecordResult = field(default_factory=RecordResult)
    disagreements: list[Refused] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"clock: {len(self.result.recorded)} events recorded, "
            f"{len(self.result.refused)} refused, "
            f"{len(self.disagreements)} disagreements with decisions in force (kept)"
        )


def read_table(
    path: Path, mapping: SourceMapping, wanted: list[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, {column: stripped text}) of a CSV or XLSX file, for the columns wanted
    (a column the file lacks reads as "")."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        from duban.workbooks.cells import cell_text

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            rows = book.worksheets[0].iter_rows(values_only=True)
            header = [cell_text(v).strip() for v in next(rows, ())]
            for number, values in enumerate(rows, start=2):
                cells = dict(zip(header, values, strict=False))
                yield number, {c: cell_text(cells.get(c)).strip() for c in wanted}
        finally:
            book.close()
        return
    with path.open(encoding=mapping.encoding, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=mapping.delimiter)
        for number, row in enumerate(reader, start=2):
            yield number, {c: (row.get(c) or "").strip() for c in wanted}


def parse_time(text: str, mapping: SourceMapping) -> datetime | None:
    for fmt in mapping.datetime_formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def column_events(
    engine: Engine, path: Path, mapping: SourceMapping, source: str
) -> tuple[list[NewEvent], list[Refused]]:
    """The events the export's clock columns carry (keys `export:<column>:<value>`)."""
    columns = mapping.clock_columns
    if not columns:
        return [], []
    id_column = mapping.columns["external_id"]
    wanted = [id_column, *columns.values()]
    rows = list(read_table(path, mapping, wanted))
    starts = _starts(engine, source, [r[id_column] for _, r in rows])
    events: list[NewEvent] = []
    bad: list[Refused] = []
    for number, row in rows:
        external = row[id_column]
        start = starts.get(external)
        if not external or start is None:
            continue  # a row the ticket import quarantined
        ref, where = f"{source}:{external}", f"{path.name} row {number}"
        extended = row.get(columns.get("extended_due", ""), "")
        if extended:
            new_due = parse_time(extended, mapping)
            if new_due is None:
                bad.append(Refused(ref, "extended_due", f"不是时间 ({extended!r})", where))
            elif start[1] is not None and new_due != start[1]:
                events.append(
                    NewEvent(
                        "ticket",
                        ref,
                        f"export:extended_due:{new_due.isoformat()}",
                        "extension_approved",
                        start[0],
                        "export",
                        "导出：延期",
                        {"new_due": new_due, "value": extended},
                        (),
                        "export",
                        where,
                    )
                )
        evaluated = row.get(columns.get("evaluated", ""), "")
        if evaluated.lower() in NOT_COUNTED:
            events.append(
                NewEvent(
                    "ticket",
                    ref,
                    "export:evaluated:no",
                    "appeal_upheld",
                    start[0],
                    "export",
                    "导出：不纳入考核",
                    {"value": evaluated},
                    (),
                    "export",
                    where,
                )
            )
    return events, bad


def _starts(
    engine: Engine, source: str, externals: list[str]
) -> dict[str, tuple[datetime, datetime | None]]:
    """external id -> (dispatch or receipt time, base deadline)."""
    found: dict[str, tuple[datetime, datetime | None]] = {}
    with engine.connect() as conn:
        for i in range(0, len(externals), 2000):
            query = select(
                TICKETS.c.external_id,
                TICKETS.c.received_at,
                TICKETS.c.dispatched_at,
                TICKETS.c.base_due_at,
            ).where(TICKETS.c.source == source, TICKETS.c.external_id.in_(externals[i : i + 2000]))
            for r in conn.execute(query):
                found[r.external_id] = (r.dispatched_at or r.received_at, r.base_due_at)
    return found


def event_rows(
    path: Path, mapping: SourceMapping, source: str
) -> tuple[list[NewEvent], list[Refused]]:
    """The events of an event export (one row per event); a row without a key column gets
    `event_export:<kind>:<time>` as its key."""
    spec = mapping.events
    if spec is None:
        raise ValueError(f"config/sources/{mapping.name}.yaml: no `events:` (event export) section")
    cols = spec.columns
    events: list[NewEvent] = []
    bad: list[Refused] = []
    for number, row in read_table(path, mapping, list(cols.values())):
        value = {name: row[column] for name, column in cols.items()}
        where = f"{path.name} row {number}"
        ref = f"{source}:{value['ticket']}"
        kind = spec.kinds.get(value["kind"], value["kind"])
        at = parse_time(value["at"], mapping)
        problems = []
        if not value["ticket"]:
            problems.append(f"{cols['ticket']}: 为空 (empty)")
        if kind not in KINDS:
            problems.append(f"{cols['kind']}: 未知事件类型 (unknown kind {value['kind']!r})")
        if at is None:
            problems.append(f"{cols['at']}: 不是时间 (not a time: {value['at']!r})")
        payload: dict[str, Any] = {}
        for name in ("request", "unit"):
            if value.get(name):
                payload[name] = value[name]
        if value.get("working_days"):
            try:
                payload["working_days"] = int(value["working_days"])
            except ValueError:
                problems.append(f"{cols['working_days']}: 须为整数 ({value['working_days']!r})")
        if value.get("new_due"):
            new_due = parse_time(value["new_due"], mapping)
            if new_due is None:
                problems.append(f"{cols['new_due']}: 不是时间 ({value['new_due']!r})")
            payload["new_due"] = new_due
        if problems or at is None:
            bad.append(Refused(ref, value.get("key") or "-", "; ".join(problems), where))
            continue
        key = value.get("key") or f"event_export:{kind}:{at.isoformat()}"
        events.append(
            NewEvent(
                "ticket",
                ref,
                key,
                cast(Any, kind),
                at,
                value.get("actor") or "export",
                value.get("reason") or "",
                payload,
                (),
                "event_export",
                where,
            )
        )
    return events, bad


def import_events(
    engine: Engine, config: CityConfig, path: Path, source: str, *, as_of: datetime | None = None
) -> RecordResult:
    """`duban import events`: an event export, every good row recorded (a refused or
    malformed row is reported, with its row number, and changes nothing)."""
    events, bad = event_rows(Path(path), config.source(source), source)
    result = record_events(
        engine, events, as_of=as_of or datetime.now(), all_or_nothing=False, config=config
    )
    result.refused[:0] = bad
    return result


def after_import(
    engine: Engine,
    config: CityConfig,
    path: Path,
    source: str,
    touched: list[int],
    *,
    as_of: datetime | None = None,
) -> ClockImport:
    """After a ticket import: the clock columns recorded as events; the tickets the import
    rewrote that have events replayed (the import wrote the export's deadline and status:
    the decisions in force win), each disagreement listed."""
    as_of = as_of or datetime.now()
    out = ClockImport()
    events, bad = column_events(engine, Path(path), config.source(source), source)
    if events:
        out.result = record_events(engine, events, as_of=as_of, all_or_nothing=False, config=config)
    out.result.refused[:0] = bad
    if touched:
        out.disagreements = _keep_reopenings(engine, touched, path)
        apply_clock(engine, touched, as_of=as_of, config=config)
        out.disagreements += _deadline_disagreements(engine, touched, path)
    return out


def _keep_reopenings(engine: Engine, ids: list[int], path: Path) -> list[Refused]:
    """A ticket the export shows closed before its last redo (reopened after that close):
    the reopening stays (status reopened, no close time)."""
    found: list[Refused] = []
    with engine.begin() as conn:
        for i in range(0, len(ids), 2000):
            chunk = ids[i : i + 2000]
            last_redo: dict[int, datetime] = {}
            query = select(EVENTS.c.item_id, EVENTS.c.at).where(
                EVENTS.c.item_kind == ItemKind.ticket,
                EVENTS.c.kind == "redo",
                EVENTS.c.item_id.in_(chunk),
            )
            for r in conn.execute(query):
                last_redo[r.item_id] = max(r.at, last_redo.get(r.item_id, r.at))
            if not last_redo:
                continue
            rows = conn.execute(
                select(TICKETS.c.id, TICKETS.c.source, TICKETS.c.external_id, TICKETS.c.closed_at,
                       TICKETS.c.status).where(TICKETS.c.id.in_(list(last_redo)))
            ).all()  # fmt: skip
            for r in rows:
                closed = r.closed_at
                if TicketStatus(r.status) == TicketStatus.closed and (
                    closed is None or closed < last_redo[r.id]
                ):
                    conn.execute(
                        TICKETS.update()
                        .where(TICKETS.c.id == r.id)
                        .values(status=TicketStatus.reopened, closed_at=None)
                    )
                    found.append(
                        Refused(
                            f"{r.source}:{r.external_id}",
                            "status",
                            f"导出显示已办结（{closed}），但 {last_redo[r.id]} 已重办：保留重办 "
                            "(the export shows it closed before its redo: the reopening stays)",
                            path.name,
                        )
                    )
    return found


def _deadline_disagreements(engine: Engine, ids: list[int], path: Path) -> list[Refused]:
    found: list[Refused] = []
    with engine.connect() as conn:
        for i in range(0, len(ids), 2000):
            query = select(
                TICKETS.c.source, TICKETS.c.external_id, TICKETS.c.base_due_at, TICKETS.c.due_at
            ).where(
                TICKETS.c.id.in_(ids[i : i + 2000]),
                TICKETS.c.clock_events > 0,
                TICKETS.c.base_due_at != TICKETS.c.due_at,
            )
            for r in conn.execute(query):
                found.append(
                    Refused(
                        f"{r.source}:{r.external_id}",
                        "due_at",
                        f"导出时限 {r.base_due_at}，现行时限 {r.due_at}（保留决定） (the export's "
                        "deadline differs from the one the decisions in force give: kept)",
                        path.name,
                    )
                )
    return found
