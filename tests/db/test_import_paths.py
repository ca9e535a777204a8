"""The differential test of the two import engines (issue 17): the same generated exports
imported through the row-by-row path (`rows`: Python's csv reader, validate_rows) and the
columnar one (`columnar`: pyarrow's reader and kernels, validate_rows for flagged rows) store
the same tickets, record the same quarantine, write the same reports and summaries — on a
first import and on a re-import. SQLite and PostgreSQL.

The exports: the fuzz test's faulty files (the columnar reader hands them over to the lenient
one at the first fault), files of clean structure with bad cells (the columnar validation
flags them and asks validate_rows why), a file with every optional column empty, offsets,
other time formats, padded cells, a GB18030 file, and a mapping with another zone, date-only
columns, the dispatch catalogue, unit aliases and a default category.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select

from duban.config import CityConfig, load_config
from duban.db.models import ImportRun, QuarantinedRow
from duban.ingest.fastcsv import ColumnChunk
from duban.ingest.tickets import ImportSummary, import_tickets
from tests.db.test_import_fuzz import BAD_CELLS, OFFSETS, Generator
from tests.db.test_ticket_import import COLUMNS, row, table_contents
from tests.db.test_ticket_import import city as city  # the fixture
from tests.db.test_ticket_import import fresh_engine as fresh_engine  # the fixture

SEED = 20261203
CHUNK_ROWS = 97  # many chunks: ids repeated across their boundaries

STATUSES = ["", "open", "closed", "已办结", "办理中", "lost", "cancelled"]
SATISFACTION = ["", "满意", "不满意", "satisfied", "so-so"]
RESOLVED = ["", "1", "0", "true", "是", "否", "maybe"]
URGENCY = ["", "1", "2", "3", "4", "9", "x"]
TIMES = [
    *OFFSETS,  # offsets, naive, without seconds
    "2026-09-30",  # the third format
    "2026/09/30 10:00:00",  # in no format of the mapping (ISO 8601 does not read it)
    "2026-09-30 24:00:00",
    "1899-12-31 23:59:59",
    "2024-02-29 08:00:00",
    "2025-02-29 08:00:00",
    " 2026-10-08 09:30:00 ",
]
LATER = ["", "2026-10-09 16:00:00", "2026-09-29 09:00:00", "2026-10-12", "garbage"]
CATEGORIES = ["噪声扰民", "燃气泄漏", "供暖不热", "", " 征地拆迁\u3000"]
UNITS = ["dc-jianguomen", "dc-donghuamen", "cy", "建国门", "nowhere", ""]
TEXTS = ["楼下施工噪声", 'he said "loud", twice', "a\tb", "\u3000全角空格\u3000", ""]
ADDRESSES = ["建国门外大街1号院2号楼", "东城区建国门街道三号", "Room 5#", "", "长" * 301,
             "九棵树大街２号院１号楼", "ＡＢ座１０１", "东城区建国门街道5号院", "东城区",
             "建国门街道7号", "Ｂ" + "长" * 299, "东城区，8号", "康庄大街 3号院。"]  # fmt: skip
DISTRICTS = ["东城区", "东城区", " 东城区", "朝阳区", ""]


def _cells(rng: random.Random, n: int, prefix: str) -> list[dict[str, str]]:
    """Rows of clean structure (no blank line, no quote out of place, one line each) whose
    cells are good or bad in every way a cell can be."""
    rows: list[dict[str, str]] = []
    for i in range(n):
        external_id = f"{prefix}{i:05d}"
        if rows and rng.random() < 0.05:  # an id listed again, later
            external_id = rng.choice(rows)["external_id"]
        r = row(
            external_id,
            received_at=rng.choice(TIMES),
            dispatched_at=rng.choice(LATER),
            closed_at=rng.choice(LATER),
            due_at=rng.choice(["", "", "2026-10-20 18:00:00", "2026-09-01 00:00:00"]),
            category=rng.choice(CATEGORIES),
            unit=rng.choice(UNITS),
            urgency=rng.choice(URGENCY),
            status=rng.choice(STATUSES),
            satisfaction=rng.choice(SATISFACTION),
            resolved=rng.choice(RESOLVED),
            content=rng.choice(TEXTS),
            address=rng.choice(ADDRESSES),
            district=rng.choice(DISTRICTS),
            community=rng.choice(["", "社区1", " 社区2 "]),
            returned_count=rng.choice(["", "0", "2", "3.0", "-1", "40000"]),
        )
        if rng.random() < 0.1:
            BAD_CELLS[rng.randrange(len(BAD_CELLS))](r)
        rows.append(r)
    return rows


def _write(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8-sig") -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.get(c, "") for c in COLUMNS])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def _exports(directory: Path) -> list[tuple[str, Path]]:
    """(source, file) of every generated export."""
    directory.mkdir()
    gen = Generator(SEED)
    faulty = [
        gen.file("fuzz.csv", 400, 400),
        gen.file("cr.csv", 40, 40, line_end="\r"),
        gen.file("cut-quote.csv", 30, 30),
    ]
    faulty[-1].add_bad(b'B-cut-1,"2026-09-30 10:00:00', "received_at")
    rng = random.Random(SEED)
    cells = _cells(rng, 700, "C")
    late_fault = _cells(rng, 600, "L")
    empty = [
        {"external_id": f"E{i}", "received_at": "2026-09-30 10:00:00", "category": "噪声扰民",
         "unit": "dc-jianguomen"}
        for i in range(150)
    ]  # fmt: skip
    exports = [("duban", f.write(directory)) for f in faulty]
    exports += [
        ("duban", _write(directory / "cells.csv", cells)),
        ("duban", _write(directory / "empty.csv", empty)),
        ("gb", _write(directory / "gb.csv", cells, "gb18030")),
        ("variant", _write(directory / "variant.csv", cells)),
    ]
    path = _write(directory / "late-fault.csv", late_fault)  # a fault after four chunks
    lines = path.read_bytes().split(b"\r\n")
    lines[4 * CHUNK_ROWS + 10] += b",extra"
    path.write_bytes(b"\r\n".join(lines))
    exports.append(("duban", path))
    return exports


def _sources(config_dir: Path) -> None:
    """A GB18030 copy of the canonical mapping, and a variant of it."""
    canonical = yaml.safe_load((config_dir / "sources" / "duban.yaml").read_text("utf-8"))
    gb = {**canonical, "name": "gb", "encoding": "gb18030"}
    variant = {
        **canonical,
        "name": "variant",
        "timezone": "America/New_York",
        "date_only": {"closed_at": "end", "dispatched_at": "start", "received_at": "start"},
        "deadline": "catalogue",
        "unit_aliases": {"建国门": "dc-jianguomen"},
        "defaults": {"category": "其他"},
    }
    for mapping in (gb, variant):
        text = yaml.safe_dump(mapping, allow_unicode=True)
        (config_dir / "sources" / f"{mapping['name']}.yaml").write_text(text, "utf-8")


def _records(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(
                QuarantinedRow.source, QuarantinedRow.file_sha256, QuarantinedRow.sheet,
                QuarantinedRow.row_number, QuarantinedRow.errors, QuarantinedRow.raw,
            ).order_by(QuarantinedRow.source, QuarantinedRow.file_sha256, QuarantinedRow.row_number)
        )  # fmt: skip
        return [tuple(r) for r in found]


def _runs(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(
                ImportRun.source, ImportRun.read, ImportRun.inserted, ImportRun.updated,
                ImportRun.unchanged, ImportRun.quarantined,
            ).order_by(ImportRun.id)
        )  # fmt: skip
        return [tuple(r) for r in found]


def _summary(summary: ImportSummary) -> dict[str, Any]:
    kept = vars(summary).copy()
    for varying in ("run_id", "report_path", "index_rebuild_s"):
        kept.pop(varying)
    return kept


def _report(summary: ImportSummary) -> list[list[str]]:
    if summary.report_path is None:
        return []
    with open(summary.report_path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def city_sources(city: CityConfig, config_dir: Path) -> Iterator[CityConfig]:
    _sources(config_dir)
    yield load_config(config_dir)


def _import_all(
    engine: Engine, config: CityConfig, exports: list[tuple[str, Path]], reports: Path, name: str
) -> tuple[list[Any], int]:
    """Every export imported twice; what each import gave, and how many chunks the columnar
    reader read."""
    seen: list[Any] = []
    columnar_chunks = 0

    def count(chunk: Any, summary: ImportSummary) -> None:
        nonlocal columnar_chunks
        columnar_chunks += isinstance(chunk, ColumnChunk)

    for round_ in ("first", "again"):
        for source, path in exports:
            summary = import_tickets(
                engine, config, path, source, reports / round_, chunk_rows=CHUNK_ROWS,
                engine_name=name, on_chunk=count,
            )  # fmt: skip
            seen.append((round_, path.name, _summary(summary), _report(summary)))
        seen.append((round_, table_contents(engine), _records(engine)))
    seen.append(_runs(engine))
    return seen, columnar_chunks


def test_the_columnar_and_the_row_import_store_and_quarantine_the_same(
    engine: Engine, fresh_engine: Engine, city_sources: CityConfig, tmp_path: Path
) -> None:
    exports = _exports(tmp_path / "exports")
    rows, none = _import_all(engine, city_sources, exports, tmp_path / "rows", "rows")
    columnar, chunks = _import_all(
        fresh_engine, city_sources, exports, tmp_path / "columnar", "columnar"
    )
    assert none == 0
    # Most chunks of the clean files went the columnar way (else this proves little).
    assert chunks >= 2 * (3 * 8 + 2 + 4)
    for expected, got in zip(rows, columnar, strict=True):
        assert got == expected
    first = rows[len(exports)]  # after the first round: tickets and quarantine
    assert len(first[1]) > 500 and len(first[2]) > 500
