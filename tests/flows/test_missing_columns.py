"""Missing is not zero (issue 14, item 2): an export whose mapping has no first-response,
resolution or call-back (satisfaction) column, alone and mixed in one city with a source that
has them, run through the monthly, weekly and annual flows on SQLite and PostgreSQL.

No notice or attachment may show 0.0 % for a rate the data cannot support, no unit may be
named for it, the notes must say why, and the scores must equal a plain pandas computation
of the documented rule (config/metrics.yaml, config/evaluation.yaml): a missing rate's
weight goes to the others; the tickets of a source without the field are not in the rate's
denominator."""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from duban.config import TICKET_FIELDS, CityConfig, load_config
from duban.ingest.tickets import import_tickets
from duban.loops.annual.evaluation import SCORE_HEADERS
from flows.annual import annual_evaluation
from flows.monthly import monthly_bulletin
from flows.weekly import weekly_analysis

UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "hrss"]
FULL = list(TICKET_FIELDS)  # the shipped `duban` mapping names its columns as the fields
LACKED = ("first_response_at", "resolved", "satisfaction")
BARE = [
    "external_id", "received_at", "closed_at", "due_at", "category", "district", "street",
    "unit", "urgency", "status",
]  # fmt: skip
RATES = ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate")
UNMEASURED = {"response_rate": "响应率", "resolution_rate": "解决率", "satisfaction_rate": "满意率"}
FMT = "%Y-%m-%d %H:%M:%S"
BARE_YAML = """name: bare
description: an export without first-response, resolution or call-back columns
timezone: Asia/Shanghai
datetime_formats: ["%Y-%m-%d %H:%M:%S"]
columns: {external_id: external_id, received_at: received_at, closed_at: closed_at,
          due_at: due_at, category: category, district: district, street: street,
          unit: unit, urgency: urgency, status: status}
values:
  status: {open: open, closed: closed}
  urgency: {"3": 3}
unit_by: code
"""


def rows() -> list[dict[str, Any]]:
    """12 tickets per unit, received 1–23 October 2026 and due 5 days later (all in the
    month); varied response times, closures, resolutions and call-backs. Even tickets come
    from the full `duban` source, odd ones from `bare` (used when mixing)."""
    out = []
    for ui, unit in enumerate(UNITS):
        for n in range(12):
            received = datetime(2026, 10, 1, 9) + timedelta(days=2 * n, hours=ui)
            closed = (n + ui) % 4 != 0
            closed_at = received + timedelta(days=1 + (n + 2 * ui) % 7)
            out.append(
                {
                    "external_id": f"M{ui}{n:02d}",
                    "received_at": received,
                    "first_response_at": received + timedelta(hours=(n * 5 + ui * 7) % 36),
                    "closed_at": closed_at if closed else None,
                    "due_at": received + timedelta(days=5),
                    "category": "噪声扰民", "district": "东城区", "street": "建国门街道",
                    "unit": unit, "urgency": 3, "status": "closed" if closed else "open",
                    "resolved": ((n + ui) % 3 != 0) if closed else None,
                    "satisfaction": ["满意", "基本满意", "不满意", None][(n * (ui + 1)) % 4],
                    "odd": n % 2 == 1,
                }
            )  # fmt: skip
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(FMT)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def write_csv(path: Path, columns: list[str], data: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([_cell(r.get(c)) for c in columns] for r in data)
    return path


def expected(data: list[dict[str, Any]], config: CityConfig) -> pd.DataFrame:
    """The rates per unit by docs/metrics.md, in plain pandas: the tickets of `bare` are not
    in the denominators of the rates it lacks."""
    t = pd.DataFrame(data)
    hours = {lv.level: lv.response_hours for lv in config.urgency.levels}
    full = t["source"] == "duban"
    waited = (t["first_response_at"] - t["received_at"]).dt.total_seconds()
    t["in_time"] = (full & (waited <= t["urgency"].map(hours) * 3600)).astype(int)
    t["measured"] = full.astype(int)
    closed = t["closed_at"].notna()
    t["on_time"] = (closed & (t["closed_at"] <= t["due_at"])).astype(int)
    t["judged"] = (full & closed).astype(int)
    t["closed_resolved"] = (full & closed & (t["resolved"] == True)).astype(int)  # noqa: E712
    sat = t["satisfaction"].where(full)
    weight = config.metrics.basically_satisfied_weight
    t["rated"] = sat.notna().astype(int)
    t["satisfied"] = (sat == "满意") * 1.0 + (sat == "基本满意") * weight
    t["tickets"] = 1
    g = t.groupby("unit")[
        ["tickets", "in_time", "measured", "on_time", "judged", "closed_resolved", "rated",
         "satisfied"]
    ].sum()  # fmt: skip

    def div(a: pd.Series, b: pd.Series) -> pd.Series:
        return (a / b.where(b != 0)).astype("float64")

    g["response_rate"] = div(g["in_time"], g["measured"])
    g["on_time_rate"] = div(g["on_time"], g["tickets"])
    g["resolution_rate"] = div(g["closed_resolved"], g["judged"])
    g["satisfaction_rate"] = div(g["satisfied"], g["rated"])
    return g


def score(rates: pd.Series, weights: dict[str, float]) -> float:
    """100 × the weighted mean of the present rates (config/metrics.yaml)."""
    present = {k: w for k, w in weights.items() if w > 0 and pd.notna(rates[k])}
    return 100 * sum(w * rates[k] for k, w in present.items()) / sum(present.values())


def texts(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8-sig")
        for p in sorted(root.rglob("*"))
        if p.suffix in (".txt", ".html", ".csv")
    }


def run_loops(city: dict[str, Any], tmp_path: Path, mixed: bool) -> tuple[list, CityConfig]:
    (Path(city["config"].root) / "sources" / "bare.yaml").write_text(BARE_YAML, "utf-8")
    config = load_config(city["config"].root)
    data = rows()
    for r in data:
        r["source"] = "duban" if mixed and not r["odd"] else "bare"
    full = [r for r in data if r["source"] == "duban"]
    bare = [r for r in data if r["source"] == "bare"]
    reports = tmp_path / "import-reports"
    for name, columns, part in (("duban", FULL, full), ("bare", BARE, bare)):
        if part:
            path = write_csv(tmp_path / f"{name}.csv", columns, part)
            summary = import_tickets(city["engine"], config, path, name, reports)
            assert summary.quarantined == 0 and summary.inserted == len(part)
    assert monthly_bulletin(month="2026-10")["status"] == "draft"
    weekly_analysis(week="2026-W43")
    annual_evaluation(year=2026)
    return data, config


def monthly_scores(text: str, names: dict[str, str]) -> dict[str, float]:
    found = re.findall(r"^\d+\. (\S+?)：得分 ([\d.]+)，工单", text, flags=re.M)
    return {names[name]: float(s) for name, s in found}


def annual_scores(root: Path) -> pd.DataFrame:
    """The annual scores CSV with its English column names (the file's are Chinese)."""
    [path] = [p for p in root.rglob("*.csv") if "annual" in str(p)]
    english = {zh: key for key, zh in SCORE_HEADERS.items()}
    frame = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=True)
    return frame.rename(columns=english).set_index("unit")


