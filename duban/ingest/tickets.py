"""`duban import tickets`: an export file into the tickets table, upserted by (source, id).

Walk: read_export (chunks of strings) -> validate_rows (typed good rows + bad rows)
-> per chunk, one transaction: look up existing ids, insert the new, update the changed,
leave the unchanged, record the bad in quarantine and in a CSV report.
Re-importing the same or an updated export changes what changed and never duplicates: a bad
row is recorded once per (source, file checksum, row) — a workbook's later sheets keyed
apart, `sheet_key` —, however often its file is imported
(the run's summary and CSV report still count and list every bad row the run read).

Bulk mode (a first load, e.g. a year of history): the non-unique indexes of `tickets` are
dropped before the load and rebuilt after it, so that the load pays one index build instead
of per-row index upkeep. The primary key and the unique (source, external_id) stay, so the
upserts work as always and nothing can be duplicated. See `import_tickets`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import (
    ARRAY,
    Engine,
    Index,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex, DropIndex

from duban.clock.exports import after_import, with_events
from duban.config import CityConfig, SourceMapping
from duban.db import insert_ignore, session_scope
from duban.db.bulk_insert import insert_new, upsert
from duban.db.models import ImportRun, QuarantinedRow, Ticket
from duban.ingest.city import problem_by_category, unit_lookup
from duban.ingest.columnar import validate_columns
from duban.ingest.fastcsv import ColumnChunk, read_columns
from duban.ingest.places import with_place_keys
from duban.ingest.rows import RECORD_FIELDS, BadRow, TicketRefs, validate_rows
from duban.ingest.sources import (
    DEFAULT_CHUNK_ROWS,
    ExportError,
    RawChunk,
    better_encoding,
    read_export,
)
from duban.ingest.xlsx import XlsxReader
from duban.rules.formulas import csv_safe
from duban.rules.masking import mask_personal_data

TICKETS = cast(Table, Ticket.__table__)
QUARANTINE = cast(Table, QuarantinedRow.__table__)
HASHED = (*RECORD_FIELDS, "unit_id", "problem_id")
REPORT_COLUMNS = ("file", "sheet", "row", "field", "column", "value", "reason")

log = logging.getLogger(__name__)

# Bulk mode is chosen automatically only for exports of at least this many (estimated) rows.
BULK_MIN_ROWS = 100_000
# How much of a CSV export is read to estimate its row count (bytes per line).
_ESTIMATE_SAMPLE_BYTES = 1 << 20
# Memory for each index build of the rebuild on PostgreSQL (SET LOCAL, one transaction each).
REBUILD_MAINTENANCE_WORK_MEM = "512MB"
# The key of a quarantine record: a bad row of a file is recorded once.
QUARANTINE_KEY = ["source", "file_sha256", "row_number"]


@dataclass
class ImportSummary:
    run_id: int
    file: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    superseded: int = 0  # rows of an id that a later row of the file lists again (it wins)
    blank_lines: int = 0  # blank (or empty formatted) rows: skipped, not in `read`
    undecodable: int = 0  # quarantined rows with bytes the mapping's encoding cannot decode
    notes: list[str] = field(default_factory=list)  # e.g. sheets not read, a better encoding
    report_path: str | None = None
    bulk: bool = False  # the non-unique indexes were dropped for the load and rebuilt after
    index_rebuild_s: float = 0.0  # seconds the rebuild took (bulk mode)
    indexes_recreated: list[str] = field(default_factory=list)  # found missing before the load
    # The clock (docs/clock.md): rewritten tickets that have events (replayed after the
    # load), events from the export's clock columns, disagreements with decisions (kept).
    clock_touched: list[int] = field(default_factory=list)
    clock_recorded: int = 0
    clock_refused: int = 0
    clock_disagreements: int = 0

    def line(self) -> str:
        text = (
            f"{self.file}: read {self.read}, inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, quarantined {self.quarantined}, "
            f"superseded {self.superseded}"
        )
        if self.blank_lines:
            text += f"; {self.blank_lines} blank rows skipped"
        if self.report_path:
            text += f" (see {self.report_path})"
        if self.bulk:
            text += f"; bulk mode: indexes rebuilt in {self.index_rebuild_s:.1f} s"
        if self.clock_recorded or self.clock_refused or self.clock_disagreements:
            text += (
                f"; clock: {self.clock_recorded} events recorded, {self.clock_refused} refused, "
                f"{self.clock_disagreements} disagreements with decisions in force (kept)"
            )
        if self.indexes_recreated:
            text += f"; recreated missing indexes: {', '.join(self.indexes_recreated)}"
        for note in self.notes:
            text += f"; {note}"
        return text

    def committed(self) -> str:
        """What an interrupted import has committed (each chunk commits on its own)."""
        return (
            f"committed before the error: the first {self.read} rows read (inserted "
            f"{self.inserted}, updated {self.updated}, unchanged {self.unchanged}, quarantined "
            f"{self.quarantined}, superseded {self.superseded}); importing the file again "
            "resumes: the committed rows count as unchanged"
        )


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
                    csv_safe(v)  # no cell of data runs as a formula (duban/rules/formulas.py)
                    for v in (
                        self.file_name,
                        sheet or "",
                        row.row_number,
                        err["field"],
                        err["column"],
                        value,
                        mask_personal_data(err["reason"]),
                    )
                )

    def write_clock(self, lines: list[Any]) -> None:
        """The clock's findings (duban.clock.Refused): refused events, disagreements."""
        self.write(
            [BadRow(0, [{"field": "clock", "column": r.key, "value": r.item_ref,
                         "reason": f"{r.origin_ref or ''} {r.reason}".strip()}], {})
             for r in lines],
            None,
        )  # fmt: skip

    def close(self) -> str | None:
        if self._handle is None:
            return None
        self._handle.close()
        return str(self.path)


