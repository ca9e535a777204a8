"""Faults of a CSV export (issue 15, items 8 and 9): each quarantines its row only, named by
row and field, and the summary adds up (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import QuarantinedRow
from duban.ingest.sources import ExportError
from tests.db.test_ticket_import import COLUMNS, row, run, tickets, write_csv
from tests.db.test_ticket_import import city as city  # the fixture


def quarantined(engine: Engine) -> dict[int, list[dict[str, str]]]:
    with session_scope(engine) as session:
        return {q.row_number: q.errors for q in session.scalars(select(QuarantinedRow))}


def lines(rows: list[dict[str, str]], end: str = "\r\n") -> list[str]:
    out = [",".join(COLUMNS)]
    for r in rows:
        out.append(",".join(r.get(c, "") for c in COLUMNS))
    return [line + end for line in out]


def test_an_undecodable_byte_after_the_first_chunk_quarantines_its_row_only(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    text = "".join(lines([row(f"U{i}", content="施工") for i in range(7)]))
    data = text.encode("utf-8").replace(b"U5,", b"U5\xff,", 1)
    path = tmp_path / "bytes.csv"
    path.write_bytes(data)
    summary = run(engine, city, path, tmp_path, chunk_rows=2)
    assert (summary.read, summary.inserted, summary.quarantined) == (7, 6, 1)
    [(number, errors)] = quarantined(engine).items()
    assert number == 7  # U5: the header is row 1
    assert errors[0]["field"] == "external_id" and errors[0]["value"] == "U5\\xff"
    assert "cannot decode" in errors[0]["reason"]
    assert not summary.notes  # nothing suggests another encoding: it is not GB18030 either


def test_a_gb18030_export_read_as_utf8_suggests_gb18030(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("".join(lines([row("K1"), row("K2")])).encode("gb18030"))
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.quarantined) == (2, 2)
    assert any("reads as gb18030" in note and "encoding: gb18030" in note for note in summary.notes)
    assert "encoding: gb18030" in summary.line()
    # With a Chinese header the header itself says so.
    chinese = tmp_path / "gbk-header.csv"
    chinese.write_bytes("编号,受理时间\nK1,2026-09-30\n".encode("gb18030"))
    with pytest.raises(ExportError, match="reads cleanly as gb18030"):
        run(engine, city, chinese, tmp_path)


def test_cr_only_line_ends_are_read(engine: Engine, city: CityConfig, tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_text("".join(lines([row("M1"), row("M2")], end="\r")), encoding="utf-8")
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted) == (2, 2)


def test_blank_lines_keep_row_numbers_and_extra_fields_are_quarantined(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    text = lines([row("L1"), row("L2"), row("L3"), row("L4")])
    text.insert(2, "\r\n")  # row 3 is blank: L2 is row 4
    text.insert(4, ",,,,\r\n")  # only separators: blank too (row 5)
    text[-1] = text[-1].rstrip("\r\n") + ",surplus\r\n"  # L4, row 7: a field too many
    text[1] = text[1].rstrip("\r\n") + ",,\r\n"  # L1: empty fields beyond the header: fine
    path = tmp_path / "blank.csv"
    path.write_text("".join(text), encoding="utf-8")
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined, summary.blank_lines) == (
        4, 3, 1, 2,
    )  # fmt: skip
    assert "2 blank rows skipped" in summary.line()
    [(number, errors)] = quarantined(engine).items()
    assert number == 7 and errors[0]["field"] == "(row)" and errors[0]["value"] == "surplus"
    assert "22 fields, the header has 21" in errors[0]["reason"]


def test_a_stray_quote_quarantines_its_row_and_the_next_rows_are_kept(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    text = lines([row("Q1"), row("Q2", address='"建国门外'), row("Q3"), row("Q4")])
    path = tmp_path / "quote.csv"
    path.write_text("".join(text), encoding="utf-8")
    summary = run(engine, city, path, tmp_path)
    assert (summary.read, summary.inserted, summary.quarantined) == (4, 3, 1)
    assert set(tickets(engine)) == {"Q1", "Q3", "Q4"}
    [(number, errors)] = quarantined(engine).items()
    assert number == 3 and "unbalanced quote" in errors[0]["reason"]


def test_a_quoted_field_with_line_breaks_is_one_row(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    rows = [row("N1", content="第一行\n第二行,还有"), row("N2", content='say "hi"')]
    summary = run(engine, city, write_csv(tmp_path / "breaks.csv", rows), tmp_path)
    assert (summary.read, summary.inserted) == (2, 2)
    assert tickets(engine)["N1"].content == "第一行\n第二行,还有"
    assert tickets(engine)["N2"].content == 'say "hi"'


def test_the_summary_adds_up_with_repeated_ids(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    rows = [row(f"R{i % 50}", category=f"c{i}") for i in range(150)]
    rows += [row("BAD", received_at="2026")]
    summary = run(engine, city, write_csv(tmp_path / "repeats.csv", rows), tmp_path, chunk_rows=40)
    assert (summary.read, summary.inserted, summary.superseded, summary.quarantined) == (
        151, 50, 100, 1,
    )  # fmt: skip
    parts = summary.inserted + summary.updated + summary.unchanged + summary.superseded
    assert summary.read == parts + summary.quarantined
    assert "superseded 100" in summary.line()
    assert tickets(engine)["R7"].category == "c107"  # the last row of the id
    assert summary.report_path is not None
    with open(summary.report_path, encoding="utf-8-sig") as handle:
        report = list(csv.DictReader(handle))
    assert sum(r["reason"].startswith("superseded") for r in report) == 100


@pytest.mark.parametrize("engine_name", ["columnar", "rows"])
def test_a_time_no_calendar_can_mean_quarantines_its_row_only(
    engine: Engine, city: CityConfig, tmp_path: Path, engine_name: str
) -> None:
    """pandas reads "-3.5" as the year -3 and numpy knows the year 0: such a time stopped the
    whole import (OverflowError in the due-time lookup). Now it is an unparseable date."""
    odd = ["-3.5", "-0.5", "0000-05-01 10:00:00", "1899-12-31 23:59:59", "2200-01-01 00:00:00"]
    good = [row(f"G{i}") for i in range(3)]
    bad = [row(f"B{i}", received_at=value) for i, value in enumerate(odd)]
    bad.append(row("C0", closed_at="0000-01-01 00:00:00", status="已办结"))
    path = tmp_path / "odd-times.csv"
    path.write_text("".join(lines([*good, *bad])), encoding="utf-8")
    summary = run(engine, city, path, tmp_path, engine_name=engine_name)
    assert (summary.read, summary.inserted, summary.quarantined) == (9, 3, 6)
    assert set(tickets(engine)) == {"G0", "G1", "G2"}
    found = quarantined(engine)
    assert sorted(found) == list(range(5, 11))  # the header is row 1, the good rows 2-4
    for number, errors in found.items():
        field = "closed_at" if number == 10 else "received_at"
        assert [e["field"] for e in errors] == [field], errors
        assert "unparseable date" in errors[0]["reason"]
