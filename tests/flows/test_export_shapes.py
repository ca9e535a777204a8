"""Every export shape of issue 14 in one city, through every loop, on SQLite and PostgreSQL.

Eight sources, each an export of one shape: empty optional cells; no response, resolution or
call-back columns; no deadline column; deadlines from the export only (some rows without);
a dispatch catalogue; date-only close times; cancelled, referred-out and invalid statuses; a
foreign time zone. The daily, weekly, monthly (approved), quarterly (twice, the inspectors'
checklist returned with empty notes in between), look-back and annual loops run over the
city. No run may crash; no notice, workbook, CSV or mail may show `nan`/`None`; no 0.0 % may
be shown for a rate the data does not measure; and the monthly scores and the annual rate
values must equal a plain pandas computation of docs/metrics.md from the stored tickets,
which are themselves checked against what each shape's export says."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from duban.config import TICKET_FIELDS, CityConfig, load_config
from duban.db.models import Ticket, Unit
from duban.ingest.tickets import import_tickets
from duban.loops.lookback.findings import build_request
from duban.loops.quarterly.checklist import import_checks
from duban.settings import get_settings
from flows.annual import annual_evaluation
from flows.daily import daily_report
from flows.lookback import lookback
from flows.monthly import approve_monthly, monthly_bulletin
from flows.quarterly import quarterly_spot_check
from flows.weekly import weekly_analysis
from tests.flows.test_missing_columns import (
    annual_scores,
    check_not_shown,
    monthly_scores,
    score,
    texts,
    write_csv,
)
from tests.flows.test_ragged_export import fill_checklist, shown_words

UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "hrss"]
FULL = list(TICKET_FIELDS)
FMT = "%Y-%m-%d %H:%M:%S"
LACKS = ("first_response_at", "resolved", "satisfaction")
SHAPES = ("ragged", "bare", "nodue", "onlydue", "catalogue", "dateonly", "statuses", "foreign")
STATUS_VALUES = {"open": "open", "closed": "closed", "已作废": "cancelled", "转出": "cancelled",
                 "无效": "invalid"}  # fmt: skip
SATISFACTION = ["满意", "基本满意", "不满意", None]
RATES = ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate")


def mapping(config_dir: Path, shape: str) -> list[str]:
    """Write `sources/<shape>.yaml` (from the shipped `duban` one); return its columns."""
    data = yaml.safe_load((config_dir / "sources" / "duban.yaml").read_text(encoding="utf-8"))
    columns = list(FULL)
    data["values"]["status"].update(STATUS_VALUES)
    if shape == "bare":
        columns = [c for c in columns if c not in LACKS]
    elif shape in ("nodue", "catalogue"):
        columns = [c for c in columns if c not in ("due_at", "urgency")]
        data["defaults"] = {"urgency": 3}
        data["deadline"] = "catalogue" if shape == "catalogue" else "default_level"
    elif shape == "onlydue":
        data["deadline"] = "export_only"
    elif shape == "dateonly":
        data["date_only"] = {"closed_at": "end"}
    elif shape == "foreign":
        data["timezone"] = "America/New_York"
    data["name"] = shape
    data["columns"] = {c: c for c in columns}
    (config_dir / "sources" / f"{shape}.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    return columns


def shape_rows(shape: str, s: int) -> list[dict[str, Any]]:
    """Four tickets per unit: two received in September (the quarter's sample and the
    look-back's population), two in October (the month's bulletin: with eight shapes, at
    least 10 a unit, enough to be ranked)."""
    out = []
    for ui, unit in enumerate(UNITS):
        for n, received in enumerate(
            (datetime(2026, 9, 2 + ui, 9 + s), datetime(2026, 9, 15 + ui, 10),
             datetime(2026, 10, 8 + ui, 8 + s), datetime(2026, 10, 13 + ui, 15))
        ):  # fmt: skip
            i = ui * 4 + n
            closed = (i + s) % 4 != 0
            close = received + timedelta(days=1 + (i + s) % 6, hours=2)
            r: dict[str, Any] = {
                "external_id": f"{shape}-{i:02d}", "received_at": received,
                "dispatched_at": received + timedelta(hours=1),
                "first_response_at": received + timedelta(hours=(i * 5 + s * 3) % 30),
                "resolved_at": close if closed else None, "closed_at": close if closed else None,
                "due_at": received + timedelta(days=5),
                "category": "噪声扰民", "district": "东城区", "street": "建国门街道",
                "community": "建国门社区", "address": f"建国门内大街{ui}号",
                "content": f"市民反映{shape}问题{i}，请回电13812345678",
                "caller_phone": "13812345678", "unit": unit, "urgency": 3,
                "status": "closed" if closed else "open",
                "resolved": ((i + s) % 3 != 0) if closed else None,
                "satisfaction": SATISFACTION[(i + s) % 4] if closed else None,
                "returned_count": i % 2, "reassigned_count": 0,
            }  # fmt: skip
            if shape == "ragged":  # every optional cell empty somewhere
                for j, name in enumerate(
                    f
                    for f in FULL
                    if f
                    not in ("external_id", "received_at", "category", "unit", "status", "closed_at")
                ):
                    if (i + j) % 3 == 0:
                        r[name] = None
            elif shape == "onlydue" and i % 2:
                r["due_at"] = None  # 无办理时限
            elif shape == "catalogue" and i % 2:
                r["category"] = "燃气泄漏"  # level 1 in config/urgency.yaml's catalogue
            elif shape == "dateonly" and closed:
                r["closed_at"] = close.strftime("%Y-%m-%d")
            elif shape == "statuses" and i % 3 == 1:
                r["status"] = ["已作废", "转出", "无效"][ui % 3]
            elif shape == "foreign":
                r = {
                    k: (v - timedelta(hours=12) if isinstance(v, datetime) else v)
                    for k, v in r.items()
                }  # fmt: skip  (New York, EDT: 12 h behind Beijing)
            out.append(r)
    return out


def stored_tickets(engine: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        t = pd.read_sql(
            select(Ticket.__table__, Unit.code.label("unit")).join(Unit, Unit.id == Ticket.unit_id),
            conn,
        )
    for c in ("received_at", "first_response_at", "closed_at", "due_at"):
        t[c] = pd.to_datetime(t[c])
    t["status"] = t["status"].map(str)
    t["satisfaction"] = t["satisfaction"].map(lambda v: None if pd.isna(v) else str(v))
    return t


def expected_rates(t: pd.DataFrame, config: CityConfig, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    """docs/metrics.md in plain pandas: per unit, the four rates over [start, end)."""
    lacking = config.sources_lacking
    counts = ~t["status"].isin(["cancelled", "invalid"])
    rec = (t["received_at"] >= start) & (t["received_at"] < end) & counts
    due = (t["due_at"] >= start) & (t["due_at"] < end) & counts

    def measured(rate: str) -> pd.Series:
        return ~t["source"].isin(lacking.get(rate, ()))

    hours = {lv.level: lv.response_hours for lv in config.urgency.levels}
    waited = (t["first_response_at"] - t["received_at"]).dt.total_seconds()
    in_time = t["first_response_at"].notna() & (waited <= t["urgency"].map(hours) * 3600)
    closed = t["closed_at"].notna()
    resolved = t["resolved"].map(lambda v: v is True or v == 1)
    weight = config.metrics.basically_satisfied_weight
    sat_in = rec & measured("satisfaction_rate")
    f = pd.DataFrame({
        "unit": t["unit"],
        "r_num": rec & in_time & measured("response_rate"),
        "r_den": rec & measured("response_rate"),
        "o_num": due & closed & (t["closed_at"] <= t["due_at"]) & measured("on_time_rate"),
        "o_den": due & measured("on_time_rate"),
        "s_num": rec & closed & resolved & measured("resolution_rate"),
        "s_den": rec & closed & measured("resolution_rate"),
        "sat_num": sat_in * ((t["satisfaction"] == "satisfied") * 1.0
                             + (t["satisfaction"] == "basically_satisfied") * weight),
        "sat_den": sat_in & t["satisfaction"].notna(),
    })  # fmt: skip
    g = f.groupby("unit").sum()

    def div(a: pd.Series, b: pd.Series) -> pd.Series:
        return (a.astype(float) / b.where(b != 0)).astype("float64")

    return pd.DataFrame({
        "response_rate": div(g["r_num"], g["r_den"]),
        "on_time_rate": div(g["o_num"], g["o_den"]),
        "resolution_rate": div(g["s_num"], g["s_den"]),
        "satisfaction_rate": div(g["sat_num"], g["sat_den"]),
    })  # fmt: skip


def check_stored(t: pd.DataFrame, sent: dict[str, list[dict[str, Any]]]) -> None:
    """What each shape's export says is what was stored."""
    by_id = t.set_index("external_id")
    for r in sent["foreign"]:  # New York times, 12 h behind: stored in Beijing time
        assert by_id.at[r["external_id"], "received_at"] == r["received_at"] + timedelta(hours=12)
    for r in sent["dateonly"]:
        if r["closed_at"]:
            got = by_id.at[r["external_id"], "closed_at"]
            assert (got.strftime("%Y-%m-%d"), got.time()) == (
                r["closed_at"],
                datetime.max.time().replace(microsecond=0),
            )
    for r in sent["onlydue"]:
        assert pd.isna(by_id.at[r["external_id"], "due_at"]) == (r["due_at"] is None)
    for r in sent["catalogue"]:
        assert by_id.at[r["external_id"], "urgency"] == (1 if r["category"] == "燃气泄漏" else 3)
    for r in sent["nodue"]:
        assert pd.notna(by_id.at[r["external_id"], "due_at"])  # the level's limit
    wanted = {"已作废": "cancelled", "转出": "cancelled", "无效": "invalid"}
    for r in sent["statuses"]:
        assert by_id.at[r["external_id"], "status"] == wanted.get(r["status"], r["status"])