SUPERSEDED = "superseded by row {} (the same id: the file's last row of an id is stored)"


def superseded_records(rows: list[tuple[int, int, str]], column: str) -> list[BadRow]:
    """Rows (row, by row, id) whose id a later row of the file lists again, as the quarantine
    records them: not stored (the later row is), listed in the report, and skipped when the
    same file is imported again (so that its earlier row is not written back first)."""
    return [
        BadRow(row, [{"field": "external_id", "column": column, "value": external_id,
                      "reason": SUPERSEDED.format(by)}], {"external_id": external_id})
        for row, by, external_id in rows
    ]  # fmt: skip


def _is_superseded(errors: list[dict[str, Any]]) -> bool:
    return len(errors) == 1 and str(errors[0].get("reason", "")).startswith(SUPERSEDED[:18])


class _KnownSuperseded:
    """The rows an earlier import of the same file (and sheet) recorded as superseded."""

    def __init__(self, engine: Engine, source: str) -> None:
        self.engine = engine
        self.source = source
        self._by_key: dict[str, dict[int, list[dict[str, Any]]]] = {}

    def of(self, key: str) -> dict[int, list[dict[str, Any]]]:
        if key not in self._by_key:
            query = select(QUARANTINE.c.row_number, QUARANTINE.c.errors).where(
                QUARANTINE.c.source == self.source, QUARANTINE.c.file_sha256 == key
            )
            with self.engine.connect() as conn:
                found = conn.execute(query).all()
            self._by_key[key] = {r: e for r, e in found if _is_superseded(e)}
        return self._by_key[key]


# Columns whose values are (nearly) all distinct: hashing them directly skips factorising.
_DISTINCT = frozenset({"external_id", "content", "address", "caller_phone"})


_MISSING_HASH = np.uint64(2**64 - 1)  # what pandas' hashing gives a missing value


def hash_rows(frame: pd.DataFrame, plain: bool = False) -> pd.Series:
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
        if pd.api.types.infer_dtype(values, skipna=False) == "string":  # all str
            hashes.append(pd.util.hash_array(values, categorize=name not in _DISTINCT))
        elif plain and pd.api.types.infer_dtype(values, skipna=True) == "string":
            # str or None: what .astype(str) gives hashed without building it (`plain`:
            # the columnar import; the same values)
            missing = pd.isna(values)
            filled = values.copy()
            filled[missing] = ""
            found = pd.util.hash_array(filled, categorize=name not in _DISTINCT)
            found[missing] = _MISSING_HASH
            hashes.append(found)
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


_UNIT_SEPARATOR = "\x1f"


