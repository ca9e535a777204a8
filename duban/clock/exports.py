"""Clock events from hotline exports (docs/sources.md): the clock columns of a ticket export
(`clock_columns` of config/sources/<name>.yaml) and an event export (its `events:`), each
turned into events with deterministic keys, so a re-import records nothing twice; and the
import's check that it erased no decision (docs/clock.md, "The import never erases")."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Connection, Engine, Table, select

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

    def counts(self) -> tuple[int, int]:
        """Events recorded, refused."""
        return len(self.result.recorded), len(self.result.refused)

    def findings(self) -> list[Refused]:
        """For the import's report file: the refused events, then the disagreements."""
        return [*self.result.refused, *self.disagreements]

    def line(self) -> str:
        return (
            f"clock: {len(self.result.recorded)} events recorded, "
            f"{len(self.result.refused)} refused, "
            f"{len(self.disagreements)} disagreements with decisions in force (kept)"
        )


def with_events(conn: Connection, source: str, rows: pd.DataFrame) -> list[int]:
    """The ids of the tickets among `rows` (their external_id) that have clock events."""
    ids = rows["external_id"].tolist()
    found: list[int] = []
    for i in range(0, len(ids), 2000):
        query = select(TICKETS.c.id).where(
            TICKETS.c.source == source,
            TICKETS.c.clock_events > 0,
            TICKETS.c.external_id.in_(ids[i : i + 2000]),
        )
        found += [int(t) for t in conn.scalars(query)]
    return found


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


@dataclass(frozen=True)
class _Known:
    """What the clock already holds for a ticket of the export."""

    id: int
    start: datetime  # dispatch, else receipt
    base_due: datetime | None
    suspended_since: datetime | None
    extensions: int
    redos: int
    export_keys: tuple[str, ...]  # keys of the events recorded from exports
    closed_at: datetime | None = None  # when the ticket is closed (as the import left it)
    due: datetime | None = None  # the effective deadline in force


def column_events(
    engine: Engine,
    path: Path,
    mapping: SourceMapping,
    source: str,
    config: CityConfig,
    as_of: datetime,
) -> tuple[list[NewEvent], list[Refused]]:
    """The events the export's clock columns and suspending statuses carry, keyed
    `export:<column>:<value>` (a changed value supersedes the events of the old one); and
    the rows whose clock cells cannot be read."""
    columns = dict(mapping.clock_columns)
    status_column = mapping.columns.get("status")
    # Only a status the mapping accepts can arrive (another quarantines its row): without
    # a suspending one, the file is not read again for statuses.
    suspending = set(config.clock.suspending_statuses) & set(mapping.values.status)
    if not columns and not (status_column and suspending):
        return [], []
    id_column = mapping.columns["external_id"]
    wanted = [id_column, *columns.values(), *([status_column] if status_column else [])]
    rows = list(read_table(path, mapping, wanted))
    known = _known(engine, source, [r[id_column] for _, r in rows])
    events: list[NewEvent] = []
    bad: list[Refused] = []
    for number, row in rows:
        ticket = known.get(row[id_column])
        if ticket is None:
            continue  # a row the ticket import quarantined
        cells: dict[str, str] = {name: row[column] for name, column in columns.items()}
        where = f"{path.name} row {number}"
        out = _RowEvents(f"{source}:{row[id_column]}", where, ticket, mapping, config, as_of)
        out.read(cells, row.get(status_column or "", ""), suspending)
        events += out.events
        bad += out.bad
    return events, bad


