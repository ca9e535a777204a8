"""`duban import tickets` on SQLite and PostgreSQL: good rows kept, bad rows quarantined,
re-import idempotent, a foreign export loaded by configuration alone."""

from __future__ import annotations

import csv
import logging
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, inspect, select, text

from duban.config import CityConfig, load_config
from duban.db import make_engine, session_scope, upgrade
from duban.db.models import ImportRun, QuarantinedRow, Ticket, TicketStatus
from duban.ingest.city import sync_city
from duban.ingest.sources import ExportError
from duban.ingest.tickets import choose_bulk, estimate_export_rows, import_tickets

DATA = Path(__file__).resolve().parents[1] / "data"
COLUMNS = [
    "external_id", "received_at", "dispatched_at", "first_response_at", "resolved_at",
    "closed_at", "due_at", "category", "district", "street", "community", "address", "content",
    "caller_phone", "unit", "urgency", "status", "resolved", "satisfaction", "returned_count",
    "reassigned_count",
]  # fmt: skip


def row(external_id: str, **values: str) -> dict[str, str]:
    base = {
        "external_id": external_id,
        "received_at": "2026-09-30 10:00:00",  # Wednesday before National Day
        "category": "噪声扰民",
        "district": "东城区",
        "street": "建国门街道",
        "unit": "dc-jianguomen",
        "urgency": "2",
        "status": "open",
        "content": "楼下施工噪声，电话13812345678",
        "caller_phone": "13812345678",
    }
    base.update(values)
    return base


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in COLUMNS})
    return path


@pytest.fixture
def city(engine: Engine, city_config: CityConfig) -> CityConfig:
    with session_scope(engine) as session:
        sync_city(session, city_config)
    return city_config


def tickets(engine: Engine) -> dict[str, Ticket]:
    with session_scope(engine) as session:
        return {t.external_id: t for t in session.scalars(select(Ticket))}


def run(
    engine: Engine, config: CityConfig, path: Path, tmp_path: Path, source: str = "duban", **kw
):  # type: ignore[no-untyped-def]
    return import_tickets(engine, config, path, source, tmp_path / "reports", **kw)


def test_good_rows_are_stored_with_computed_due_time(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [
            row("A1"),
            row("A2", urgency="1", received_at="2026-10-03 09:00:00"),  # a holiday
            row("A3", due_at="2026-10-20 18:00:00", status="已办结", closed_at="2026-10-10 09:00",
                resolved="1", satisfaction="满意", returned_count="1"),
        ],
    )  # fmt: skip
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (3, 3, 0)
    stored = tickets(engine)
    # Level 2 = 3 working days. National Day 2026 is Oct 1-7; Sat Oct 10 is a make-up
    # working day (调休). After Wed Sep 30 the working days are Oct 8, Oct 9, Oct 10.
    assert stored["A1"].due_at == datetime(2026, 10, 10, 23, 59, 59)
    # Level 1 received on a holiday counts from the next working day, Thu Oct 8, as day 1.
    assert stored["A2"].due_at == datetime(2026, 10, 8, 23, 59, 59)
    assert stored["A3"].due_at == datetime(2026, 10, 20, 18, 0)  # from the export
    assert stored["A3"].status is TicketStatus.closed
    assert stored["A3"].resolved is True
    assert stored["A3"].satisfaction is not None and stored["A3"].satisfaction.value == "satisfied"
    assert stored["A3"].returned_count == 1
    assert (
        stored["A1"].content == "楼下施工噪声，电话13812345678"
    )  # the database keeps the original
    assert stored["A1"].community is None  # empty optional text is NULL
    # Stored times compare exactly with bound ones (SQLite keeps them as text).
    at_ten = datetime(2026, 9, 30, 10, 0)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).where(Ticket.received_at >= at_ten)) == 3
        assert session.scalar(select(func.count()).where(Ticket.received_at > at_ten)) == 1
        assert session.scalar(select(func.count()).where(Ticket.received_at == at_ten)) == 2