def _one_of(conn: Any, column: Any, values: list[str]) -> Any:
    """column IN values. On PostgreSQL one parameter: the values joined by the unit
    separator (U+001F) and split by the server; the lookup of 20,000 stored ids took 76 ms
    against 100 ms with a text[] parameter (medians of 7, 4 Dec), and 20,000 separate
    parameters cost more to send and plan than the lookup itself. A text[] when a value
    holds the separator itself. An expanding IN elsewhere."""
    if conn.dialect.name != "postgresql":
        return column.in_(values)
    joined = _UNIT_SEPARATOR.join(values)
    if joined and joined.count(_UNIT_SEPARATOR) == len(values) - 1:  # "" splits into {}
        split = func.string_to_array(bindparam("ids", joined, type_=Text), _UNIT_SEPARATOR)
        return column == any_(split)
    return column == any_(bindparam("ids", values, type_=ARRAY(String)))


def secondary_indexes() -> list[Index]:
    """The non-unique indexes of `tickets` as the model declares them (partial ones with
    their WHERE): those bulk mode drops and rebuilds. The primary key and the unique
    (source, external_id) are constraints, not among these, and always stay."""
    return sorted((ix for ix in TICKETS.indexes if not ix.unique), key=lambda ix: str(ix.name))


def _missing_indexes(engine: Engine) -> list[Index]:
    present = {ix["name"] for ix in inspect(engine).get_indexes(TICKETS.name)}
    return [ix for ix in secondary_indexes() if ix.name not in present]


def _create_indexes(engine: Engine, indexes: list[Index]) -> None:
    """Create the indexes exactly as declared, each in its own transaction (one built is
    kept if a later one fails); on PostgreSQL with more maintenance_work_mem for the sort."""
    for ix in indexes:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text(f"SET LOCAL maintenance_work_mem = '{REBUILD_MAINTENANCE_WORK_MEM}'")
                )
            conn.execute(CreateIndex(ix, if_not_exists=True))


def ensure_ticket_indexes(engine: Engine) -> list[str]:
    """Recreate every index of `tickets` that the model declares and the database lacks (a
    bulk import killed before its rebuild leaves them missing); return their names.

    Idempotent, and cheap when nothing is missing (one catalog query). Runs at the start of
    every import.
    """
    missing = _missing_indexes(engine)
    if not missing:
        return []
    names = [str(ix.name) for ix in missing]
    log.warning(
        "the tickets table lacks %d of its indexes (%s), probably left by an interrupted bulk "
        "import; recreating them now",
        len(names),
        ", ".join(names),
    )
    _create_indexes(engine, missing)
    return names