class _RowEvents:
    """The events of one export row's clock cells."""

    def __init__(
        self,
        ref: str,
        where: str,
        ticket: _Known,
        mapping: SourceMapping,
        config: CityConfig,
        as_of: datetime,
    ) -> None:
        self.ref, self.where, self.ticket = ref, where, ticket
        self.mapping, self.config, self.as_of = mapping, config, as_of
        self.events: list[NewEvent] = []
        self.bad: list[Refused] = []

    def add(
        self,
        key: str,
        kind: str,
        at: datetime,
        reason: str,
        *,
        supersede: bool = True,
        **payload: Any,
    ) -> None:
        """One event; it supersedes the events an earlier value of the same column gave
        (unless `supersede` is off: an event a count derives stands for one more)."""
        column = key.split(":")[1]
        old: tuple[str, ...] = ()
        if supersede and column != "status" and not key.endswith(":off"):
            prefix = f"export:{column}:"
            value = key.removeprefix(prefix)
            old = tuple(
                k
                for k in self.ticket.export_keys
                if k.startswith(prefix) and k.removesuffix(":off").removeprefix(prefix) != value
            )
        self.events.append(
            NewEvent(
                "ticket",
                self.ref,
                key,
                cast(Any, kind),
                at,
                "export",
                reason,
                payload,
                old,
                "export",
                self.where,
            )
        )

    def problem(self, column: str, why: str) -> None:
        self.bad.append(Refused(self.ref, column, why, f"{self.where} {column}"))

    def count(self, cells: dict[str, str], name: str) -> int | None:
        text = cells.get(name, "")
        if not text:
            return None
        try:
            return int(float(text))
        except ValueError:
            self.problem(name, f"须为整数 (not a whole number: {text!r})")
            return None

    def read(self, cells: dict[str, str], status: str, suspending: set[str]) -> None:
        t, start, calendar = self.ticket, self.ticket.start, self.config.calendar
        extended = cells.get("extended_due", "")
        if extended:
            new_due = parse_time(extended, self.mapping)
            if new_due is None:
                self.problem("extended_due", f"不是时间 (not a time: {extended!r})")
            elif t.base_due is not None and new_due != t.base_due:
                key = f"export:extended_due:{new_due.isoformat()}"
                # The export counts more extensions than the clock holds and its deadline is
                # later than the one in force: one more extension, from that deadline to this
                # one (the earlier ones stay); else a corrected value (it supersedes).
                said = self.count(cells, "extensions")
                more = said is not None and said > t.extensions
                more = more and t.due is not None and new_due > t.due
                self.add(key, "extension_approved", start, "导出：延期", supersede=not more,
                         new_due=new_due)  # fmt: skip
        days = self.count(cells, "suspended_days")
        if days:
            on = datetime.combine(calendar.working_day_on_or_after(start.date()), time.min)
            off = datetime.combine(calendar.add_working_days(on.date(), days), time.min)
            self.add(f"export:suspended_days:{days}", "suspended", on, "导出：挂起")
            self.add(f"export:suspended_days:{days}:off", "resumed", off, "导出：挂起")
        evaluated = cells.get("evaluated", "")
        if evaluated.lower() in NOT_COUNTED:
            self.add("export:evaluated:no", "appeal_upheld", start, "导出：不纳入考核")
        elif evaluated and "export:evaluated:no" in t.export_keys:
            self.add("export:evaluated:yes", "appeal_rejected", start, "导出：纳入考核")
        self._callback(cells)
        self._redo_count(cells)
        self._status(status, suspending)

    def _redo_count(self, cells: dict[str, str]) -> None:
        """The export counts more redos (重办次数) than the clock holds, with this row's
        call-back: each missing one is a `redo` (`export:redo_count:<ordinal>`, the ordinal
        among the ticket's redos: a re-import finds them counted and derives nothing). Its
        time is not in the export: a closed ticket's close time (it was redone before it
        was closed), else the import's; the payload says so. Fewer than the clock holds:
        reported by `count_disagreements`, nothing removed."""
        said = self.count(cells, "redo_count")
        if not said:
            return
        t = self.ticket
        new = sum(1 for e in self.events if e.kind == "redo" and e.key not in t.export_keys)
        held = t.redos + new
        at, zh, en = (
            (t.closed_at, "办结时间", "close")
            if t.closed_at
            else (self.as_of, "导入时间", "import")
        )
        value = f"重办次数 {said}；时间不详，记于{zh} (time unknown: placed at the {en})"
        for ordinal in range(held + 1, said + 1):
            self.add(f"export:redo_count:{ordinal}", "redo", at, "导出：重办", supersede=False,
                     value=value)  # fmt: skip

    def _callback(self, cells: dict[str, str]) -> None:
        """A dissatisfied call-back (回访不满意) is a redo at the call-back's time."""
        result = cells.get("callback", "")
        if not result or self.mapping.values.satisfaction.get(result, result) != "dissatisfied":
            return
        when = parse_time(cells.get("callback_at", ""), self.mapping)
        if when is None:
            self.problem("callback_at", f"不是时间 ({cells.get('callback_at', '')!r})")
            return
        self.add(f"export:callback:{when.isoformat()}", "redo", when, "回访不满意，重办")

    def _status(self, status: str, suspending: set[str]) -> None:
        """A suspending status (挂起) starts a suspension at the import; a status that no
        longer suspends ends the one the export started."""
        t = self.ticket
        started = [k for k in t.export_keys if k.startswith("export:status:suspended:")]
        n = len(started)
        open_one = n > 0 and f"export:status:resumed:{n}" not in t.export_keys
        if status in suspending and t.suspended_since is None and not open_one:
            self.add(f"export:status:suspended:{n + 1}", "suspended", self.as_of, f"导出：{status}")
        elif status and status not in suspending and open_one:
            self.add(f"export:status:resumed:{n}", "resumed", self.as_of, f"导出：{status}")


