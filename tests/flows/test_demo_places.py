"""A place is a place, on the demo city (issue 14, item 8), on SQLite and PostgreSQL.

The demo's village and road names come from pools every district shares, so the same address
text (黄家务村1号) is in several districts; and it spells a share of its addresses as exports
do (the district and street in front, full-width digits, spaces, 号院). Imported through the
real import, the look-back flow and the weekly repeat complaints must pair the spellings of
one place and never two districts — checked against a plain pandas computation of the
definition (docs/lookback.md, docs/metrics.md), and against the old address-text definition,
which on the same data does pair different districts.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import Engine, select

from duban.config import load_config
from duban.db import session_scope
from duban.db.models import LookbackFinding
from duban.demo.city import DemoSpec, generate_city
from duban.ingest.city import sync_city
from duban.ingest.tickets import import_tickets
from duban.loops.lookback.findings import build_request
from duban.loops.weekly.report import measure_weekly, office_context
from duban.periods import parse_week
from duban.queries import kernel as k
from duban.rules.places import place_key
from duban.settings import get_settings
from flows.lookback import lookback
from tests.flows.conftest import _search_path

REPO = Path(__file__).resolve().parents[2]
CLOSED_FROM, CLOSED_TO, WINDOW = date(2026, 8, 1), date(2026, 8, 10), 30
WEEK = "2026-W37"  # its 30-day repeat window: 2026-08-15 … 2026-09-13


@pytest.fixture
def demo(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: Any
) -> dict[str, Any]:
    """40 days of the demo city imported into this test's database; settings pointing at it."""
    files = generate_city(DemoSpec(days=40, daily_volume=1000), tmp_path / "demo", REPO / "config")
    metrics = files.config_dir / "metrics.yaml"
    data = yaml.safe_load(metrics.read_text(encoding="utf-8"))
    data["repeat_min_count"] = 2  # more groups to check
    metrics.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(files.config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    summary = import_tickets(engine, config, files.tickets_csv, "duban", tmp_path / "reports")
    assert summary.quarantined == 0 and summary.inserted > 30_000
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        url += f"?options={_search_path(engine)}"
    env = {
        "DUBAN_DATABASE_URL": url,
        "DUBAN_CONFIG_DIR": str(files.config_dir),
        "DUBAN_REPORTS_DIR": str(tmp_path / "reports"),
        "DUBAN_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DUBAN_SMTP_HOST": smtp_server.host,
        "DUBAN_SMTP_PORT": str(smtp_server.port),
        "DUBAN_SMTP_SECURITY": "none",
        "DUBAN_MAIL_FROM": "duban@duban.example",
        "DUBAN_TEMPLATES_DIR": str(REPO / "templates"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return {"engine": engine, "config": config}


def raw(engine: Engine) -> pd.DataFrame:
    """Every ticket as stored, with the place key computed here from the raw columns."""
    with engine.connect() as conn:
        t = k.frame(
            conn,
            select(*(k.T[c] for c in ("id", "external_id", "district", "street", "address",
                                      "category", "status", "received_at", "closed_at",
                                      "place_key"))),
        )  # fmt: skip
    for column in ("received_at", "closed_at"):
        t[column] = pd.to_datetime(t[column])
    t["status"] = [getattr(s, "value", s) for s in t["status"]]
    t["key"] = [
        place_key(d if isinstance(d, str) else None, s if isinstance(s, str) else None,
                  a if isinstance(a, str) else None)
        for d, s, a in zip(t["district"], t["street"], t["address"], strict=True)
    ]  # fmt: skip
    return t


def recurrences(t: pd.DataFrame, place: str) -> pd.DataFrame:
    """(item, recurrence) pairs of the look-back's definition with `place` as the place."""
    start, end = (
        datetime.combine(CLOSED_FROM, datetime.min.time()),
        datetime.combine(CLOSED_TO + timedelta(days=1), datetime.min.time()),
    )
    e = t[
        t["status"].isin(["closed", "reopened"])
        & (t["closed_at"] >= start)
        & (t["closed_at"] < end)
        & t[place].notna()
        & (t[place] != "")
    ]
    pairs = e.merge(t, on=[place, "category"], suffixes=("", "_r"))
    delta = pairs["received_at_r"] - pairs["closed_at"]
    return pairs[
        (pairs["id"] != pairs["id_r"])
        & (delta > pd.Timedelta(0))
        & (delta <= pd.Timedelta(days=WINDOW))
    ]


def test_the_lookback_flow_pairs_spellings_of_one_place_and_never_two_districts(
    demo: dict[str, Any],
) -> None:
    engine = demo["engine"]
    t = raw(engine)
    assert list(t["place_key"]) == list(t["key"])  # the import stored the rule's key
    # The old definition (the address text alone) pairs different districts in this data.
    old = recurrences(t, "address")
    assert (old["district"] != old["district_r"]).sum() >= 5
    expected = recurrences(t, "key")
    assert (expected["district"] == expected["district_r"]).all()
    assert (expected["street"] == expected["street_r"]).all()
    assert (expected["address"] != expected["address_r"]).sum() >= 3  # spellings matched
    first = (
        expected.sort_values(["received_at_r", "id_r"]).groupby("id").agg(
            recurrences=("id_r", "size"), first=("id_r", "first")
        )
    )  # fmt: skip

    summary = lookback(
        build_request(closed_from=CLOSED_FROM, closed_to=CLOSED_TO, window_days=WINDOW)
    )
    assert summary["recurred"] == len(first) > 10
    with engine.connect() as conn:
        found = {
            r.item_id: (r.recurrences, r.first_recurrence_id)
            for r in conn.execute(select(LookbackFinding.__table__))
        }
    assert found == {int(i): (int(r.recurrences), int(r.first)) for i, r in first.iterrows()}
    by_id = t.set_index("id")
    for item, (_, recurrence) in found.items():
        a, b = by_id.loc[item], by_id.loc[recurrence]
        assert (a["district"], a["street"]) == (b["district"], b["street"])


def test_weekly_repeat_complaints_group_one_place_across_spellings(
    demo: dict[str, Any],
) -> None:
    engine, config = demo["engine"], demo["config"]
    week = parse_week(WEEK)
    analysis = measure_weekly(engine, config, week)
    start, end = analysis.repeat_window
    t = raw(engine)
    w = t[(t["received_at"] >= start) & (t["received_at"] < end) & t["key"].notna()]
    # The old definition (address text and category) mixes districts in this window.
    old = w.groupby(["address", "category"]).agg(n=("id", "size"), d=("district", "nunique"))
    assert ((old["n"] >= 2) & (old["d"] > 1)).sum() >= 3
    new = w.groupby(["key", "category"]).agg(
        tickets=("id", "size"), spellings=("address", "nunique"), districts=("district", "nunique")
    )
    new = new[new["tickets"] >= 2]
    assert (new["spellings"] > 1).sum() >= 3  # one place, spelled apart, is one group
    actual = analysis.repeat_address
    assert sorted(actual["tickets"]) == sorted(new["tickets"])
    got = {(p, c) for p, c in zip(
        [place_key(d, s, a) for d, s, a in
         zip(actual["district"], actual["street"], actual["address"], strict=True)],
        actual["category"], strict=True)}  # fmt: skip
    assert got == set(new.index)
    # The office e-mail names each place with its district and street, never twice.
    shown = [r["key"] for r in office_context(config, analysis)["repeat_address"]]
    assert shown
    for text, r in zip(shown, actual.itertuples(index=False), strict=False):
        assert text.startswith(r.district) and text.count(r.district) == 1
        assert r.street in text and place_key(r.district, r.street, text) == place_key(
            r.district, r.street, r.address
        )
