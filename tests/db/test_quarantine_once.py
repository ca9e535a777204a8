"""A bad row is quarantined once per (source, file checksum, row), however often its file is
imported; each run's summary still counts the bad rows it read. SQLite and PostgreSQL; and
migration 0006, which reduces the records of earlier re-imports to one."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from duban.config import CityConfig
from duban.db import make_engine, session_scope, upgrade
from duban.db.models import ImportRun, QuarantinedRow, Ticket
from duban.ingest.city import sync_city
from duban.ingest.tickets import import_tickets
from tests.db.test_ticket_import import row, write_csv

ROWS = [
    row("G1"),
    row("B1", unit="nowhere"),  # row 3
    row("G2"),
    row("B2", received_at="30/09/2026"),  # row 5
    row("G3"),
]


@pytest.fixture
def city(engine: Engine, city_config: CityConfig) -> CityConfig:
    with session_scope(engine) as session:
        sync_city(session, city_config)
    return city_config


def records(engine: Engine) -> list[tuple[str | None, str | None, int, str]]:
    with session_scope(engine) as session:
        return [
            (q.source, q.file_sha256, q.row_number, q.errors[0]["field"])
            for q in session.scalars(select(QuarantinedRow).order_by(QuarantinedRow.row_number))
        ]


def test_three_imports_of_a_file_leave_one_record_per_bad_row(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", ROWS)
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    summaries = [import_tickets(engine, city, path, "duban", tmp_path / "r") for _ in range(3)]
    # Each run reports the bad rows it read, and lists them in its own CSV report.
    assert [s.quarantined for s in summaries] == [2, 2, 2]
    assert [(s.inserted, s.unchanged) for s in summaries] == [(3, 0), (0, 3), (0, 3)]
    assert all(s.report_path and Path(s.report_path).exists() for s in summaries)
    assert records(engine) == [
        ("duban", checksum, 3, "unit"),
        ("duban", checksum, 5, "received_at"),
    ]
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 3
        runs = session.scalars(select(ImportRun).order_by(ImportRun.id)).all()
        assert [r.quarantined for r in runs] == [2, 2, 2]
        first = {q.import_run_id for q in session.scalars(select(QuarantinedRow))}
        assert first == {runs[0].id}  # recorded by the run that first found them


def test_a_changed_file_is_another_file(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    import_tickets(engine, city, write_csv(tmp_path / "a.csv", ROWS), "duban", tmp_path / "r")
    changed = write_csv(tmp_path / "a.csv", [*ROWS, row("G4")])  # same name, new content
    summary = import_tickets(engine, city, changed, "duban", tmp_path / "r")
    assert (summary.inserted, summary.quarantined) == (1, 2)
    found = records(engine)
    assert len(found) == 4 and len({sha for _, sha, _, _ in found}) == 2


def _fresh_at_0005(kind: str, tmp_path: Path, pg_url: str) -> Iterator[Engine]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        upgrade(engine, "0005")
        yield engine
        engine.dispose()
        return
    schema = f"duban_q6_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine, "0005")
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""
    yield from _fresh_at_0005(request.param, tmp_path, url)


def test_migration_0006_keeps_the_first_record_of_each_bad_row(old_engine: Engine) -> None:
    now = datetime(2026, 12, 1, 9, 0)
    runs = text(
        "INSERT INTO import_runs (id, kind, source, file_name, started_at, read, inserted, "
        "updated, unchanged, quarantined) VALUES (:id, :kind, :source, :file, :at, 0, 0, 0, 0, 0)"
    )
    bad = text(
        "INSERT INTO quarantine (id, import_run_id, file_name, sheet, row_number, errors, raw) "
        "VALUES (:id, :run, :file, :sheet, :row, :errors, :raw)"
    )
    with old_engine.begin() as conn:
        conn.execute(
            runs,
            [
                {"id": 1, "kind": "tickets", "source": "duban", "file": "a.csv", "at": now},
                {"id": 2, "kind": "tickets", "source": "duban", "file": "a.csv", "at": now},
                {"id": 3, "kind": "tickets", "source": "nyc311", "file": "a.csv", "at": now},
                {"id": 4, "kind": "plan", "source": None, "file": "plan.xlsx", "at": now},
                {"id": 5, "kind": "plan", "source": None, "file": "plan.xlsx", "at": now},
            ],
        )
        errors = '[{"field": "unit", "reason": "unknown"}]'

        def record(id_: int, run: int, file: str, row: int, raw: str, sheet: str | None = None):  # type: ignore[no-untyped-def]
            return {"id": id_, "run": run, "file": file, "sheet": sheet, "row": row,
                    "errors": errors, "raw": raw}  # fmt: skip

        conn.execute(
            bad,
            [
                record(10, 1, "a.csv", 3, '{"unit": "x"}'),
                record(11, 1, "a.csv", 5, '{"unit": "y"}'),
                record(12, 2, "a.csv", 3, '{"unit": "x"}'),  # run 2 again: a copy of 10
                record(13, 2, "a.csv", 5, '{"unit": "z"}'),  # row 5 of another export: kept
                record(14, 3, "a.csv", 3, '{"unit": "x"}'),  # another source: kept
                record(15, 4, "plan.xlsx", 3, '{"a": 1}', "tasks"),  # the plan: not keyed
                record(16, 5, "plan.xlsx", 3, '{"a": 1}', "tasks"),
            ],
        )
    upgrade(old_engine)
    with old_engine.connect() as conn:
        left = conn.execute(
            text("SELECT id, source, file_sha256 FROM quarantine ORDER BY id")
        ).all()
    assert [tuple(r) for r in left] == [
        (10, "duban", None), (11, "duban", None), (13, "duban", None), (14, "nyc311", None),
        (15, None, None), (16, None, None),
    ]  # fmt: skip