def test_every_loop_over_every_export_shape(city: dict[str, Any], tmp_path: Path) -> None:
    engine, smtp, reports = city["engine"], city["smtp"], city["reports"]
    root = Path(city["config"].root)
    columns = {shape: mapping(root, shape) for shape in SHAPES}
    config = load_config(root)
    sent = {shape: shape_rows(shape, s) for s, shape in enumerate(SHAPES)}
    for shape in SHAPES:
        path = write_csv(tmp_path / f"{shape}.csv", columns[shape], sent[shape])
        summary = import_tickets(engine, config, path, shape, tmp_path / "import-reports")
        assert (summary.inserted, summary.quarantined) == (len(sent[shape]), 0), shape
    tickets = stored_tickets(engine)
    check_stored(tickets, sent)

    for day in (date(2026, 10, 12), date(2026, 10, 20)):
        assert daily_report(day=day)["notices"] > 0
    weekly_analysis(week="2026-W42")
    assert monthly_bulletin(month="2026-10")["status"] == "draft"
    assert approve_monthly("2026-10", "张主任")["status"] == "approved"
    first = quarterly_spot_check(quarter="2026-Q3")
    assert first["drawn"] > 1
    [checklist] = reports.rglob("抽查核验清单-2026-Q3.xlsx")
    today = datetime.now(get_settings().zone).date()
    filled = fill_checklist(checklist, tmp_path / "returned.xlsx", today)
    checks = import_checks(engine, config, filled, tmp_path / "import-reports", today=today)
    assert checks.failed == 1
    assert quarterly_spot_check(quarter="2026-Q3")["failed"] == 1
    lookback(build_request(closed_from=date(2026, 9, 1), closed_to=date(2026, 10, 31)))
    annual_evaluation(year=2026)

    assert shown_words(tmp_path, smtp) == {}
    # The `bare` shape lacks three rates on its own tickets only: every rate is measured on
    # the others, so none is missing, and the notes say whose tickets are left out.
    check_not_shown(reports, [])
    shown = "".join(t for p, t in texts(reports).items() if p.startswith("monthly"))
    assert "响应率不含来源 bare 的工单" in shown

    # The bulletin was drawn from the tickets as imported (the spot check reopened one since).
    october = expected_rates(tickets, config, datetime(2026, 10, 1), datetime(2026, 11, 1))
    names = {u.name: u.code for u in config.units.units}
    [office] = [t for p, t in texts(reports).items()
                if "monthly" in p and "office" in p and p.endswith(".txt")]  # fmt: skip
    got = monthly_scores(office, names)
    assert set(got) == set(UNITS)
    weights = config.metrics.score_weights
    for unit in UNITS:
        want = round(score(october.loc[unit], weights), 1)
        assert got[unit] == pytest.approx(want, abs=0.051), unit
    tickets = stored_tickets(engine)
    year = expected_rates(tickets, config, datetime(2026, 1, 1), datetime(2027, 1, 1))
    annual = annual_scores(reports)
    for unit in UNITS:
        for rate in RATES:
            assert annual.loc[unit, f"{rate}_value"] == pytest.approx(100 * year.loc[unit, rate]), (
                unit,
                rate,
            )
