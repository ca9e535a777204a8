"""A fuzz test of `duban import tickets` (issue 15): generated exports mixing good rows, whose
count and content are known, with more than 10,000 bad rows of every kind the import must
survive — control characters, out-of-range and non-finite counts, partial dates, broken
offsets, undecodable bytes, extra and missing fields, stray quotes, blank lines, repeated ids,
files cut inside a quoted field or a character, CR-only line ends.

Done when every good row is stored exactly once (the last row of a repeated id) and every bad
row is quarantined and named by (file, row, field) — nothing more, nothing less. Fixed seed:
the same files every run. SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import QuarantinedRow, Ticket
from tests.db.test_ticket_import import COLUMNS, row, run
from tests.db.test_ticket_import import city as city  # the fixture

SEED = 20261019
BAD_ROWS = 10_400
GOOD_ROWS = 4_000
CHUNK_ROWS = 997  # chunk boundaries fall between the rows of a repeated id


@dataclass
class Expected:
    """What one generated file must give."""

    name: str
    line_end: str = "\r\n"
    lines: list[bytes] = field(default_factory=list)
    row_number: int = 1  # the header
    good: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # id -> category, time
    bad: dict[int, str] = field(default_factory=dict)  # row -> the field named
    superseded: set[int] = field(default_factory=set)
    good_rows: dict[str, int] = field(default_factory=dict)  # id -> its latest row
    blank: int = 0

    def __post_init__(self) -> None:
        self.lines.append(self._line(COLUMNS))

    def _line(self, values: list[str]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator=self.line_end).writerow(values)
        return out.getvalue().encode("utf-8")

    def add_good(self, r: dict[str, str], received: datetime) -> None:
        self.row_number += 1
        self.lines.append(self._line([r.get(c, "") for c in COLUMNS]))
        external_id = r["external_id"]
        if external_id in self.good_rows:
            self.superseded.add(self.good_rows[external_id])
        self.good_rows[external_id] = self.row_number
        self.good[external_id] = (r["category"], received)

    def add_bad(self, line: bytes, field_name: str) -> None:
        self.row_number += 1
        self.lines.append(line)
        self.bad[self.row_number] = field_name

    def add_bad_row(self, r: dict[str, str], field_name: str) -> None:
        self.add_bad(self._line([r.get(c, "") for c in COLUMNS]), field_name)

    def add_blank(self) -> None:
        self.row_number += 1
        self.blank += 1
        self.lines.append(self.line_end.encode())

    def write(self, directory: Path, tail: bytes = b"") -> Path:
        path = directory / self.name
        path.write_bytes(b"\xef\xbb\xbf" + b"".join(self.lines) + tail)
        return path


TEN = datetime(2026, 9, 30, 10, 0)
OFFSETS = {  # received_at as written -> as stored (Asia/Shanghai)
    "2026-09-30 10:00:00": TEN,
    "2026-09-30T10:00:00+08:00": TEN,
    "2026-09-30T02:00:00Z": TEN,
    "2026-09-29T21:00:00-05:00": TEN,
    "2026-09-30 10:00": TEN,
}
TEXTS = [
    "楼下施工噪声",
    'he said "loud", twice',  # quotes and a comma: a quoted field
    "第一行\n第二行\r\n第三行",  # line breaks inside a quoted field
    "a\tb",
    'ab"c',
]


def _good(rng: random.Random, external_id: str, serial: int) -> tuple[dict[str, str], datetime]:
    written, stored = rng.choice(list(OFFSETS.items()))
    r = row(
        external_id,
        received_at=written,
        category=f"噪声扰民{serial}",  # which of an id's rows was kept
        content=rng.choice(TEXTS),
        returned_count=rng.choice(["", "0", "2", "3.0"]),
        reassigned_count=rng.choice(["", "1"]),
    )
    return r, stored


def _cell(field_name: str, value: str) -> Callable[[dict[str, str]], str]:
    def bad(r: dict[str, str]) -> str:
        r[field_name] = value
        return field_name

    return bad


BAD_CELLS: list[Callable[[dict[str, str]], str]] = [
    _cell("content", "噪声\x00扰民"),
    _cell("address", "建国门\x07外大街"),
    _cell("street", "\x1b[31m"),
    _cell("returned_count", "40000"),
    _cell("returned_count", "99999999999999999999"),
    _cell("returned_count", "-1"),
    _cell("reassigned_count", "inf"),
    _cell("reassigned_count", "NaN"),
    _cell("reassigned_count", "1e400"),
    _cell("received_at", "2026"),
    _cell("received_at", "2026-10"),
    _cell("received_at", "2026-09-30T10:00:00+25:00"),
    _cell("received_at", "2026-02-30 10:00:00"),
    _cell("unit", "nowhere"),
    _cell("category", "长" * 101),
    _cell("status", "lost"),
]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def good(self, out: Expected, external_id: str | None = None) -> None:
        self.serial += 1
        r, stored = _good(self.rng, external_id or f"G{self.serial:06d}", self.serial)
        out.add_good(r, stored)

    def bad(self, out: Expected) -> None:
        self.serial += 1
        r, _ = _good(self.rng, f"B{self.serial:06d}", self.serial)
        kind = self.rng.randrange(len(BAD_CELLS) + 5)
        if kind < len(BAD_CELLS):
            out.add_bad_row(r, BAD_CELLS[kind](r))
            return
        values = [r.get(c, "") for c in COLUMNS]
        text = out._line(values)
        if kind == len(BAD_CELLS):  # bytes that are not UTF-8, in a text field
            values[COLUMNS.index("district")] = "东城@@"
            out.add_bad(out._line(values).replace(b"@@", b"\xff\xfe"), "district")
        elif kind == len(BAD_CELLS) + 1:  # an extra field at the end
            out.add_bad(text.rstrip(b"\r\n") + b",extra" + out.line_end.encode(), "(row)")
        elif kind == len(BAD_CELLS) + 2:  # fields missing at the end
            out.add_bad(b",".join(text.split(b",")[:-3]) + out.line_end.encode(), "(row)")
        elif kind == len(BAD_CELLS) + 3:  # a stray opening quote (it never closes)
            # (Before a quoted field with line breaks, the rows could not be told apart.)
            values[COLUMNS.index("address")] = "@@建国门外"
            values[COLUMNS.index("content")] = TEXTS[0]
            out.add_bad(out._line(values).replace(b"@@", b'"'), "(row)")
        else:  # a GB18030 byte sequence in a UTF-8 file
            values[COLUMNS.index("street")] = "@@"
            out.add_bad(out._line(values).replace(b"@@", "建国门".encode("gb18030")), "street")

    def file(self, name: str, good: int, bad: int, line_end: str = "\r\n") -> Expected:
        out = Expected(name, line_end)
        earlier: list[str] = []
        kinds = ["good"] * good + ["bad"] * bad
        self.rng.shuffle(kinds)
        for kind in kinds:
            if self.rng.random() < 0.02:
                out.add_blank()
            if kind == "bad":
                self.bad(out)
            elif earlier and self.rng.random() < 0.05:  # an id listed again, later
                self.good(out, self.rng.choice(earlier))
            else:
                self.good(out)
                earlier.append(f"G{self.serial:06d}")
        self.good(out)  # a stray quote in the last row would be a file cut inside quotes
        return out


def _check(engine: Engine, files: list[Expected], summaries: list[Any]) -> None:
    with session_scope(engine) as session:
        stored = {
            t.external_id: (t.category, t.received_at) for t in session.scalars(select(Ticket))
        }
        records = [
            ((q.file_name.rsplit("/", 1)[-1], q.row_number), q.errors)
            for q in session.scalars(select(QuarantinedRow))
        ]
    # The quarantine also keeps the superseded rows (a re-import skips them).
    superseded = {k for k, errors in records if errors[0]["reason"].startswith("superseded")}
    quarantined = {k: [e["field"] for e in errors] for k, errors in records if k not in superseded}
    expected_good = {k: v for f in files for k, v in f.good.items()}
    assert len(stored) == len(expected_good)
    assert stored == expected_good  # every good row once, the last row of an id
    assert superseded == {(f.name, r) for f in files for r in f.superseded}
    expected_bad = {(f.name, r): name for f in files for r, name in f.bad.items()}
    assert set(quarantined) == set(expected_bad)
    misnamed = {k: (v, quarantined[k]) for k, v in expected_bad.items() if v not in quarantined[k]}
    assert not misnamed
    for f, summary in zip(files, summaries, strict=True):
        superseded_in_report = set()
        assert summary.report_path is not None
        with open(summary.report_path, encoding="utf-8-sig") as handle:
            for line in csv.DictReader(handle):
                assert line["file"] == f.name
                if line["reason"].startswith("superseded"):
                    superseded_in_report.add(int(line["row"]))
        assert superseded_in_report == f.superseded
        assert summary.quarantined == len(f.bad)
        assert summary.superseded == len(f.superseded)
        assert summary.blank_lines == f.blank
        parts = ("inserted", "updated", "unchanged", "quarantined", "superseded")
        assert summary.read == sum(getattr(summary, p) for p in parts)
        assert summary.read == f.row_number - 1 - f.blank


def test_fuzzed_exports_keep_every_good_row_once_and_name_every_bad_row(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    gen = Generator(SEED)
    main = gen.file("main.csv", GOOD_ROWS, BAD_ROWS)
    cr_only = gen.file("cr.csv", 300, 300, line_end="\r")
    cut_quote = gen.file("cut-quote.csv", 100, 100)
    cut_quote.add_bad(b'B-cut-1,"2026-09-30 10:00:00', "received_at")  # ends inside quotes
    cut_char = gen.file("cut-char.csv", 100, 100)
    cut_char.add_bad("B-cut-2,2026-09-30 10:00:00,,,,,,噪声".encode()[:-1], "category")
    files = [main, cr_only, cut_quote, cut_char]
    assert sum(len(f.bad) for f in files) >= 10_000
    paths = [f.write(tmp_path) for f in files]

    summaries = [run(engine, city, p, tmp_path, chunk_rows=CHUNK_ROWS) for p in paths]
    _check(engine, files, summaries)

    # Imported again: nothing changes, no bad row is recorded twice.
    again = [run(engine, city, p, tmp_path / "again", chunk_rows=CHUNK_ROWS) for p in paths]
    assert sum(s.inserted + s.updated for s in again) == 0
    _check(engine, files, again)