def check_scores(city: dict[str, Any], data: list, config: CityConfig) -> pd.DataFrame:
    reports = city["reports"]
    want = expected(data, config)
    names = {u.name: u.code for u in config.units.units}
    [office] = [t for p, t in texts(reports).items() if "monthly" in p and "office" in p
                and p.endswith(".txt")]  # fmt: skip
    got = monthly_scores(office, names)
    assert set(got) == set(UNITS)
    for unit in UNITS:
        assert got[unit] == pytest.approx(
            round(score(want.loc[unit], config.metrics.score_weights), 1), abs=0.051
        ), unit
    annual = annual_scores(reports)
    weights = dict(config.evaluation.rate_weights)
    for unit in UNITS:
        # No plan items, spot checks, escalations or recurrences: the total is the rate block.
        rate_weights = {k: weights[k] for k in RATES}
        assert annual.loc[unit, "total"] == pytest.approx(
            score(want.loc[unit], rate_weights), abs=0.03
        ), unit
        for rate in RATES:
            value = annual.loc[unit, f"{rate}_value"]
            if pd.isna(want.loc[unit, rate]):
                assert pd.isna(value), (unit, rate)
            else:
                assert value == pytest.approx(100 * want.loc[unit, rate]), (unit, rate)
    return want


def check_not_shown(reports: Path, names: list[str]) -> dict[str, str]:
    """No unit named for a rate of `names`, no 0.0 % shown for it; every text, by path."""
    found = texts(reports)
    assert found
    for where, text in found.items():
        for name in names:
            assert f"{name}偏低" not in text, where
            assert f"主要失分指标：{name}" not in text, where
            assert not re.search(rf"{name}\s*(?:[0-9.]+% / )?(?<![\d.+-])0\.0%", text), where
    return found


def test_an_export_without_response_resolution_or_callback_columns(
    city: dict[str, Any], tmp_path: Path
) -> None:
    data, config = run_loops(city, tmp_path, mixed=False)
    assert config.sources_lacking["response_rate"] == {"bare", "nyc311"}  # nyc311: no 响应
    want = check_scores(city, data, config)
    assert want[list(UNMEASURED)].isna().all().all()
    found = check_not_shown(city["reports"], list(UNMEASURED.values()))
    # No 0.0 % anywhere: the only rate the data supports is above 0 for every unit.
    assert (want["on_time_rate"] > 0).all()
    for where, text in found.items():
        assert not re.search(r"(?<![\d.+-])0\.0%", text), where
    notes = ("导出数据无首次响应时间，无法计算响应率", "导出数据无是否解决，无法计算解决率",
             "导出数据无回访满意度，无法计算满意率")  # fmt: skip
    for loop in ("monthly", "weekly", "annual"):
        shown = [t for p, t in found.items() if p.startswith(loop) and not p.endswith(".csv")]
        assert shown, loop
        for note in notes:
            assert any(note in t for t in shown), (loop, note)
    annual = annual_scores(city["reports"])
    for rate in UNMEASURED:
        assert annual[f"{rate}_value"].isna().all() and annual[f"{rate}_points"].isna().all()
        assert (annual[f"{rate}_weight"] == 0).all()


def test_one_source_with_the_columns_and_one_without_in_one_city(
    city: dict[str, Any], tmp_path: Path
) -> None:
    data, config = run_loops(city, tmp_path, mixed=True)
    want = check_scores(city, data, config)
    assert want[list(RATES)].notna().all().all()  # every rate measured, on half the tickets
    found = check_not_shown(city["reports"], [])
    for loop in ("monthly", "weekly", "annual"):
        shown = "".join(t for p, t in found.items() if p.startswith(loop))
        assert "响应率不含来源 bare 的工单（其导出数据无首次响应时间）" in shown, loop
        assert "无法计算" not in shown, loop  # every rate is measured on some tickets
