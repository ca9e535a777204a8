"""A reopened ticket is a redo (docs/clock.md, 重办), end to end: Prefect, SQLite and
PostgreSQL, the checklist read from the mail a real SMTP server received.

J-FAIL was closed long after its deadline (2026-08-12) and is drawn by the quarterly spot
check; the inspectors find it unsolved. Its reopening is a `redo` event: the next daily run
fires no step for the old deadline (it used to catch the whole ladder up at once, in round 1);
round 2 starts at the fresh deadline; re-importing the checklist records nothing twice; the
ticket counts in 重办率. A look-back reopening is a redo the same way, once per request."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import Engine, select

from duban.db.models import ClockEvent, Ticket, TicketStatus
from duban.loops.quarterly import draw_sample
from duban.loops.quarterly.checklist import CHECKLIST, import_checks
from duban.periods import parse_quarter
from duban.queries.metrics import clock_figures
from flows.daily import daily_report
from flows.lookback import lookback
from flows.quarterly import quarterly_spot_check
from tests.clock_helpers import steps
from tests.flows.helpers import add_ticket, by_recipient
from tests.flows.test_lookback_flow import seed as seed_lookback
from tests.flows.test_lookback_flow import september

OLD_DUE = datetime(2026, 8, 12, 23, 59, 59)
CHECKED = date(2026, 10, 15)  # Thu: the day the inspectors' verdicts are imported


def redo_events(engine: Engine) -> list[tuple[str, str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Ticket.external_id, ClockEvent.key, ClockEvent.origin, ClockEvent.origin_ref)
            .join(Ticket, Ticket.id == ClockEvent.item_id)
            .where(ClockEvent.kind == "redo")
            .order_by(Ticket.external_id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def clock_of(engine: Engine, ref: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(Ticket.status, Ticket.due_at, Ticket.base_due_at, Ticket.ladder_round,
                   Ticket.redo_count).where(Ticket.external_id == ref)
        ).one()  # fmt: skip


def failed_checklist(smtp: Any, folder: Path) -> Path:
    """The checklist the office received, filled in: J-FAIL fails."""
    [office] = by_recipient(smtp)["office@duban.example"]
    attachment = next(
        a for a in office.message.iter_attachments() if "核验清单" in a.get_filename()
    )
    book = load_workbook(BytesIO(attachment.get_payload(decode=True)))
    ws = book[CHECKLIST.zh]
    col = {c.value: c.column for c in ws[1]}
    [row] = [r for r in range(2, ws.max_row + 1) if ws.cell(r, col["编号"]).value == "J-FAIL"]
    ws.cell(row, col["核验结果"]).value = "不通过"
    ws.cell(row, col["核验说明"]).value = "现场核实：噪声仍在"
    ws.cell(row, col["核验日期"]).value = datetime.combine(CHECKED, time())
    path = folder / "returned.xlsx"
    book.save(path)
    return path


def test_a_failed_spot_check_is_a_redo_with_a_fresh_deadline_and_ladder(
    city: dict[str, Any], tmp_path: Path
) -> None:
    engine, smtp, config = city["engine"], city["smtp"], city["config"]
    add_ticket(engine, "J-FAIL", "dc-jianguomen", datetime(2026, 8, 3, 9), OLD_DUE,
               base_due_at=OLD_DUE, status=TicketStatus.closed, resolved=True,
               closed_at=datetime(2026, 9, 10, 17))  # fmt: skip
    # drawn on the quarter's first working day (as its schedule would), sent by the flow
    draw_sample(engine, config, config.spot_check, parse_quarter("2026-Q3"),
                now=datetime(2026, 10, 9, 9))  # fmt: skip
    assert quarterly_spot_check(quarter="2026-Q3")["drawn"] == 1
    returned = failed_checklist(smtp, tmp_path)

    summary = import_checks(engine, config, returned, city["reports"], today=CHECKED)
    assert (summary.reopened, summary.redone, summary.redo_refused) == (1, 1, [])
    [(ref, key, origin, origin_ref)] = redo_events(engine)
    assert (ref, origin) == ("J-FAIL", "spot_check") and key.startswith("spot_check:2026-Q3:")
    assert f"import run {summary.run_id}" in str(origin_ref)
    status, due, base, round_, redos = clock_of(engine, "J-FAIL")
    fresh = config.calendar.due_at(datetime.combine(CHECKED, time()), 7)  # level 3: 7 days
    assert status == TicketStatus.reopened and (due, base) == (fresh, OLD_DUE)
    assert (round_, redos) == (2, 1)

    # The next daily fires nothing for the old deadline (only the check's own escalation).
    daily_report(day=CHECKED + timedelta(days=1))
    assert {(r, s) for r, s, _ in steps(engine, "J-FAIL")} == {(1, "spot_check_failed")}

    # Re-importing the same checklist records nothing twice.
    again = import_checks(engine, config, returned, city["reports"], today=CHECKED)
    assert (again.reopened, again.redone) == (0, 0) and len(redo_events(engine)) == 1
    assert clock_of(engine, "J-FAIL") == (status, due, base, round_, redos)

    # Past the fresh deadline round 2 starts from it; round 1 holds the check's step only.
    daily_report(day=fresh.date() + timedelta(days=3))
    round_2 = {s: on for r, s, on in steps(engine, "J-FAIL") if r == 2}
    assert round_2["reminder"] == fresh.date() and round_2["supervision"] > fresh.date()
    assert {s for r, s, _ in steps(engine, "J-FAIL") if r == 1} == {"spot_check_failed"}

    # 重办率: Jianguomen closed one ticket received in August, and it was redone.
    with engine.connect() as conn:
        figures = clock_figures(conn, date(2026, 8, 1), date(2026, 9, 1)).set_index("unit")
    assert figures.loc["dc-jianguomen", "redone"] == 1
    assert figures.loc["dc-jianguomen", "redo_rate"] == 1.0


def test_a_look_back_reopening_is_a_redo_once_per_request(city: dict[str, Any]) -> None:
    engine, config = city["engine"], city["config"]
    seed_lookback(engine)
    request = september(reopen=True, notify=False)
    first = lookback(request)
    assert first["reopened"] == 2 and first["redo_events"] == 2
    events = redo_events(engine)
    assert [(r, k, o) for r, k, o, _ in events] == [
        ("J-BACK", f"lookback:{request.fingerprint()}", "lookback"),
        ("S-BACK", f"lookback:{request.fingerprint()}", "lookback"),
    ]
    assert all(f"lookback {request.fingerprint()} run" in str(ref) for *_, ref in events)
    with engine.connect() as conn:
        at = conn.scalar(select(ClockEvent.at).where(ClockEvent.kind == "redo").limit(1))
    status, due, _, round_, redos = clock_of(engine, "J-BACK")
    assert status == TicketStatus.reopened and (round_, redos) == (2, 1)
    assert due == config.calendar.due_at(at, 7)  # a fresh deadline from the reopening

    again = lookback(request)  # the same request: nothing reopened, nothing recorded again
    assert again["reopened"] == 0 and again["redo_events"] == 0
    assert redo_events(engine) == events
