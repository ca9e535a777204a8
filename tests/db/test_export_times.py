"""Times of real exports on SQLite and PostgreSQL: date-only columns (a close time that is a
date, compared by date, stored at the declared start or end of its day) and the city's time
zone from config/city.yaml, DUBAN_TIMEZONE overriding it.

Expected times are computed with plain pandas from the documented definitions, not copied."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import Engine, select

from duban.config import CityConfig, load_config
from duban.db import session_scope
from duban.db.models import QuarantinedRow, Ticket
from duban.ingest.city import sync_city
from duban.ingest.tickets import import_tickets
from duban.settings import Settings
from tests.db.test_ticket_import import nyc_config, row, write_csv

END_OF_DAY = pd.Timedelta(hours=23, minutes=59, seconds=59)  # docs/sources.md: `end`


def with_date_only(config_dir: Path, source: str, date_only: dict[str, str]) -> CityConfig:
    path = config_dir / "sources" / f"{source}.yaml"
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    mapping["date_only"] = date_only
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return load_config(config_dir)


def synced(engine: Engine, config: CityConfig) -> CityConfig:
    with session_scope(engine) as session:
        sync_city(session, config)
    return config


def stored(engine: Engine) -> dict[str, Ticket]:
    with session_scope(engine) as session:
        return {t.external_id: t for t in session.scalars(select(Ticket))}


def quarantined(engine: Engine) -> dict[int, list[dict[str, str]]]:
    with session_scope(engine) as session:
        return {q.row_number: q.errors for q in session.scalars(select(QuarantinedRow))}


RECEIVED = "2026-09-30 10:00:00"
SAME_DAY_ROWS = [
    row("SAME", status="closed", closed_at="2026-09-30"),  # row 2: closed later that day
    row("MIDNIGHT", status="closed", closed_at="2026-09-30 00:00:00"),  # row 3: the same, as 00:00
    row("EVE", status="closed", closed_at="2026-09-29"),  # row 4: the day before
    row("EARLY", status="closed", closed_at="2026-09-30 09:00:00"),  # row 5: a real time before
    row("DUE", due_at="2026-10-09"),  # row 6: due on a date
]


def test_a_date_only_close_on_the_day_received_is_kept_the_day_before_is_not(
    engine: Engine, config_dir: Path, tmp_path: Path
) -> None:
    config = synced(
        engine, with_date_only(config_dir, "duban", {"closed_at": "end", "due_at": "end"})
    )
    path = write_csv(tmp_path / "dates.csv", SAME_DAY_ROWS)
    summary = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert (summary.read, summary.inserted, summary.quarantined) == (5, 3, 2)
    tickets = stored(engine)
    for key, raw in (("SAME", "2026-09-30"), ("MIDNIGHT", "2026-09-30 00:00:00")):
        expected = pd.Timestamp(raw).normalize() + END_OF_DAY
        assert tickets[key].closed_at == expected.to_pydatetime()
        assert tickets[key].closed_at > tickets[key].received_at  # never a negative duration
    due = pd.Timestamp("2026-10-09") + END_OF_DAY
    assert tickets["DUE"].due_at == due.to_pydatetime()
    bad = quarantined(engine)
    assert sorted(bad) == [4, 5]
    eve = bad[4][0]
    assert (eve["field"], eve["column"], eve["value"]) == ("closed_at", "closed_at", "2026-09-29")
    assert "before received" in eve["reason"]
    assert bad[5][0]["field"] == "closed_at"  # a real time is still compared as a time


def test_without_date_only_a_same_day_date_is_closed_before_received(
    engine: Engine, city_config: CityConfig, tmp_path: Path
) -> None:
    """The defect the mapping key answers: a date read as midnight precedes the receipt."""
    config = synced(engine, city_config)
    path = write_csv(tmp_path / "dates.csv", SAME_DAY_ROWS[:1])
    summary = import_tickets(engine, config, path, "duban", tmp_path / "reports")
    assert (summary.inserted, summary.quarantined) == (0, 1)
    assert quarantined(engine)[2][0]["field"] == "closed_at"


def test_start_means_midnight_but_never_before_the_receipt(
    engine: Engine, config_dir: Path, tmp_path: Path
) -> None:
    config = synced(
        engine,
        with_date_only(config_dir, "duban", {"dispatched_at": "start", "closed_at": "start"}),
    )
    rows = [
        row("LATER", dispatched_at="2026-10-08", status="closed", closed_at="2026-10-09"),
        row("SAME", dispatched_at="2026-09-30", status="closed", closed_at="2026-09-30"),
        row("EVE", dispatched_at="2026-09-29"),  # row 4
    ]
    summary = import_tickets(
        engine, config, write_csv(tmp_path / "s.csv", rows), "duban", tmp_path / "r"
    )
    assert (summary.inserted, summary.quarantined) == (2, 1)
    tickets = stored(engine)
    assert tickets["LATER"].dispatched_at == pd.Timestamp("2026-10-08").to_pydatetime()
    assert tickets["LATER"].closed_at == pd.Timestamp("2026-10-09").to_pydatetime()
    # The start of the day received is before the receipt: the receipt time is stored.
    received = pd.Timestamp(RECEIVED).to_pydatetime()
    assert tickets["SAME"].dispatched_at == received
    assert tickets["SAME"].closed_at == received
    assert quarantined(engine)[4][0]["field"] == "dispatched_at"


NYC_HEADER = ["Unique Key", "Created Date", "Closed Date", "Agency", "Complaint Type", "Status"]
NYC_BLANK = ["Due Date", "Resolution Action Updated Date", "Descriptor", "Borough",
             "Community Board", "Incident Zip", "Incident Address"]  # fmt: skip
NYC_ROWS = [
    ["1001", "01/02/2024 08:15:42 AM", "01/02/2024 12:00:00 AM", "NYPD", "Noise", "Closed"],
    ["1002", "01/02/2024 11:30:00 PM", "01/03/2024 04:30:00 PM", "HPD", "HEAT", "Closed"],
    ["1003", "07/04/2024 09:00:00 AM", "", "DSNY", "Dirty Condition", "Open"],
    ["1004", "01/02/2024 08:00:00 AM", "01/01/2024 12:00:00 AM", "NYPD", "Noise", "Closed"],
]


def write_nyc(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(NYC_HEADER + NYC_BLANK)
        writer.writerows(r + [""] * len(NYC_BLANK) for r in NYC_ROWS)
    return path


def expected_nyc(city_zone: str) -> dict[str, tuple[pd.Timestamp, pd.Timestamp | None]]:
    """The documented definition: New York wall times; a midnight close time is that day's
    end (`date_only: {closed_at: end}`); converted to the city's zone, naive."""
    out = {}
    for key, created, closed, *_ in NYC_ROWS[:3]:
        received = pd.to_datetime(created, format="%m/%d/%Y %I:%M:%S %p")
        close = pd.to_datetime(closed, format="%m/%d/%Y %I:%M:%S %p") if closed else None
        if close is not None and close == close.normalize():
            close = close + END_OF_DAY

        def local(t: pd.Timestamp) -> pd.Timestamp:
            return t.tz_localize("America/New_York").tz_convert(city_zone).tz_localize(None)

        out[key] = (local(received), None if close is None else local(close))
    return out