def estimate_export_rows(path: Path) -> int | None:
    """The export's data rows, estimated cheaply; None when unknown (Excel workbooks).

    CSV: the file's size over the bytes per line of its first MiB (exact for a smaller file;
    a quoted value spanning lines makes it a little high).
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".txt"):
        return None
    size = path.stat().st_size
    with path.open("rb") as handle:
        sample = handle.read(_ESTIMATE_SAMPLE_BYTES)
    lines = sample.count(b"\n")
    if len(sample) >= size:  # the whole file
        if sample and not sample.endswith(b"\n"):
            lines += 1
        return max(lines - 1, 0)  # less the header
    return max(round(size * max(lines, 1) / len(sample)) - 1, 0)


def _ticket_rows(engine: Engine, at_most: int) -> int:
    """How many rows `tickets` holds, counted up to `at_most` (bounded cost on any table)."""
    some = select(literal(1)).select_from(TICKETS).limit(at_most).subquery()
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(some)) or 0)


def choose_bulk(
    engine: Engine, path: Path, bulk: bool | None = None, *, min_rows: int = BULK_MIN_ROWS
) -> bool:
    """Whether to import in bulk mode: `bulk` when given, else automatically.

    Automatic: a CSV export of at least `min_rows` (estimated) rows, more than twice what
    the table holds now — a first load: at least half its rows are new, so one index build
    costs less than their per-row upkeep (a re-import of the file that filled the table
    stays normal, however big). An Excel export (row count unknown without reading it) only
    into an empty table.
    """
    path = Path(path)
    if bulk is not None:
        return bulk
    if not path.is_file():
        return False  # reading reports it
    estimate = estimate_export_rows(path)
    if estimate is None:
        return _ticket_rows(engine, 1) == 0
    if estimate < min_rows:
        return False
    return 2 * _ticket_rows(engine, (estimate + 1) // 2) < estimate


def _drop_secondary_indexes(engine: Engine) -> None:
    """DROP INDEX IF EXISTS each non-unique index, in one transaction committed at once (the
    table's lock is not held through the load)."""
    with engine.begin() as conn:
        for ix in secondary_indexes():
            conn.execute(DropIndex(ix, if_exists=True))


def _analyze_tickets(engine: Engine) -> None:
    """ANALYZE tickets: after a bulk load the planner must not plan the next queries on the
    empty table it last saw. Autovacuum would get to it, but not before the daily run that
    follows a first load; without statistics the ladder's anti-join became a nested loop
    that slowed month by month (the benchmark's year of catch-up took ~1 h instead of 4 min
    at full size)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE tickets")


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes (hex), read in blocks: the quarantine's file key."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _checksum_beside(path: Path) -> Callable[[], str]:
    """`file_sha256(path)` computed in a thread of its own while the import begins to read
    (hashlib releases the GIL on big blocks); what is returned waits for it (and raises
    what it raised). "" for a path that is not a file."""
    if not path.is_file():
        return lambda: ""
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duban-sha256")
    future = hasher.submit(file_sha256, path)
    hasher.shutdown(wait=False)  # (the thread ends when the hash is done)
    return future.result


def sheet_key(checksum: str, sheet: str | None, index: int) -> str:
    """The quarantine's file key of a sheet's rows: the file's checksum for a CSV file and a
    workbook's first sheet; for a later sheet the SHA-256 of checksum, index and name, so
    that its row 5 is another record than the first sheet's (the key has no sheet)."""
    if index == 0:
        return checksum
    return hashlib.sha256(f"{checksum}:{index}:{sheet}".encode()).hexdigest()


def ticket_refs(
    session: Session, config: CityConfig, mapping: SourceMapping, timezone: str
) -> TicketRefs:
    """What validating a source's rows looks up: its units, the problems by category, the
    urgency levels, the calendar and the city's time zone."""
    return TicketRefs(
        unit_ids=unit_lookup(session, config, mapping.unit_by),
        problem_by_category=problem_by_category(session),
        urgency=config.urgency,
        calendar=config.calendar,
        city_zone=ZoneInfo(timezone),
    )


IMPORT_ENGINES = ("columnar", "rows")
Chunk = RawChunk | ColumnChunk


def import_engine(name: str | None = None) -> str:
    """The import's engine: `name`, else DUBAN_IMPORT_ENGINE, else columnar."""
    chosen = name or os.environ.get("DUBAN_IMPORT_ENGINE") or "columnar"
    if chosen not in IMPORT_ENGINES:
        raise ValueError(f"DUBAN_IMPORT_ENGINE: {chosen!r} is not one of {IMPORT_ENGINES}")
    return chosen


def _chunks(
    path: Path, mapping: SourceMapping, chunk_rows: int, columnar: bool, xlsx_reader: XlsxReader
) -> Iterator[Chunk]:
    """The export's chunks: a CSV file through the columnar reader when `columnar`, a
    workbook through `xlsx_reader`."""
    if columnar and path.is_file() and path.suffix.lower() in (".csv", ".txt"):
        yield from read_columns(path, mapping, chunk_rows)
    else:
        yield from read_export(path, mapping, chunk_rows, xlsx_reader)


def import_tickets(
    engine: Engine,
    config: CityConfig,
    path: Path,
    source: str,
    reports_dir: Path,
    *,
    timezone: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[Chunk, ImportSummary], None] | None = None,
    bulk: bool | None = None,
    xlsx_reader: XlsxReader = "calamine",
    engine_name: str | None = None,
) -> ImportSummary:
    """Import one export; return what happened. Errors of the whole file raise ExportError.

    `engine_name`: "columnar" (pyarrow: duban/ingest/fastcsv.py, columnar.py) or "rows"
    (Python's csv reader and validate_rows alone, as before); None: DUBAN_IMPORT_ENGINE,
    else columnar. Both store the same rows and quarantine the same (tests/db/test_import_paths.py).

    `timezone` is the city's (`Settings.timezone`: DUBAN_TIMEZONE, else config/city.yaml);
    None: config/city.yaml's. Times are converted to it from the export's (the mapping's
    `timezone`, else the city's).

    `bulk`: True forces bulk mode, False forbids it, None chooses (`choose_bulk`): bulk for
    a CSV export of at least BULK_MIN_ROWS estimated rows, more than twice what the table
    holds (an Excel export only into an empty table). Bulk mode drops the non-unique indexes of
    `tickets` (its own committed transaction) and rebuilds them as the model declares them
    when the load ends, in a `finally`: also after an error (the chunks committed before it
    stay, as always). It is meant for the first load: while the indexes are absent, other
    readers of `tickets` are slow. Every import first recreates any index a killed bulk
    import left missing (`ensure_ticket_indexes`).

    `xlsx_reader` (`Settings.xlsx_reader`): what reads an Excel export (calamine; openpyxl,
    the slow reader it replaced, to compare with).
    """
    mapping = config.source(source)
    path = Path(path)
    timezone = timezone or config.city.timezone
    columnar = import_engine(engine_name) == "columnar"
    checksum = _checksum_beside(path)  # a missing file: "" (read_export says why)
    recreated = ensure_ticket_indexes(engine)
    with session_scope(engine) as session:
        refs = ticket_refs(session, config, mapping, timezone)
        run = ImportRun(
            kind="tickets", source=source, file_name=str(path), started_at=datetime.now()
        )
        session.add(run)
        session.flush()
        run_id = run.id
    if not refs.unit_ids:
        raise ValueError("no units in the database: run `duban sync` (config/units.yaml) first")
    summary = ImportSummary(run_id=run_id, file=str(path), indexes_recreated=recreated)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report = _Report(
        reports_dir / "quarantine" / f"{stamp}-run{run_id}-{source}-{path.stem}.csv", path.name
    )
    # Two stages overlap: while the database stores one chunk (in a worker thread; the
    # driver waits for the server without holding the GIL), the next is read and validated.
    # Chunks are stored, counted and reported strictly in file order, one transaction each.
    pending: tuple[Future[None], Chunk, list[BadRow], list[BadRow]] | None = None
    ids = _FileIds()
    known = _KnownSuperseded(engine, source)
    id_column = mapping.columns["external_id"]

    def finish(stored: tuple[Future[None], Chunk, list[BadRow], list[BadRow]]) -> None:
        future, chunk, bad, superseded = stored
        future.result()  # raises what storing raised
        report.write(sorted(bad + superseded, key=lambda b: b.row_number), chunk.sheet)
        summary.read += len(chunk.row_numbers())
        summary.superseded += len(superseded)
        summary.blank_lines += chunk.blank_lines
        summary.undecodable += sum(b.undecodable for b in bad)
        summary.notes.extend(chunk.notes)
        if on_chunk:
            on_chunk(chunk, summary)

    try:
        summary.bulk = choose_bulk(engine, path, bulk)
        try:
            if summary.bulk:
                log.info("bulk mode: dropping the non-unique indexes of tickets for the load")
                _drop_secondary_indexes(engine)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="duban-import") as writer:
                try:
                    for chunk in _chunks(path, mapping, chunk_rows, columnar, xlsx_reader):
                        key = sheet_key(checksum(), chunk.sheet, chunk.sheet_index)
                        if isinstance(chunk, ColumnChunk):
                            good, bad = validate_columns(chunk, mapping, refs)
                        else:
                            good, bad = validate_rows(
                                chunk.frame, chunk.row_numbers(), mapping, refs, chunk.problems
                            )
                        good, again = _skip_known(good, chunk, known.of(key))
                        excluded = [b.row_number for b in bad + again]
                        found, repeated = ids.note(chunk, good, excluded)
                        superseded = sorted(
                            again + superseded_records(found, id_column),
                            key=lambda b: b.row_number,
                        )
                        if not good.empty:
                            hashed = good.assign(row_hash=hash_rows(good, columnar))
                            good = with_place_keys(hashed, columnar)
                        if pending is not None:
                            stored, pending = pending, None
                            finish(stored)
                        future = writer.submit(
                            _store_chunk, engine, source, run_id, (str(path), key),
                            chunk.sheet, good, bad, summary, repeated, superseded, columnar,
                        )  # fmt: skip
                        pending = (future, chunk, bad, superseded)
                    if pending is not None:
                        stored, pending = pending, None
                        finish(stored)
                finally:
                    # An error while reading the next chunk: the one in flight still ends
                    # (and is counted) before the error goes on.
                    if pending is not None and pending[0].exception() is None:
                        finish(pending)
        except ExportError as exc:
            if summary.read == 0:
                raise
            raise ExportError(f"{exc}; {summary.committed()}") from None
        except BaseException:
            if summary.read:
                log.error("%s: import interrupted; %s", path, summary.committed())
            raise
        finally:
            if summary.bulk:
                # After an error too (the writer thread has ended: its chunk is committed or
                # rolled back). A killed process leaves them to the next import's
                # ensure_ticket_indexes.
                started = time.perf_counter()
                missing = _missing_indexes(engine)
                _create_indexes(engine, missing)
                _analyze_tickets(engine)
                summary.index_rebuild_s = time.perf_counter() - started
                log.info(
                    "bulk mode: rebuilt %d indexes of tickets in %.1f s",
                    len(missing),
                    summary.index_rebuild_s,
                )
        # The import never erases a decision (docs/clock.md): the clock columns recorded as
        # events, the rewritten tickets with events replayed, every disagreement reported.
        clock = after_import(engine, config, path, source, summary.clock_touched)
        summary.clock_recorded, summary.clock_refused = clock.counts()
        summary.clock_disagreements = len(clock.disagreements)
        report.write_clock(clock.findings())
    finally:
        if summary.undecodable:
            better = better_encoding(path, mapping.encoding)
            if better:
                summary.notes.append(
                    f"{summary.undecodable} rows are not {mapping.encoding} text, but the whole "
                    f"file reads as {better}: set `encoding: {better}` in "
                    f"config/sources/{source}.yaml and import it again"
                )
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
    file: tuple[str, str],
    sheet: str | None,
    good: pd.DataFrame,
    bad: list[BadRow],
    summary: ImportSummary,
    repeated: np.ndarray | None = None,
    superseded: list[BadRow] | None = None,
    arrow: bool = False,
) -> None:
    """One chunk in one transaction: quarantine the bad rows, upsert the new and changed
    (`arrow`: the columnar engine's writing, bulk_insert's).

    `file` is the file's name and checksum: a bad row already recorded for this source,
    checksum and row number (an earlier import of the same file) is not recorded again.

    `good` carries its `row_hash`. Existing rows of the chunk's ids are looked up first
    (one indexed query), so that unchanged rows are neither sent nor written, and the
    summary can tell new from changed. New rows are inserted (ON CONFLICT DO NOTHING), changed
    rows upserted (ON CONFLICT … DO UPDATE … WHERE the hash differs).
    """
    table = TICKETS
    file_name, checksum = file
    with engine.begin() as conn:
        if bad or superseded:
            records = [
                {
                    "import_run_id": run_id,
                    "source": source,
                    "file_sha256": checksum,
                    "file_name": file_name,
                    "sheet": sheet,
                    "row_number": b.row_number,
                    "errors": b.errors,
                    "raw": b.raw,
                }
                for b in bad + (superseded or [])
            ]
            insert_ignore(conn, QUARANTINE, records, QUARANTINE_KEY)
        if not good.empty:
            ids = good["external_id"].tolist()
            stored = conn.execute(
                select(table.c.external_id, table.c.row_hash).where(
                    table.c.source == source, _one_of(conn, table.c.external_id, ids)
                )
            ).all()
            # Columns from the rows, not a frame of Row objects: pandas probes each Row for
            # a mapping (an exception raised and caught per row): 194 ms against 6 ms per
            # 20,000 rows. Positions, not a merge: a merge would turn the 64-bit hashes
            # into floats.
            found = pd.Index([r[0] for r in stored]).get_indexer(good["external_id"])
            is_new = found < 0
            hashes = np.fromiter((r[1] for r in stored), dtype=np.int64, count=len(stored))
            old_hash = np.append(hashes, 0)[found]
            changed = ~is_new & (old_hash != good["row_hash"].to_numpy())
            keys = ["source", "external_id"]
            # base_due_at: the deadline the import fixed; due_at is the effective one, which
            # the clock rewrites for tickets with events (docs/clock.md).
            good = good.assign(base_due_at=good["due_at"])
            columns = [*HASHED, "base_due_at", "place_key", "row_hash"]
            if changed.any():  # rewritten tickets with clock events: replayed after the load
                summary.clock_touched += with_events(conn, source, good.loc[changed])
            # Apart: an upsert that may update costs SQLite twice an insert's time.
            # DO NOTHING: an id that a parallel import inserted meanwhile is not duplicated.
            insert_new(conn, table, good.loc[is_new, columns].assign(source=source), keys, arrow)
            upsert(
                conn, table, good.loc[changed, columns].assign(source=source), keys, "row_hash",
                arrow,
            )  # fmt: skip
            # A row whose id an earlier chunk of this file stored supersedes that row (which
            # was counted): it counts as neither inserted, updated nor unchanged.
            first = ~repeated if repeated is not None else np.ones(len(good), dtype=bool)
            counts = (
                int((is_new & first).sum()),
                int((changed & first).sum()),
                int((~is_new & ~changed & first).sum()),
            )
        else:
            counts = (0, 0, 0)
    # Counted once committed (the writer thread runs one chunk at a time).
    summary.quarantined += len(bad)
    summary.inserted += counts[0]
    summary.updated += counts[1]
    summary.unchanged += counts[2]