def test_bad_rows_are_quarantined_and_good_rows_kept(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "mixed.csv",
        [
            row("G1"),
            row("", content="no id"),  # row 3
            row("B2", received_at="30/09/2026 10:00"),  # row 4
            row("B3", unit="nowhere"),  # row 5
            row("B4", closed_at="2026-09-29 10:00:00", status="closed"),  # row 6
            row("B5", status="lost"),  # row 7
            row("G2", urgency=""),
        ],
    )
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (7, 2, 5)
    assert set(tickets(engine)) == {"G1", "G2"}
    assert tickets(engine)["G2"].urgency == city.urgency.default_level

    with session_scope(engine) as session:
        bad = {q.row_number: q.errors for q in session.scalars(select(QuarantinedRow))}
    assert sorted(bad) == [3, 4, 5, 6, 7]
    assert bad[3][0]["field"] == "external_id" and bad[3][0]["reason"] == "missing"
    assert bad[4][0]["field"] == "received_at" and "30/09/2026 10:00" in bad[4][0]["reason"]
    assert bad[5][0] == {
        "field": "unit", "column": "unit", "value": "nowhere",
        "reason": "unknown unit 'nowhere' (by code)",
    }  # fmt: skip
    assert bad[6][0]["field"] == "closed_at" and "before received" in bad[6][0]["reason"]
    assert bad[7][0]["field"] == "status" and "'lost'" in bad[7][0]["reason"]

    assert summary.report_path is not None
    with Path(summary.report_path).open(encoding="utf-8-sig") as handle:
        report = list(csv.DictReader(handle))
    assert {(r["file"], r["row"], r["field"]) for r in report} >= {
        ("mixed.csv", "3", "external_id"), ("mixed.csv", "5", "unit"),
    }  # fmt: skip
    assert all("13812345678" not in r["value"] for r in report)


def test_reimport_changes_only_what_changed(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    rows = [row(f"R{i}") for i in range(5)]
    path = write_csv(tmp_path / "day1.csv", rows)
    first = run(engine, city, path, tmp_path)
    again = run(engine, city, path, tmp_path)
    assert (first.inserted, first.updated) == (5, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)

    rows[2] = row("R2", status="closed", closed_at="2026-10-09 16:00:00", resolved="1")
    rows.append(row("R5"))
    updated = run(engine, city, write_csv(tmp_path / "day2.csv", rows), tmp_path)
    assert (updated.inserted, updated.updated, updated.unchanged) == (1, 1, 4)
    stored = tickets(engine)
    assert len(stored) == 6
    assert stored["R2"].status is TicketStatus.closed
    assert stored["R2"].closed_at == datetime(2026, 10, 9, 16, 0)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ImportRun)) == 3


