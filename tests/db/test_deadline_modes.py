"""Deadlines by the city's rules (docs/sources.md, "Deadlines") and the statuses that count in
no rate: a mapping's `deadline` mode, the dispatch catalogue, cancelled and invalid tickets."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from duban.config import CityConfig, ConfigError, load_config
from duban.db.models import TicketStatus
from duban.ingest.tickets import import_tickets
from duban.queries.metrics import unit_rates
from tests.db.test_export_times import stored, synced
from tests.db.test_ticket_import import row, write_csv

HOURS = {1: 2.0, 2: 12.0, 3: 24.0, 4: 24.0}


def mapping_with(config_dir: Path, name: str, **changes: object) -> None:
    """A copy of the canonical mapping under another name, with `changes` applied."""
    data = yaml.safe_load((config_dir / "sources" / "duban.yaml").read_text(encoding="utf-8"))
    data.update(name=name, **changes)
    (config_dir / "sources" / f"{name}.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )


@pytest.fixture
def city(engine: Engine, config_dir: Path) -> CityConfig:
    mapping_with(config_dir, "only", deadline="export_only")
    mapping_with(config_dir, "catalogue", deadline="catalogue")
    return synced(engine, load_config(config_dir))


def test_export_only_leaves_a_row_without_due_time_without_deadline(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [
            row("D1", due_at="2026-10-20 18:00:00"),
            row("N1"),  # no due time in the export: 无办理时限
            row("N2", status="closed", closed_at="2026-10-12 09:00:00", resolved="1"),
        ],
    )
    summary = import_tickets(engine, city, path, "only", tmp_path / "reports")
    assert (summary.read, summary.inserted, summary.quarantined) == (3, 3, 0)
    tickets = stored(engine)
    assert tickets["D1"].due_at == datetime(2026, 10, 20, 18, 0)
    assert tickets["N1"].due_at is None
    assert tickets["N2"].due_at is None
    with engine.connect() as conn:
        rates = unit_rates(conn, date(2026, 9, 1), date(2026, 11, 1), HOURS, 0.8)
    (unit,) = rates.itertuples()
    # Three received; only D1 has a deadline, so only D1 is in the on-time rate.
    assert (unit.tickets, unit.no_deadline, unit.due) == (3, 2, 1)
    assert unit.closed_on_time == 0 and unit.on_time_rate == 0.0


def test_the_default_mode_still_gives_every_row_its_level_limit(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [row("A1")])
    import_tickets(engine, city, path, "duban", tmp_path / "reports")
    # Level 2 = 3 working days after Wed Sep 30 2026: Oct 8, 9 and the make-up Sat Oct 10.
    assert stored(engine)["A1"].due_at == datetime(2026, 10, 10, 23, 59, 59)


def test_the_dispatch_catalogue_sets_the_level_by_category(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    assert city.urgency.catalogue["燃气泄漏"] == 1
    path = write_csv(
        tmp_path / "export.csv",
        [
            row("G1", category="燃气泄漏", urgency=""),  # listed: level 1 (1 working day)
            row("G2", category="燃气泄漏", urgency="4"),  # listed: the catalogue wins
            row("U1", category="噪声扰民", urgency="2"),  # not listed: the export's level
            row("U2", category="噪声扰民", urgency=""),  # not listed, none given: default 3
            row("E1", category="燃气泄漏", due_at="2026-10-30 12:00:00"),  # the export's own
        ],
    )
    summary = import_tickets(engine, city, path, "catalogue", tmp_path / "reports")
    assert (summary.inserted, summary.quarantined) == (5, 0)
    t = stored(engine)
    assert [t[i].urgency for i in ("G1", "G2", "U1", "U2", "E1")] == [1, 1, 2, 3, 1]
    assert t["G1"].due_at == datetime(2026, 10, 8, 23, 59, 59)  # after National Day
    assert t["G2"].due_at == t["G1"].due_at
    assert t["U1"].due_at == datetime(2026, 10, 10, 23, 59, 59)  # 3 working days (调休 Sat)
    assert t["U2"].due_at == datetime(2026, 10, 15, 23, 59, 59)  # 7: Oct 8-10, 12-15
    assert t["E1"].due_at == datetime(2026, 10, 30, 12, 0)


def test_cancelled_and_invalid_count_in_no_rate(
    engine: Engine, city: CityConfig, tmp_path: Path
) -> None:
    closed = {"closed_at": "2026-10-08 09:00:00", "resolved": "1", "satisfaction": "满意"}
    path = write_csv(
        tmp_path / "export.csv",
        [
            row("C1", status="closed", **closed),
            row("X1", status="已作废", **closed),  # closed on time, but cancelled
            row("X2", status="转出"),  # referred out: cancelled
            row("X3", status="无效", returned_count="2"),
        ],
    )
    summary = import_tickets(engine, city, path, "duban", tmp_path / "reports")
    assert (summary.inserted, summary.quarantined) == (4, 0)
    t = stored(engine)
    assert t["X1"].status is TicketStatus.cancelled
    assert t["X2"].status is TicketStatus.cancelled
    assert t["X3"].status is TicketStatus.invalid
    with engine.connect() as conn:
        rates = unit_rates(conn, date(2026, 9, 1), date(2026, 11, 1), HOURS, 0.8)
    (unit,) = rates.itertuples()
    assert (unit.tickets, unit.excluded, unit.due, unit.closed_on_time) == (1, 3, 1, 1)
    assert (unit.rated, unit.returned) == (1, 0)
    assert unit.on_time_rate == 1.0 and unit.resolution_rate == 1.0


def test_mapping_errors_name_the_key(config_dir: Path) -> None:
    data = yaml.safe_load((config_dir / "sources" / "duban.yaml").read_text(encoding="utf-8"))
    del data["columns"]["due_at"]
    data.update(name="nodue", deadline="export_only")
    (config_dir / "sources" / "nodue.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="deadline: export_only needs a due_at column"):
        load_config(config_dir).source("nodue")

    urgency = yaml.safe_load((config_dir / "urgency.yaml").read_text(encoding="utf-8"))
    urgency["catalogue"] = {}
    (config_dir / "urgency.yaml").write_text(yaml.safe_dump(urgency), encoding="utf-8")
    mapping_with(config_dir, "catalogue", deadline="catalogue")
    with pytest.raises(ConfigError, match="deadline: catalogue needs a `catalogue`"):
        load_config(config_dir).source("catalogue")

    urgency["catalogue"] = {"燃气泄漏": 7}
    (config_dir / "urgency.yaml").write_text(yaml.safe_dump(urgency), encoding="utf-8")
    with pytest.raises(ConfigError, match="catalogue: 燃气泄漏: level is not one of"):
        _ = load_config(config_dir).urgency
