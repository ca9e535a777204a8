"""Streets under municipal supervision and the exit rule (降量、提率、去低) in the monthly
bulletin: the street figures come from the database (SQLite and PostgreSQL), the verdict
from duban/rules/exit_rule.py; checked against counts made by hand from the seeded rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, insert, select

from duban.config import load_config
from duban.db import session_scope
from duban.db.models import Satisfaction, Ticket, TicketStatus, Unit
from duban.ingest.city import sync_city
from duban.loops.monthly.report import supervised_streets
from duban.periods import parse_month


def _tickets(engine: Engine, street: str, month: date, n: int, satisfied: int) -> None:
    """n tickets on `street` in `month`, all responded at once and closed resolved; the
    first `satisfied` rated 满意, the others 不满意."""
    with session_scope(engine) as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == "cy-sanlitun"))
        rows: list[dict[str, Any]] = []
        for i in range(n):
            received = datetime.combine(month, datetime.min.time()) + timedelta(hours=10 + i)
            rows.append({
                "source": "t", "external_id": f"{street}-{month:%m}-{i}", "received_at": received,
                "first_response_at": received + timedelta(minutes=30), "due_at": received
                + timedelta(days=5), "closed_at": received + timedelta(days=1),
                "status": TicketStatus.closed, "resolved": True, "street": street,
                "category": "噪声扰民", "unit_id": unit_id, "urgency": 3, "row_hash": 0,
                "satisfaction": Satisfaction.satisfied if i < satisfied
                else Satisfaction.dissatisfied,
            })  # fmt: skip
        session.execute(insert(Ticket), rows)


def test_a_street_that_fell_and_kept_its_rates_meets_the_rule_and_one_that_rose_does_not(
    engine: Engine, config_dir: Path
) -> None:
    metrics = yaml.safe_load((config_dir / "metrics.yaml").read_text(encoding="utf-8"))
    metrics["supervised_streets"] = {"streets": ["三里屯街道", "建外街道", "和平里街道"]}
    (config_dir / "metrics.yaml").write_text(yaml.safe_dump(metrics, allow_unicode=True))
    config = load_config(config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    # 三里屯: 20 → 10 tickets, satisfaction 18/20 → 10/10; 建外: 10 → 12, satisfaction 80 %.
    _tickets(engine, "三里屯街道", date(2026, 9, 1), 20, 18)
    _tickets(engine, "三里屯街道", date(2026, 10, 1), 10, 10)
    _tickets(engine, "建外街道", date(2026, 9, 1), 10, 10)
    _tickets(engine, "建外街道", date(2026, 10, 1), 12, 10)

    found = supervised_streets(engine, config, config.metrics, parse_month("2026-10"))
    by_street = {s["street"]: s for s in found}
    sanlitun, jianwai, hepingli = (by_street[n] for n in ("三里屯街道", "建外街道", "和平里街道"))
    assert (sanlitun["tickets"], sanlitun["tickets_last_month"]) == (10, 20)
    assert sanlitun["rates"]["satisfaction_rate"] == 1.0 and sanlitun["meets"]
    assert (jianwai["tickets"], jianwai["tickets_last_month"]) == (12, 10)
    assert not jianwai["meets"]
    assert [r.split("（")[0].split(" ")[0] for r in jianwai["reasons"]] == [
        "诉求量未下降", "满意率下降", "满意率"]  # fmt: skip
    # A street without tickets in either month: no data, so it cannot leave supervision.
    assert hepingli["tickets"] == 0 and not hepingli["meets"]