def test_duplicates_across_chunks_never_duplicate(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    rows = [row(f"C{i % 7}", category=f"类别{i}") for i in range(30)]
    summary = run(engine, city, write_csv(tmp_path / "dups.csv", rows), tmp_path, chunk_rows=4)
    stored = tickets(engine)
    assert len(stored) == 7
    assert summary.inserted == 7
    assert stored["C1"].category == "类别29"  # the last row of an id wins


def test_unknown_calendar_year_is_quarantined_with_a_plain_reason(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "future.csv", [row("F1", received_at="2027-02-01 09:00:00"), row("F2")]
    )
    summary = run(engine, city, path, tmp_path)
    assert (summary.inserted, summary.quarantined) == (1, 1)
    with session_scope(engine) as session:
        [q] = session.scalars(select(QuarantinedRow)).all()
    assert "2027" in q.errors[0]["reason"] and "calendar.yaml" in q.errors[0]["reason"]


def test_missing_mapped_column_is_a_file_error(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = tmp_path / "short.csv"
    path.write_text("external_id,received_at,category\nX,2026-09-30 10:00,噪声\n", encoding="utf-8")
    with pytest.raises(ExportError) as info:
        run(engine, city, path, tmp_path)
    assert "short.csv" in str(info.value) and "'unit' (for unit)" in str(info.value)
    assert tickets(engine) == {}


def test_xlsx_export(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    for r in (row("X1"), row("X2", received_at="2026-09-30 11:00:00")):
        values: list[object] = [r.get(c, "") for c in COLUMNS]
        values[1] = datetime.fromisoformat(r["received_at"])  # a real date cell
        sheet.append(values)
    path = tmp_path / "export.xlsx"
    book.save(path)
    summary = run(engine, city, path, tmp_path)
    assert (summary.inserted, summary.quarantined) == (2, 0)
    assert tickets(engine)["X2"].received_at == datetime(2026, 9, 30, 11, 0)


def nyc_config(config_dir: Path) -> CityConfig:
    units = {
        "units": [
            {"code": "NYC", "name": "NYC 311", "kind": "city", "emails": ["311@nyc.example"]},
            *(
                {"code": code, "name": code, "kind": "department", "parent": "NYC"}
                for code in ("NYPD", "DSNY", "HPD", "DOT", "DEP")
            ),
        ]
    }
    (config_dir / "units.yaml").write_text(yaml.safe_dump(units), encoding="utf-8")
    (config_dir / "problems.yaml").write_text("year: 2024\nproblems: []\n", encoding="utf-8")
    (config_dir / "calendar.yaml").write_text("years: [2024]\n", encoding="utf-8")
    return load_config(config_dir)


def test_nyc311_export_loads_by_configuration_alone(
    engine: Engine, config_dir: Path, tmp_path: Path
) -> None:
    config = nyc_config(config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    summary = run(engine, config, DATA / "nyc311_sample.csv", tmp_path, source="nyc311")
    assert (summary.read, summary.inserted, summary.quarantined) == (8, 5, 3)
    stored = tickets(engine)
    noise = stored["59893617"]
    # 08:15:42 in New York (EST, UTC-5) is 21:15:42 in Shanghai (UTC+8).
    assert noise.received_at == datetime(2024, 1, 2, 21, 15, 42)
    assert noise.status is TicketStatus.closed and noise.category == "Noise - Residential"
    assert noise.district == "MANHATTAN" and noise.street == "10 MANHATTAN"
    assert stored["59893618"].due_at == datetime(2024, 1, 9, 22, 40)  # the export's Due Date
    assert stored["59893620"].status is TicketStatus.in_progress
    with session_scope(engine) as session:
        reasons = {q.row_number: q.errors[0] for q in session.scalars(select(QuarantinedRow))}
    assert reasons[7]["column"] == "Agency" and reasons[7]["value"] == "TLC"
    assert reasons[8]["column"] == "Closed Date"
    assert reasons[9]["column"] == "Created Date" and reasons[9]["value"] == "2024-13-45"


def test_updates_inserts_and_quarantine_in_one_chunk(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    """One chunk that holds a changed row, an unchanged row, a new row and a bad row: on
    PostgreSQL the staging (COPY) path, on SQLite the executemany path."""
    run(engine, city, write_csv(tmp_path / "v1.csv", [row("U1"), row("U2")]), tmp_path)
    rows = [
        row("U1", status="closed", closed_at="2026-10-09 16:00:00", resolved="0",
            satisfaction="不满意", content="改\t行\n第二行 \\N 反斜杠", returned_count="2"),
        row("U2"),
        row("U3", community="建国门社区", urgency="4"),
        row("U4", received_at="not a date"),
    ]  # fmt: skip
    summary = run(engine, city, write_csv(tmp_path / "v2.csv", rows), tmp_path)
    assert (summary.read, summary.inserted, summary.updated, summary.unchanged) == (4, 1, 1, 1)
    assert summary.quarantined == 1
    stored = tickets(engine)
    assert set(stored) == {"U1", "U2", "U3"}
    u1 = stored["U1"]
    assert u1.status is TicketStatus.closed and u1.closed_at == datetime(2026, 10, 9, 16, 0)
    assert u1.resolved is False and u1.returned_count == 2
    assert u1.satisfaction is not None and u1.satisfaction.value == "dissatisfied"
    assert u1.content == "改\t行\n第二行 \\N 反斜杠"  # COPY's special characters survive
    assert stored["U2"].closed_at is None and stored["U2"].resolved is None
    # Level 4 = 11 working days after Wed Sep 30: Oct 8, 9, 10 (make-up), 12-16, 19-21.
    assert stored["U3"].due_at == datetime(2026, 10, 21, 23, 59, 59)
    assert stored["U3"].community == "建国门社区" and stored["U3"].problem_id is None
    with session_scope(engine) as session:
        [bad] = session.scalars(select(QuarantinedRow)).all()
    assert bad.row_number == 5 and bad.errors[0]["field"] == "received_at"
    # Nothing changed since: a third import writes nothing.
    again = run(engine, city, write_csv(tmp_path / "v3.csv", rows), tmp_path)
    assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, 3, 1)


def test_chunk_boundary_inside_duplicates(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    """An id listed on both sides of a chunk boundary: inserted by the first chunk, written
    again by the second; the file's last row wins, every earlier row of the id counts as
    superseded (and is reported), and re-importing leaves the table as it was."""
    rows = [
        row("D1", category="first"),
        row("D2"),
        row("D1", category="second"),  # row 4: the boundary is after row 3 (chunk_rows=2)
        row("D1", category="third"),
        row("D3"),
    ]
    summary = run(engine, city, write_csv(tmp_path / "dups.csv", rows), tmp_path, chunk_rows=2)
    counts = ("read", "inserted", "updated", "unchanged", "superseded")
    assert [getattr(summary, c) for c in counts] == [5, 3, 0, 0, 2]
    stored = tickets(engine)
    assert len(stored) == 3 and stored["D1"].category == "third"
    assert summary.report_path is not None
    with open(summary.report_path, encoding="utf-8-sig") as handle:
        report = [(r["row"], r["value"], r["reason"]) for r in csv.DictReader(handle)]
    assert [r[:2] for r in report] == [("2", "D1"), ("4", "D1")]
    assert all("superseded by row 5" in r[2] for r in report)
    again = run(engine, city, write_csv(tmp_path / "dups.csv", rows), tmp_path, chunk_rows=2)
    # The quarantine keeps the superseded rows of the file: imported again, D1 "first" is
    # not written back before "third" (nothing changes, not even for a moment).
    assert [getattr(again, c) for c in counts] == [5, 0, 0, 3, 2]
    assert tickets(engine)["D1"].category == "third"


def test_an_unterminated_quote_in_the_last_row_quarantines_that_row(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "cut.csv", [row(f"E{i}") for i in range(4)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('E9,"2026-09-30 10:00:00\n')  # the file cut inside a quoted field
    summary = run(engine, city, path, tmp_path, chunk_rows=2)
    assert (summary.read, summary.inserted, summary.quarantined) == (5, 4, 1)
    with session_scope(engine) as session:
        [bad] = session.scalars(select(QuarantinedRow)).all()
    assert bad.row_number == 6 and bad.errors[0]["field"] == "received_at"
    assert "ends inside this quoted field" in bad.errors[0]["reason"]


class Interrupted(Exception):
    """Raised by a progress callback: the import stops as if killed between chunks."""


def test_an_interrupted_import_keeps_the_stored_chunks_and_a_rerun_resumes(
    engine: Engine, city: CityConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Chunks commit one by one: an import stopped after its second chunk keeps the first
    two, the run records what was stored, the log says what is committed, and importing the
    file again completes it (the committed rows unchanged)."""
    path = write_csv(tmp_path / "long.csv", [row(f"E{i}") for i in range(6)])

    def stop(chunk: Any, summary: Any) -> None:
        if summary.read >= 4:
            raise Interrupted

    with caplog.at_level(logging.ERROR), pytest.raises(Interrupted):
        run(engine, city, path, tmp_path, chunk_rows=2, on_chunk=stop)
    assert set(tickets(engine)) == {"E0", "E1", "E2", "E3"}
    assert "committed before the error: the first 4 rows read (inserted 4" in caplog.text
    with session_scope(engine) as session:
        [record] = session.scalars(select(ImportRun)).all()
    assert (record.read, record.inserted) == (4, 4) and record.finished_at is not None
    again = run(engine, city, path, tmp_path, chunk_rows=2)
    assert (again.read, again.inserted, again.unchanged) == (6, 2, 4)
    assert len(tickets(engine)) == 6


# Bulk mode: the non-unique indexes dropped for the load and rebuilt after.

MODEL_INDEXES = {str(ix.name) for ix in Ticket.__table__.indexes if not ix.unique}
PARTIAL_INDEXES = {
    str(ix.name)
    for ix in Ticket.__table__.indexes
    if ix.dialect_options["postgresql"]["where"] is not None
    or ix.dialect_options["sqlite"]["where"] is not None
}


def index_names(engine: Engine) -> set[str]:
    return {str(ix["name"]) for ix in inspect(engine).get_indexes("tickets")}


def index_definition(engine: Engine, name: str) -> str:
    """The index's definition as the database holds it."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = (
                "SELECT indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND indexname = :n"
            )
        else:
            sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
        return str(conn.scalar(text(sql), {"n": name}))


def assert_every_model_index(engine: Engine) -> None:
    assert MODEL_INDEXES and index_names(engine) >= MODEL_INDEXES
    assert PARTIAL_INDEXES  # the model's partial index keeps its WHERE
    for name in PARTIAL_INDEXES:
        assert "WHERE" in index_definition(engine, name).upper()
        assert "closed" in index_definition(engine, name)


def planner_statistics(engine: Engine) -> int:
    """How many statistics the database's planner holds on `tickets` (ANALYZE makes them;
    autovacuum does not look at a table of a few rows)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = (
                "SELECT count(*) FROM pg_stats"
                " WHERE schemaname = current_schema() AND tablename = 'tickets'"
            )
        else:
            if not conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).first():
                return 0
            sql = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'tickets'"
        return int(conn.exec_driver_sql(sql).scalar_one())


def table_contents(engine: Engine) -> list[tuple[Any, ...]]:
    """Every column of every ticket but the time of the import."""
    columns = [c for c in Ticket.__table__.c if c.name != "imported_at"]
    with engine.connect() as conn:
        query = select(*columns).order_by(Ticket.source, Ticket.external_id)
        return [tuple(r) for r in conn.execute(query)]


@pytest.fixture
def fresh_engine(
    engine: Engine,
    city_config: CityConfig,
    tmp_path: Path,
    sqlite_template: Path,
    pg_url: str,
) -> Iterator[Engine]:
    """A second fresh, migrated and synced database of the same dialect as `engine`."""
    schema = None
    if engine.dialect.name == "sqlite":
        path = tmp_path / "fresh.db"
        shutil.copy(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        schema = f"duban_test_{uuid.uuid4().hex[:10]}"
        admin = make_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        eng = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
        upgrade(eng)
    with session_scope(eng) as session:
        sync_city(session, city_config)
    yield eng
    eng.dispose()
    if schema is not None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def history_rows() -> list[dict[str, str]]:
    """Open and closed tickets (the partial index), a bad row, an id repeated across chunks."""
    rows = []
    for i in range(14):
        if i % 3 == 0:
            rows.append(
                row(f"H{i}", status="closed", closed_at="2026-10-09 16:00:00", resolved="1")
            )
        else:
            rows.append(row(f"H{i}", urgency=str(1 + i % 4), community=f"社区{i % 2}"))
    rows.insert(5, row("H-bad", received_at="not a date"))
    rows.append(row("H2", category="again, later"))
    return rows


def test_bulk_import_stores_the_same_rows_and_rebuilds_every_index(
    engine: Engine, fresh_engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "history.csv", history_rows())
    during_load: list[set[str]] = []

    def look(chunk: Any, summary: Any) -> None:
        during_load.append(index_names(engine))

    bulk = run(engine, city, path, tmp_path, chunk_rows=3, bulk=True, on_chunk=look)
    normal = run(fresh_engine, city, path, tmp_path / "normal", chunk_rows=3, bulk=False)
    assert bulk.bulk and not normal.bulk
    assert bulk.index_rebuild_s > 0 and normal.index_rebuild_s == 0
    assert "bulk mode" in bulk.line() and "bulk mode" not in normal.line()
    counts = ("read", "inserted", "updated", "unchanged", "quarantined")
    assert [getattr(bulk, c) for c in counts] == [getattr(normal, c) for c in counts]
    assert (bulk.read, bulk.inserted, bulk.quarantined) == (16, 14, 1)
    assert table_contents(engine) == table_contents(fresh_engine)
    assert len(table_contents(engine)) == 14
    # The load ran without the non-unique indexes; the unique key stayed.
    assert len(during_load) == 6
    assert all(not (names & MODEL_INDEXES) for names in during_load)
    assert_every_model_index(engine)
    assert_every_model_index(fresh_engine)
    # ... and the planner knows the loaded table (the next daily run's plans need it).
    assert planner_statistics(engine) > 0
    assert planner_statistics(fresh_engine) == 0

    # Re-imported, bulk and normal alike: nothing changes (H2's earlier row is known to be
    # superseded, as test_chunk_boundary_inside_duplicates).
    again = run(engine, city, path, tmp_path, chunk_rows=3, bulk=True)
    again_normal = run(fresh_engine, city, path, tmp_path / "normal", chunk_rows=3, bulk=False)
    assert (again.inserted, again.updated, again.unchanged, again.superseded) == (0, 0, 14, 1)
    assert [getattr(again, c) for c in counts] == [getattr(again_normal, c) for c in counts]
    assert table_contents(engine) == table_contents(fresh_engine)
    assert_every_model_index(engine)


def test_an_error_in_a_bulk_import_keeps_stored_chunks_and_every_index(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "long.csv", [row(f"E{i}") for i in range(6)])

    def stop(chunk: Any, summary: Any) -> None:
        if summary.read >= 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        run(engine, city, path, tmp_path, chunk_rows=2, bulk=True, on_chunk=stop)
    assert set(tickets(engine)) == {"E0", "E1", "E2", "E3"}
    assert_every_model_index(engine)
    with session_scope(engine) as session:
        [record] = session.scalars(select(ImportRun)).all()
    assert (record.read, record.inserted) == (4, 4) and record.finished_at is not None


def test_the_next_import_recreates_indexes_a_killed_bulk_import_left_missing(
    engine: Engine, city: CityConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(engine, city, write_csv(tmp_path / "day1.csv", [row("K1")]), tmp_path)
    gone = sorted(PARTIAL_INDEXES | {"ix_tickets_received"})
    with engine.begin() as conn:
        for name in gone:
            conn.execute(text(f"DROP INDEX {name}"))
    assert not (set(gone) & index_names(engine))

    with caplog.at_level(logging.WARNING, logger="duban.ingest.tickets"):
        summary = run(
            engine, city, write_csv(tmp_path / "day2.csv", [row("K2")]), tmp_path, bulk=False
        )
    assert summary.indexes_recreated == gone and not summary.bulk
    assert "recreated missing indexes" in summary.line()
    assert any(all(n in r.getMessage() for n in gone) for r in caplog.records)
    assert_every_model_index(engine)
    assert set(tickets(engine)) == {"K1", "K2"}
    # Nothing missing: nothing to do, nothing said.
    third = run(engine, city, write_csv(tmp_path / "day3.csv", [row("K3")]), tmp_path)
    assert third.indexes_recreated == []


def test_a_small_import_stays_on_the_normal_path(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    during_load: list[set[str]] = []

    def look(chunk: Any, summary: Any) -> None:
        during_load.append(index_names(engine))

    path = write_csv(tmp_path / "small.csv", [row(f"S{i}") for i in range(5)])
    summary = run(engine, city, path, tmp_path, chunk_rows=2, on_chunk=look)  # into an empty table
    assert not summary.bulk and summary.index_rebuild_s == 0
    assert "bulk" not in summary.line()
    assert len(during_load) == 3 and all(names >= MODEL_INDEXES for names in during_load)


def test_automatic_choice_of_bulk_mode(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    big = write_csv(
        tmp_path / "big.csv", [row(f"B{i}", address=f"{i}号" * (i % 7)) for i in range(120_000)]
    )
    assert big.stat().st_size > 4 << 20  # the estimate samples its first MiB only
    estimate = estimate_export_rows(big)
    assert estimate is not None and abs(estimate - 120_000) < 120_000 * 0.05
    assert estimate_export_rows(tmp_path / "x.xlsx") is None
    small = write_csv(tmp_path / "small.csv", [row(f"S{i}") for i in range(8)])
    assert estimate_export_rows(small) == 8

    from openpyxl import Workbook

    workbook = tmp_path / "export.xlsx"
    Workbook().save(workbook)

    # An empty table: the big export goes bulk, the small one does not; Excel goes bulk.
    assert choose_bulk(engine, big) is True
    assert choose_bulk(engine, big, False) is False
    assert choose_bulk(engine, small) is False
    assert choose_bulk(engine, small, True) is True
    assert choose_bulk(engine, workbook) is True
    # A table that holds 5 rows (with a threshold of 3 rows): bulk only for an export of
    # more than twice that; never for a re-import of the file that filled it.
    five = write_csv(tmp_path / "five.csv", [row(f"T{i}") for i in range(5)])
    run(engine, city, five, tmp_path)
    ten = write_csv(tmp_path / "ten.csv", [row(f"F{i}") for i in range(10)])
    eleven = write_csv(tmp_path / "eleven.csv", [row(f"F{i}") for i in range(11)])
    assert choose_bulk(engine, five, min_rows=3) is False
    assert choose_bulk(engine, ten, min_rows=3) is False
    assert choose_bulk(engine, eleven, min_rows=3) is True
    assert choose_bulk(engine, eleven) is False  # below the 100,000 rows of the default
    assert choose_bulk(engine, workbook) is False  # Excel: only into an empty table


def test_the_import_stores_the_place_key_and_updates_it_with_the_address(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    """The place key (rules/places.py) of each imported row: one place spelled three ways has
    one key, the same text in another district another, no address none; a re-import that
    changes the address changes the key."""
    rows = [
        row("P1", address="建国门内大街1号"),
        row("P2", address="东城区建国门街道建国门内大街１号院"),
        row("P3", address=" 建国门内大街 一号 "),
        row("P4", district="朝阳区", street="建外街道", address="建国门内大街1号",
            unit="cy-jianwai"),
        row("P5", district="", address="建国门内大街1号"),
        row("P6", address=""),
    ]  # fmt: skip
    run(engine, city, write_csv(tmp_path / "places.csv", rows), tmp_path)
    keys = {ext: t.place_key for ext, t in tickets(engine).items()}
    assert keys == {
        "P1": "东城区|建国门街道|建国门内大街1号", "P2": "东城区|建国门街道|建国门内大街1号",
        "P3": "东城区|建国门街道|建国门内大街1号", "P4": "朝阳区|建外街道|建国门内大街1号",
        "P5": "|建国门街道|建国门内大街1号", "P6": None,
    }  # fmt: skip
    rows[0] = row("P1", address="建国门内大街9号")
    summary = run(engine, city, write_csv(tmp_path / "again.csv", rows), tmp_path)
    assert (summary.updated, summary.unchanged) == (1, 5)
    assert tickets(engine)["P1"].place_key == "东城区|建国门街道|建国门内大街9号"
