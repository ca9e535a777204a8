"""`duban import tickets`: an export file into the tickets table, upserted by (source, id).

Walk: read_export (chunks of strings) -> validate_rows (typed good rows + bad rows)
-> per chunk, one transaction: look up existing ids, insert the new, update the changed,
leave the unchanged, record the bad in quarantine and in a CSV report.
Re-importing the same or an updated export changes what changed and never duplicates.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ARRAY, Engine, String, Table, any_, bindparam, insert, select, update

from duban.bulk_insert import insert_new
from duban.city import problem_by_category, unit_lookup
from duban.config import CityConfig
from duban.db import session_scope
from duban.models import ImportRun, QuarantinedRow, Ticket
from duban.rules.masking import mask_personal_data
from duban.sources import DEFAULT_CHUNK_ROWS, RawChunk, read_export
from duban.ticket_rows import RECORD_FIELDS, BadRow, TicketRefs, validate_rows

TICKETS = cast(Table, Ticket.__table__)
QUARANTINE = cast(Table, QuarantinedRow.__table__)
HASHED = (*RECORD_FIELDS, "unit_id", "problem_id")
REPORT_COLUMNS = ("file", "sheet", "row", "field", "column", "value", "reason")


@dataclass
class ImportSummary:
    run_id: int
    file: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    report_path: str | None = None

    def line(self) -> str:
        text = (
            f"{self.file}: read {self.read}, inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, quarantined {self.quarantined}"
        )
        if self.report_path:
            text += f" (see {self.report_path})"
        return text


class _Report:
    """The quarantine report: one CSV line per finding; personal data masked."""

    def __init__(self, path: Path, file_name: str) -> None:
        self.path = path
        self.file_name = file_name
        self._handle: Any = None
        self._writer: Any = None

    def write(self, bad: list[BadRow], sheet: str | None) -> None:
        if not bad:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", newline="", encoding="utf-8-sig")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(REPORT_COLUMNS)
        for row in bad:
            for err in row.errors:
                value = mask_personal_data(err["value"])
                self._writer.writerow(
                    [
                        self.file_name,
                        sheet or "",
                        row.row_number,
                        err["field"],
                        err["column"],
                        value,
                        mask_personal_data(err["reason"]),
                    ]
                )

    def close(self) -> str | None:
        if self._handle is None:
            return None
        self._handle.close()
        return str(self.path)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts for the DB driver: NaT/NaN -> None, numpy -> Python.

    Column by column (vectorised), not value by value: this runs for every imported row.
    """
    columns: list[list[Any]] = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series.dt.to_pydatetime().tolist() if len(series) else []
            mask = series.isna().tolist()
            columns.append([None if m else v for v, m in zip(values, mask, strict=True)])
        else:
            columns.append(series.astype(object).where(series.notna(), None).tolist())
    names = [str(c) for c in frame.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _row_hash(frame: pd.DataFrame) -> pd.Series:
    """A stable 64-bit hash of the imported fields of each row, for change detection.

    Times and numbers are hashed as they are (cheap); everything else as text, so the hash
    does not depend on which dtype a chunk's column happened to get.
    """
    parts = {}
    for name in HASHED:
        series = frame[name]
        native = pd.api.types.is_datetime64_any_dtype(series) or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )
        parts[name] = series if native else series.astype(str)
    hashed = pd.util.hash_pandas_object(pd.DataFrame(parts, index=frame.index), index=False)
    return pd.Series(hashed.to_numpy(dtype="uint64").view("int64"), index=frame.index)


