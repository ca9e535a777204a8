"""Per-cell validation: a bad cell quarantines its row only, with the field named; the good
rows of the same chunk are stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import QuarantinedRow
from duban.ingest.cells import (
    SMALLINT_MAX,
    has_control_characters,
    partial_dates,
    shown,
    undecodable,
    whole_numbers,
)
from tests.db.test_ticket_import import city as city  # the fixture
from tests.db.test_ticket_import import row, run, tickets, write_csv

BAD_CELLS = [
    ("content", "噪声\x00扰民"),
    ("address", "建国门\x07外大街"),
    ("external_id", "X\x1bY"),
    ("returned_count", "40000"),
    ("returned_count", "99999999999999999999"),
    ("reassigned_count", "inf"),
    ("reassigned_count", "1e400"),
    ("returned_count", "NaN"),
    ("returned_count", "-1"),
    ("received_at", "2026"),
    ("received_at", "2026-10"),
]


def test_whole_numbers_are_exact_and_in_range() -> None:
    values = np.array(["", "3", "3.0", str(SMALLINT_MAX), "32768", "1e400", "inf", "-1"])
    numbers, bad = whole_numbers(values, SMALLINT_MAX)
    assert bad.tolist() == [False, False, False, False, True, True, True, True]
    assert numbers[:4].tolist() == [0, 3, 3, SMALLINT_MAX]


def test_control_characters_and_partial_dates() -> None:
    texts = np.array(["a\tb\r\nc", "a\x00b", "\x7f", "正常"], dtype=object)
    assert has_control_characters(texts).tolist() == [False, True, True, False]
    times = np.array(["2026", "2026-10", "2026-10-19", "2026-10-19 10:00"])
    assert partial_dates(times).tolist() == [True, True, False, False]


def test_undecodable_bytes_are_found_and_shown_as_the_bytes() -> None:
    garbled = "东城".encode() + b"\xff\xfe"
    text = garbled.decode("utf-8", errors="surrogateescape")
    values = np.array([text, "东城", "a\x00b"], dtype=object)
    assert undecodable(values).tolist() == [True, False, False]
    assert undecodable(np.array(["东城", ""], dtype=object)).tolist() == [False, False]
    assert shown(text) == "东城\\xff\\xfe"
    assert shown("a\x00b") == "a\\x00b"


@pytest.mark.parametrize(("field", "value"), BAD_CELLS)
def test_a_bad_cell_quarantines_its_row_only(
    engine: Engine, city: CityConfig, tmp_path: Path, field: str, value: str
) -> None:
    bad_id = value if field == "external_id" else "BAD"
    rows = [row("G1"), row(bad_id, **({} if field == "external_id" else {field: value}))]
    rows += [row("G2")]
    summary = run(engine, city, write_csv(tmp_path / "cells.csv", rows), tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (3, 2, 1)
    assert set(tickets(engine)) == {"G1", "G2"}
    with session_scope(engine) as session:
        (bad,) = session.scalars(select(QuarantinedRow)).all()
    assert bad.row_number == 3
    assert field in [e["field"] for e in bad.errors]
    assert "\x00" not in str(bad.errors) and "\x00" not in str(bad.raw)


def test_offsets_are_converted_per_row(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    rows = [
        row("O1", received_at="2026-10-19T10:00:00+08:00"),
        row("O2", received_at="2026-10-19T10:00:00Z"),
        row("O3", received_at="2026-10-19 10:00:00"),  # naive: the export's zone
        row("O4", received_at="2026-10-19T10:00:00-05:00"),
    ]
    summary = run(engine, city, write_csv(tmp_path / "offsets.csv", rows), tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (4, 4, 0)
    stored = {k: t.received_at for k, t in tickets(engine).items()}
    assert stored["O1"] == datetime(2026, 10, 19, 10, 0)
    assert stored["O2"] == datetime(2026, 10, 19, 18, 0)
    assert stored["O3"] == datetime(2026, 10, 19, 10, 0)
    assert stored["O4"] == datetime(2026, 10, 19, 23, 0)
