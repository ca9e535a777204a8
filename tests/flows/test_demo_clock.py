"""The demo city with every kind of supervision-clock event (duban/demo/events.py), recorded
through `duban.clock.record_events`, then the daily loop, on SQLite and PostgreSQL with the
e-mails read at a real SMTP server (docs/clock.md "What the loops read")."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from duban.clock import record_events
from duban.config import load_config
from duban.db import session_scope
from duban.db.models import ClockEvent, ClockRefusal, Escalation, Ticket
from duban.demo import record_demo_events
from duban.demo.city import DemoSpec, generate_city
from duban.demo.events import demo_events
from duban.ingest.city import sync_city
from duban.ingest.tickets import import_tickets
from duban.queries import kernel as k
from duban.queries.metrics import metrics_frame
from duban.rules.clock import EventKind
from duban.settings import get_settings
from flows.daily import daily_report
from tests.flows.conftest import _search_path
from tests.flows.helpers import by_recipient

REPO = Path(__file__).resolve().parents[2]
SPEC = DemoSpec(days=20, daily_volume=150)  # 2026-08-01 … 08-20
AS_OF = datetime(2026, 8, 21)
DAY = date(2026, 8, 21)  # a Friday: the daily report after the demo's last day


@pytest.fixture
def demo(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: Any
) -> dict[str, Any]:
    files = generate_city(SPEC, tmp_path / "demo", REPO / "config")
    config = load_config(files.config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    import_tickets(engine, config, files.tickets_csv, "duban", tmp_path / "reports")
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        url += f"?options={_search_path(engine)}"
    env = {
        "DUBAN_DATABASE_URL": url, "DUBAN_CONFIG_DIR": str(files.config_dir),
        "DUBAN_REPORTS_DIR": str(tmp_path / "reports"),
        "DUBAN_OUTBOX_DIR": str(tmp_path / "outbox"), "DUBAN_SMTP_HOST": smtp_server.host,
        "DUBAN_SMTP_PORT": str(smtp_server.port), "DUBAN_SMTP_SECURITY": "none",
        "DUBAN_MAIL_FROM": "duban@duban.example", "DUBAN_TEMPLATES_DIR": str(REPO / "templates"),
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return {"engine": engine, "config": config, "smtp": smtp_server}


def tickets(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return k.frame(
            conn,
            select(Ticket.id, Ticket.external_id, Ticket.due_at, Ticket.base_due_at,
                   Ticket.evaluated, Ticket.suspended_since, Ticket.extension_count,
                   Ticket.clock_events),
        ).set_index("id")  # fmt: skip


def test_every_kind_of_event_moves_the_demo_citys_loops(demo: dict[str, Any]) -> None:
    engine, config, smtp = demo["engine"], demo["config"], demo["smtp"]
    events = demo_events(engine, AS_OF, SPEC.seed)
    result = record_events(engine, events, as_of=AS_OF, all_or_nothing=False, config=config)
    # refused: exactly the demo's late and over-cap approvals, stored once
    refused = {(r.item_ref, r.key) for r in result.refused}
    asked = {(e.item_ref, e.key) for e in events if e.key in ("demo:approve-late",
                                                              "demo:approve-long")}  # fmt: skip
    assert refused == asked and len(asked) == 6, [r.line() for r in result.refused[:5]]
    assert record_demo_events(engine, config, SPEC).startswith("recorded 0, already recorded")
    with engine.connect() as conn:
        stored = conn.execute(select(ClockRefusal.item_ref, ClockRefusal.code,
                                     ClockRefusal.at)).all()  # fmt: skip
    assert sorted(code for _, code, _ in stored) == ["cap_working_days"] * 3 + ["late_deadline"] * 3
    with engine.connect() as conn:
        kinds = set(conn.scalars(select(ClockEvent.kind).distinct()))
        stepped = pd.DataFrame(
            conn.execute(select(Escalation.item_id, Escalation.step, Escalation.due_on)).all(),
            columns=["item_id", "step", "due_on"],
        )
    assert kinds >= set(get_args(EventKind)) - {"calendar_correction"}

    t = tickets(engine)
    extended = t[t["extension_count"] > 0]
    assert len(extended) >= 10
    calendar = config.calendar
    for row in extended.itertuples():  # 2 working days after the import's deadline
        assert row.due_at == datetime.combine(
            calendar.add_working_days(row.base_due_at.date(), 2), row.base_due_at.time()
        )

    daily_report(day=DAY)
    with engine.connect() as conn:
        stepped = pd.DataFrame(
            conn.execute(select(Escalation.item_id, Escalation.step, Escalation.due_on)).all(),
            columns=["item_id", "step", "due_on"],
        )
    assert len(stepped)
    # supervised only once past the effective deadline; never while suspended or excluded
    supervised = stepped[stepped["step"] == "supervision"].join(t, on="item_id")
    assert (supervised["due_on"] > supervised["due_at"].dt.date).all()
    quiet = t[t["suspended_since"].notna() | ~t["evaluated"].astype(bool)]
    assert len(quiet) >= 30 and not stepped["item_id"].isin(quiet.index).any()

    mail = by_recipient(smtp)
    [office] = mail.pop("office@duban.example")  # its digest lists the day's decisions
    texts = [m.part("plain") for messages in mail.values() for m in messages]
    moved = t[(t["clock_events"] > 0) & (t["due_at"] != t["base_due_at"])]
    listed = 0
    for ref in moved["external_id"]:
        for line in (ln for text in texts for ln in text.splitlines() if f"{ref} [" in ln):
            if "时限" in line:
                listed += 1
                assert "原时限" in line, line
    assert listed >= 1
    for ref in quiet["external_id"]:
        assert not any(f"{ref} [" in text for text in texts)
    digest = office.part("plain")
    assert "[申请延期]：需协调相关部门，申请延期" in digest.split("待决定的申请")[1]
    # the refusals asked in the report's window (the first report: Aug 20) are listed
    section = digest.split("当日被拒绝的请求（逾期或超过上限）")[1].split("未能送达的邮件")[0]
    in_window = [ref for ref, _, at in stored if datetime(2026, 8, 20) <= at < AS_OF]
    assert in_window and f"共 {len(in_window)} 项" in section
    for ref in in_window:
        assert ref.split(":", 1)[1] in section

    # the month's figures: every new one measured somewhere, the excluded ones counted apart
    frame = metrics_frame(engine, config, "unit", date(2026, 8, 1), date(2026, 8, 31))
    for rate in ("return_rate", "redo_rate", "first_time_rate", "extensions_per_item"):
        assert frame[rate].notna().any(), rate
    assert frame["not_evaluated"].sum() == int((~t["evaluated"].astype(bool)).sum())
    assert frame["returned_items"].sum() >= 10 and frame["extensions"].sum() == len(extended) * 1
    assert (frame["redone"].sum(), frame["extended_items"].sum()) >= (10, 10)