def _one_of(conn: Any, column: Any, values: list[str]) -> Any:
    """column IN values: one array parameter on PostgreSQL (20,000 separate parameters cost
    more to send and plan than the lookup itself), an expanding IN elsewhere."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("ids", values, type_=ARRAY(String)))
    return column.in_(values)


def import_tickets(
    engine: Engine,
    config: CityConfig,
    path: Path,
    source: str,
    reports_dir: Path,
    *,
    timezone: str = "Asia/Shanghai",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[RawChunk, ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import one export; return what happened. Errors of the whole file raise ExportError.

    `timezone` is the city's (DUBAN_TIMEZONE): times are converted to it from the export's.
    """
    mapping = config.source(source)
    path = Path(path)
    with session_scope(engine) as session:
        refs = TicketRefs(
            unit_ids=unit_lookup(session, config, mapping.unit_by),
            problem_by_category=problem_by_category(session),
            urgency=config.urgency,
            calendar=config.calendar,
            city_zone=ZoneInfo(timezone),
        )
        run = ImportRun(
            kind="tickets", source=source, file_name=str(path), started_at=datetime.now()
        )
        session.add(run)
        session.flush()
        run_id = run.id
    if not refs.unit_ids:
        raise ValueError("no units in the database: run `duban sync` (config/units.yaml) first")
    summary = ImportSummary(run_id=run_id, file=str(path))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report = _Report(
        reports_dir / "quarantine" / f"{stamp}-run{run_id}-{source}-{path.stem}.csv", path.name
    )
    try:
        for chunk in read_export(path, mapping, chunk_rows):
            good, bad = validate_rows(chunk.frame, chunk.first_row, mapping, refs)
            _store_chunk(engine, source, run_id, str(path), chunk.sheet, good, bad, summary)
            report.write(bad, chunk.sheet)
            summary.read += len(chunk.frame)
            if on_chunk:
                on_chunk(chunk, summary)
    finally:
        summary.report_path = report.close()
        with session_scope(engine) as session:
            run = session.get_one(ImportRun, run_id)
            run.finished_at = datetime.now()
            run.read, run.inserted, run.updated = summary.read, summary.inserted, summary.updated
            run.unchanged, run.quarantined = summary.unchanged, summary.quarantined
            run.report_path = summary.report_path
    return summary


def _store_chunk(
    engine: Engine,
    source: str,
    run_id: int,
    file_name: str,
    sheet: str | None,
    good: pd.DataFrame,
    bad: list[BadRow],
    summary: ImportSummary,
) -> None:
    table = TICKETS
    with engine.begin() as conn:
        if bad:
            conn.execute(
                insert(QUARANTINE),
                [
                    {
                        "import_run_id": run_id,
                        "file_name": file_name,
                        "sheet": sheet,
                        "row_number": b.row_number,
                        "errors": b.errors,
                        "raw": b.raw,
                    }
                    for b in bad
                ],
            )
            summary.quarantined += len(bad)
        if good.empty:
            return
        good = good.assign(row_hash=_row_hash(good), source=source)
        ids = good["external_id"].tolist()
        existing = pd.DataFrame(
            conn.execute(
                select(table.c.external_id, table.c.id, table.c.row_hash).where(
                    table.c.source == source, _one_of(conn, table.c.external_id, ids)
                )
            ).all(),
            columns=["external_id", "id", "old_hash"],
        )
        merged = good.merge(existing, on="external_id", how="left")
        new = merged[merged["id"].isna()].drop(columns=["id", "old_hash"])
        known = merged[merged["id"].notna()]
        changed = known[known["row_hash"] != known["old_hash"]]
        summary.unchanged += len(known) - len(changed)
        if not new.empty:
            # DO NOTHING: an id that a parallel import inserted meanwhile is not duplicated.
            insert_new(conn, table, new[[*HASHED, "row_hash", "source"]], ["source", "external_id"])
            summary.inserted += len(new)
        if not changed.empty:
            # Bind names must differ from column names in UPDATE ... SET.
            columns = [c for c in (*HASHED, "row_hash") if c != "external_id"]
            frame = changed[[*columns, "id"]].rename(columns=lambda c: f"v_{c}")
            rows = _records(frame)
            stmt = (
                update(table)
                .where(table.c.id == bindparam("v_id"))
                .values({c: bindparam(f"v_{c}") for c in columns})
            )
            conn.execute(stmt, rows)
            summary.updated += len(changed)