def _known(engine: Engine, source: str, externals: list[str]) -> dict[str, _Known]:
    """external id -> what the clock holds for the ticket."""
    found: dict[str, _Known] = {}
    with engine.connect() as conn:
        for i in range(0, len(externals), 2000):
            query = select(
                TICKETS.c.id,
                TICKETS.c.external_id,
                TICKETS.c.received_at,
                TICKETS.c.dispatched_at,
                TICKETS.c.base_due_at,
                TICKETS.c.suspended_since,
                TICKETS.c.extension_count,
                TICKETS.c.redo_count,
                TICKETS.c.status,
                TICKETS.c.closed_at,
                TICKETS.c.due_at,
            ).where(TICKETS.c.source == source, TICKETS.c.external_id.in_(externals[i : i + 2000]))
            rows = conn.execute(query).all()
            keys: dict[int, list[str]] = {}
            query = select(EVENTS.c.item_id, EVENTS.c.key).where(
                EVENTS.c.item_kind == ItemKind.ticket,
                EVENTS.c.origin == "export",
                EVENTS.c.item_id.in_([r.id for r in rows]),
            )
            for e in conn.execute(query):
                keys.setdefault(int(e.item_id), []).append(e.key)
            for r in rows:
                found[r.external_id] = _Known(
                    int(r.id), r.dispatched_at or r.received_at, r.base_due_at, r.suspended_since,
                    r.extension_count, r.redo_count, tuple(keys.get(int(r.id), ())),
                    r.closed_at if TicketStatus(r.status) == TicketStatus.closed else None,
                    r.due_at,
                )  # fmt: skip
    return found


def count_disagreements(
    engine: Engine, path: Path, mapping: SourceMapping, source: str
) -> list[Refused]:
    """Rows whose extension or redo counts differ from the clock's once the events they
    derive are recorded: a count lower than the clock's (an office decision the export does
    not know), or extensions the export gives no deadline for. Nothing is removed."""
    columns = {k: v for k, v in mapping.clock_columns.items() if k in ("extensions", "redo_count")}
    if not columns:
        return []
    id_column = mapping.columns["external_id"]
    rows = list(read_table(path, mapping, [id_column, *columns.values()]))
    known = _known(engine, source, [r[id_column] for _, r in rows])
    found: list[Refused] = []
    for number, row in rows:
        ticket = known.get(row[id_column])
        if ticket is None:
            continue
        for name, column in columns.items():
            text = row[column]
            ours = ticket.extensions if name == "extensions" else ticket.redos
            if text.isdigit() and int(text) != ours:
                why = (
                    f"导出 {column} 为 {text}，现行为 {ours}（保留） (the export says {text}, "
                    f"the decisions in force {ours}: kept)"
                )
                if name == "extensions" and int(text) > ours:
                    why += (
                        "；缺少的延期没有延期后时限，无法补录 (the missing extensions come with "
                        "no extended deadline: not derived)"
                    )
                found.append(
                    Refused(f"{source}:{row[id_column]}", name, why, f"{path.name} row {number}")
                )
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
    path, mapping = Path(path), config.source(source)
    if touched:
        out.disagreements = _keep_reopenings(engine, touched, path)
        apply_clock(engine, touched, as_of=as_of, config=config)
    events, bad = column_events(engine, path, mapping, source, config, as_of)
    if events:
        out.result = record_events(engine, events, as_of=as_of, all_or_nothing=False, config=config)
    out.result.refused[:0] = bad
    if touched:
        out.disagreements += _deadline_disagreements(engine, touched, path)
    out.disagreements += count_disagreements(engine, path, mapping, source)
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
