"""`duban import tickets`: an export file into the tickets table, upserted by (source, id).

Walk: read_export (chunks of strings) -> validate_rows (typed good rows + bad rows)
-> per chunk, one transaction: look up existing ids, insert the new, update the changed,
leave the unchanged, record the bad in quarantine and in a CSV report.
Re-importing the same or an updated export changes what changed and never duplicates.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import ARRAY, Engine, String, Table, any_, bindparam, insert, select

from duban.bulk_insert import insert_new, upsert
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


# Columns whose values are (nearly) all distinct: hashing them directly skips factorising.
_DISTINCT = frozenset({"external_id", "content", "address", "caller_phone"})


def _row_hash(frame: pd.DataFrame) -> pd.Series:
    """A stable 64-bit hash of the imported fields of each row, for change detection.

    Times and numbers are hashed as they are (cheap); everything else as text, so the hash
    does not depend on which dtype a chunk's column happened to get. The values equal
    `pandas.util.hash_pandas_object(frame[HASHED] with text columns .astype(str),
    index=False)` — stored hashes stay valid — computed column by column without
    converting columns that are already all `str`.
    """
    hashes = []
    for name in HASHED:
        series = frame[name]
        native = pd.api.types.is_datetime64_any_dtype(series) or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )
        if native:
            values = (
                series.array
                if isinstance(series.dtype, pd.api.extensions.ExtensionDtype)
                else series.to_numpy()
            )
            hashes.append(pd.util.hash_array(values))
            continue
        values = series.to_numpy(dtype=object)
        if all(type(v) is str for v in values):
            hashes.append(pd.util.hash_array(values, categorize=name not in _DISTINCT))
        else:
            hashes.append(pd.util.hash_array(series.astype(str).array))
    combined = _combine_hashes(hashes, len(frame))
    return pd.Series(combined.view("int64"), index=frame.index)


def _combine_hashes(arrays: list[np.ndarray], length: int) -> np.ndarray:
    """pandas' own combination of column hashes (pandas.core.util.hashing, not public)."""
    out = np.zeros(length, dtype=np.uint64) + np.uint64(0x345678)
    mult = np.uint64(1000003)
    for i, a in enumerate(arrays):
        inverse_i = len(arrays) - i
        out ^= a
        out *= mult
        mult += np.uint64(82520 + inverse_i + inverse_i)
    out += np.uint64(97531)
    return out


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
    # Two stages overlap: while the database stores one chunk (in a worker thread; the
    # driver waits for the server without holding the GIL), the next is read and validated.
    # Chunks are stored, counted and reported strictly in file order, one transaction each.
    pending: tuple[Future[None], RawChunk, list[BadRow]] | None = None

    def finish(stored: tuple[Future[None], RawChunk, list[BadRow]]) -> None:
        future, chunk, bad = stored
        future.result()  # raises what storing raised
        report.write(bad, chunk.sheet)
        summary.read += len(chunk.frame)
        if on_chunk:
            on_chunk(chunk, summary)

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="duban-import") as writer:
            try:
                for chunk in read_export(path, mapping, chunk_rows):
                    good, bad = validate_rows(chunk.frame, chunk.first_row, mapping, refs)
                    if not good.empty:
                        good = good.assign(row_hash=_row_hash(good))
                    if pending is not None:
                        finish(pending)
                        pending = None
                    future = writer.submit(
                        _store_chunk, engine, source, run_id, str(path), chunk.sheet, good, bad,
                        summary,
                    )  # fmt: skip
                    pending = (future, chunk, bad)
                if pending is not None:
                    finish(pending)
                    pending = None
            finally:
                # An error while reading the next chunk: the one in flight still ends (and
                # is counted) before the error goes on.
                if pending is not None and pending[0].exception() is None:
                    finish(pending)
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
    """One chunk in one transaction: quarantine the bad rows, upsert the new and changed.

    `good` carries its `row_hash`. Existing rows of the chunk's ids are looked up first
    (one indexed query), so that unchanged rows are neither sent nor written, and the
    summary can tell new from changed. New rows are inserted (ON CONFLICT DO NOTHING), changed
    rows upserted (ON CONFLICT … DO UPDATE … WHERE the hash differs).
    """
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
        if not good.empty:
            ids = good["external_id"].tolist()
            existing = pd.DataFrame(
                conn.execute(
                    select(table.c.external_id, table.c.row_hash).where(
                        table.c.source == source, _one_of(conn, table.c.external_id, ids)
                    )
                ).all(),
                columns=["external_id", "old_hash"],
            )
            # Positions, not a merge: a merge would turn the 64-bit hashes into floats.
            found = pd.Index(existing["external_id"]).get_indexer(good["external_id"])
            is_new = found < 0
            old_hash = np.append(existing["old_hash"].to_numpy(dtype=np.int64), 0)[found]
            changed = ~is_new & (old_hash != good["row_hash"].to_numpy())
            keys = ["source", "external_id"]
            columns = [*HASHED, "row_hash"]
            # Apart: an upsert that may update costs SQLite twice an insert's time.
            # DO NOTHING: an id that a parallel import inserted meanwhile is not duplicated.
            insert_new(conn, table, good.loc[is_new, columns].assign(source=source), keys)
            upsert(conn, table, good.loc[changed, columns].assign(source=source), keys, "row_hash")
            counts = (int(is_new.sum()), int(changed.sum()), int((~is_new & ~changed).sum()))
        else:
            counts = (0, 0, 0)
    # Counted once committed (the writer thread runs one chunk at a time).
    summary.quarantined += len(bad)
    summary.inserted += counts[0]
    summary.updated += counts[1]
    summary.unchanged += counts[2]