class _FileIds:
    """The ids a file's rows have stored so far, with their row numbers: a later row of the
    same id supersedes the earlier one (the file's last row of an id is stored).

    Kept as sorted 64-bit hashes of the ids beside their rows (16 bytes an id, not a dict's
    ~130): a first load of a million rows keeps its memory. Two ids of one file with the same
    hash (odds ~1e-8 in a million) would only be miscounted, never misstored.
    """

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)
        self.rows = np.empty(0, dtype=np.int64)

    def note(
        self, chunk: Chunk, good: pd.DataFrame, excluded: list[int]
    ) -> tuple[list[tuple[int, int, str]], np.ndarray]:
        """(superseded rows as (row, by row, id), which good rows repeat an earlier chunk's
        id). Within a chunk, validation kept the last row of an id; the rows it dropped are
        neither good nor `excluded` (bad, or known superseded)."""
        numbers = chunk.row_numbers()
        positions = good.index.to_numpy()
        ids = good["external_id"].to_numpy(dtype=object)
        rows = numbers[positions]
        superseded: list[tuple[int, int, str]] = []
        dropped = np.ones(len(numbers), dtype=bool)
        dropped[positions] = False
        dropped &= ~np.isin(numbers, excluded)
        if dropped.any():
            kept_row = dict(zip(ids.tolist(), rows.tolist(), strict=True))
            raw_ids = chunk.frame["external_id"].to_numpy()
            for i in np.flatnonzero(dropped).tolist():
                by = kept_row.get(raw_ids[i])
                if by is not None and by != numbers[i]:
                    superseded.append((int(numbers[i]), by, raw_ids[i]))
        keys = pd.util.hash_array(ids, categorize=False)
        at = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        repeated = self.keys[at] == keys if len(self.keys) else np.zeros(len(ids), dtype=bool)
        for i in np.flatnonzero(repeated).tolist():
            superseded.append((int(self.rows[at[i]]), int(rows[i]), ids[i]))
        self.rows[at[repeated]] = rows[repeated]
        merged = np.concatenate([self.keys, keys[~repeated]])
        order = np.argsort(merged, kind="stable")
        self.keys = merged[order]
        self.rows = np.concatenate([self.rows, rows[~repeated]])[order]
        superseded.sort()
        return superseded, repeated


def _skip_known(
    good: pd.DataFrame, chunk: Chunk, known: dict[int, list[dict[str, Any]]]
) -> tuple[pd.DataFrame, list[BadRow]]:
    """The good rows less those an earlier import of this file found superseded, and the
    chunk's rows it found so (each as its record, for the report and the count) — also those
    validation dropped already for a later row of their id in the chunk."""
    if not known:
        return good, []
    numbers = chunk.row_numbers()
    rows = numbers[np.isin(numbers, list(known))].tolist()
    if not rows:
        return good, []
    again = [BadRow(n, known[n], {"external_id": str(known[n][0].get("value", ""))}) for n in rows]
    if not good.empty:
        good = good[~np.isin(numbers[good.index.to_numpy()], rows)]
    return good, again
