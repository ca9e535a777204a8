"""config/mail.yaml `max_citizen_text` holds in every notice that prints citizen text
(finding of issue 15): daily, weekly, quarterly and look-back notices, for the unit and the
office. The same city is rendered twice — with ordinary complaints, then with every
complaint and address 100 KB long — and no notice's HTML may grow by more than a few KB.
(The monthly bulletin and the annual summary print no complaint; the annual unit notice
prints 60 characters of one.)"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update

from duban.db.models import Ticket, TicketStatus
from duban.loops.lookback.findings import build_request
from flows.daily import daily_report
from flows.lookback import lookback
from flows.quarterly import quarterly_spot_check
from flows.weekly import weekly_analysis
from tests.flows.helpers import add_ticket
from tests.flows.test_daily_flow import DAY, seed_tickets

BIG = 100_000
LIMIT = 100  # characters per text (config/mail.yaml max_citizen_text)
GROWTH = 4_000  # bytes: a few KB more than the ordinary notice, at most


def seed(engine: Any) -> None:
    seed_tickets(engine)  # the daily report's items (week 2026-W41 too)
    d = datetime
    for i, unit in enumerate(("dc-jianguomen", "cy-sanlitun")):
        closed_at = d(2026, 9, 3 + i, 17)  # September: the look-back; Q3: the spot check
        add_ticket(engine, f"C-{i}", unit, closed_at - timedelta(days=2), closed_at,
                   status=TicketStatus.closed, closed_at=closed_at, resolved=True)  # fmt: skip
        add_ticket(engine, f"C-{i}-AGAIN", unit, d(2026, 9, 20, 8), d(2026, 9, 25, 18))


def render_everything(reports: Path, window_days: int) -> dict[str, int]:
    """HTML size of every notice of every loop that prints citizen text, by file."""
    daily_report(day=DAY, dry_run=True)
    weekly_analysis(week="2026-W41", dry_run=True)
    quarterly_spot_check(quarter="2026-Q3", dry_run=True)
    request = build_request(closed_from=date(2026, 9, 1), closed_to=date(2026, 9, 30),
                            window_days=window_days)  # fmt: skip
    lookback(request)
    sizes = {
        str(p.relative_to(reports / "dry-run")): p.stat().st_size
        for p in (reports / "dry-run").rglob("*.html")
    }
    for p in (reports / "lookback" / request.fingerprint()).glob("*.html"):
        sizes[f"lookback/{p.name}"] = p.stat().st_size
    return sizes


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # text, not the database
def test_a_100_kb_complaint_adds_only_a_few_kb_to_any_notice(
    city: dict[str, Any], config_dir: Path
) -> None:
    engine, reports = city["engine"], city["reports"]
    mail_file = config_dir / "mail.yaml"
    mail = yaml.safe_load(mail_file.read_text(encoding="utf-8"))
    mail["max_citizen_text"] = LIMIT
    mail_file.write_text(yaml.safe_dump(mail, allow_unicode=True), encoding="utf-8")
    seed(engine)
    ordinary = render_everything(reports, window_days=30)
    loops = {name.split("/")[0] for name in ordinary}
    assert loops == {"daily", "weekly", "quarterly", "lookback"}, sorted(ordinary)
    assert any("unit" in n for n in ordinary if n.startswith("lookback"))

    huge = "诉" * (BIG // 3)  # 100 KB of UTF-8
    with engine.begin() as conn:  # place_key stays: the same places, the same findings
        conn.execute(update(Ticket).values(content=huge, address=f"建国门内大街1号{huge}"))
    for old in (reports / "dry-run").rglob("*.html"):
        old.unlink()
    big = render_everything(reports, window_days=31)  # a new look-back request: new notices

    assert set(big) == set(ordinary)
    for name, size in big.items():
        assert size - ordinary[name] < GROWTH, (name, ordinary[name], size)