def nyc_city(engine: Engine, config_dir: Path, city_zone: str) -> CityConfig:
    (config_dir / "city.yaml").write_text(f"timezone: {city_zone}\n", encoding="utf-8")
    nyc_config(config_dir)
    return synced(engine, with_date_only(config_dir, "nyc311", {"closed_at": "end"}))


def assert_stored_as(engine: Engine, city_zone: str) -> None:
    tickets = stored(engine)
    assert set(tickets) == {"1001", "1002", "1003"}
    for key, (received, closed) in expected_nyc(city_zone).items():
        assert tickets[key].received_at == received.to_pydatetime(), key
        assert tickets[key].closed_at == (None if closed is None else closed.to_pydatetime())


def test_a_foreign_export_without_duban_timezone_takes_the_citys_zone_from_config(
    engine: Engine, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUBAN_TIMEZONE", raising=False)
    config = nyc_city(engine, config_dir, "Europe/Berlin")
    settings = Settings(config_dir=config_dir)
    assert settings.timezone == "Europe/Berlin"
    path = write_nyc(tmp_path / "nyc.csv")
    first = import_tickets(
        engine, config, path, "nyc311", tmp_path / "r", timezone=settings.timezone
    )
    assert (first.inserted, first.quarantined) == (3, 1)  # 1004: closed the day before
    assert_stored_as(engine, "Europe/Berlin")
    # No zone given at all (the importer's default): the same, config/city.yaml's.
    again = import_tickets(engine, config, path, "nyc311", tmp_path / "r")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    # DUBAN_TIMEZONE set to the city's zone: the same stored times.
    monkeypatch.setenv("DUBAN_TIMEZONE", "Europe/Berlin")
    zone = Settings(config_dir=config_dir).timezone
    same = import_tickets(engine, config, path, "nyc311", tmp_path / "r", timezone=zone)
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 3)
    assert_stored_as(engine, "Europe/Berlin")


def test_duban_timezone_overrides_the_config(
    engine: Engine, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = nyc_city(engine, config_dir, "Europe/Berlin")
    monkeypatch.setenv("DUBAN_TIMEZONE", "Asia/Tokyo")
    settings = Settings(config_dir=config_dir)
    assert (settings.timezone, settings.timezone_origin) == ("Asia/Tokyo", "DUBAN_TIMEZONE")
    path = write_nyc(tmp_path / "nyc.csv")
    import_tickets(engine, config, path, "nyc311", tmp_path / "r", timezone=settings.timezone)
    assert_stored_as(engine, "Asia/Tokyo")


def test_a_mapping_without_timezone_is_in_the_citys_zone(
    engine: Engine, config_dir: Path, tmp_path: Path
) -> None:
    config = nyc_city(engine, config_dir, "America/New_York")
    path = config_dir / "sources" / "nyc311.yaml"
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    del mapping["timezone"]
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    config = load_config(config_dir)
    import_tickets(engine, config, write_nyc(tmp_path / "nyc.csv"), "nyc311", tmp_path / "r")
    assert_stored_as(engine, "America/New_York")  # as written: no conversion
