"""Recording a period's notices: one multi-row INSERT, once per (loop, period, audience, kind),
on SQLite and PostgreSQL (issue 17: the daily report recorded ~430 notices one by one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select

from duban.db import session_scope
from duban.db.models import Notice
from duban.notices.render import Rendered, archive_files, archive_notice, record_notices


@contextmanager
def inserts_into_notices(engine: Engine) -> Iterator[list[str]]:
    """The statements that INSERT INTO notices while the block runs (each executemany once)."""
    seen: list[str] = []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO NOTICES"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


def rendered(unit: str) -> Rendered:
    return Rendered(subject=f"日报 {unit}", html=f"<p>{unit}</p>", text=f"{unit}\n")


def test_a_period_s_notices_are_recorded_in_one_statement_once(
    engine: Engine, tmp_path: Path
) -> None:
    units = [f"u{i:03d}" for i in range(120)]
    chart = tmp_path / "chart.png"
    archived = [
        archive_files(tmp_path, "daily", "2025-12-31", u, "unit", rendered(u), [chart])
        for u in units
    ]
    with inserts_into_notices(engine) as seen, session_scope(engine) as session:
        known = record_notices(session, "daily", "2025-12-31", archived)
        found = {key: (n.id, n.subject, n.html_path, n.attachments) for key, n in known.items()}
    assert len(seen) == 1  # one statement for the 120 notices, not one each
    assert set(found) == {(u, "unit") for u in units}
    for unit in units:
        _, subject, html_path, attachments = found[(unit, "unit")]
        assert subject == f"日报 {unit}"
        assert Path(html_path).read_text(encoding="utf-8") == f"<p>{unit}</p>"
        assert Path(html_path).with_suffix(".txt").read_text(encoding="utf-8") == f"{unit}\n"
        assert attachments == [str(chart)]

    # Recording them again (a re-run, a parallel run) adds nothing and returns the same rows.
    again = [archive_files(tmp_path, "daily", "2025-12-31", u, "unit", rendered(u)) for u in units]
    with session_scope(engine) as session:
        known = record_notices(session, "daily", "2025-12-31", again)
        assert {k: n.id for k, n in known.items()} == {k: v[0] for k, v in found.items()}
        assert known[("u000", "unit")].attachments == [str(chart)]  # the first record stands
        total = session.scalar(select(func.count()).select_from(Notice))
    assert total == len(units)


def test_a_notice_recorded_first_by_another_run_keeps_its_record(
    engine: Engine, tmp_path: Path
) -> None:
    with session_scope(engine) as session:
        first = archive_notice(
            session, tmp_path / "other", loop="daily", period="2025-12-31", audience="u001",
            kind="unit", rendered=rendered("u001"),
        )  # fmt: skip
        session.flush()
        first_id, first_path = first.id, first.html_path
    archived = [
        archive_files(tmp_path, "daily", "2025-12-31", u, "unit", rendered(u))
        for u in ("u000", "u001", "u002")
    ]
    with session_scope(engine) as session:
        known = record_notices(session, "daily", "2025-12-31", archived)
        assert known[("u001", "unit")].id == first_id
        assert known[("u001", "unit")].html_path == first_path
        assert {k[0] for k in known} == {"u000", "u001", "u002"}
        other = record_notices(session, "daily", "2026-01-04", [])  # another period: none
    assert other == {}
