"""The demo city: deterministic, valid config, calibrated counts, a readable ticket export."""

from __future__ import annotations

import fnmatch
import re
import sys
import tomllib
import types
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from duban.config import load_config
from duban.demo import tables
from duban.demo.city import DemoFiles, DemoSpec, generate_city
from duban.demo.tables import HTML_SAMPLES, PROBLEMS
from duban.demo.tickets import ticket_model
from duban.demo.units import build_city, cooperating_units
from duban.ingest.rows import TicketRefs, validate_rows
from duban.ingest.sources import read_export

REPO = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO / "config"
SMALL = DemoSpec(days=5, daily_volume=200)
TASK_KEYS = {"problem", "code", "title", "owner", "start_month", "due_month", "status"}
TASK_KEYS |= {"progress", "completed_on", "evidence"}
POLICY_KEYS = {"problem", "code", "title", "owner", "due_month", "status", "issued_on", "evidence"}


class PlanCalls:
    """Records what generate_city hands to write_plan_workbook."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    @property
    def lists(self) -> tuple[list[dict[str, Any]], ...]:
        _path, tasks, duties, policies, plans = self.calls[0]
        return tasks, duties, policies, plans


@pytest.fixture(scope="module")
def plan_calls() -> Iterator[PlanCalls]:
    """Wrap duban.ingest.plan.write_plan_workbook (a stand-in while it does not exist)."""
    recorder = PlanCalls()
    with pytest.MonkeyPatch.context() as mp:
        try:
            import duban.ingest.plan as module

            real = module.write_plan_workbook
        except (ImportError, AttributeError):
            module = types.ModuleType("duban.ingest.plan")
            mp.setitem(sys.modules, "duban.ingest.plan", module)
            real = None

        def write(path: Path, *lists: Any) -> None:
            recorder.calls.append((path, *lists))
            if real is not None:
                real(path, *lists)
            else:
                Path(path).write_bytes(b"stand-in")

        mp.setattr(module, "write_plan_workbook", write, raising=False)
        yield recorder


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, plan_calls: PlanCalls) -> DemoFiles:
    return generate_city(SMALL, tmp_path_factory.mktemp("city"), BASE_CONFIG)


@pytest.fixture(scope="module")
def tickets(city: DemoFiles) -> pd.DataFrame:
    return pd.read_csv(city.tickets_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def units(city: DemoFiles) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((city.config_dir / "units.yaml").read_text(encoding="utf-8"))
    return {u["code"]: u for u in data["units"]}


def test_same_spec_gives_identical_files(
    city: DemoFiles, tmp_path: Path, plan_calls: PlanCalls
) -> None:
    again = generate_city(SMALL, tmp_path / "again", BASE_CONFIG)
    for name in ("tickets.csv", "config/units.yaml", "config/problems.yaml"):
        first = (city.tickets_csv.parent / name).read_bytes()
        assert first == (tmp_path / "again" / name).read_bytes(), name
    assert plan_calls.calls[0][1:] == plan_calls.calls[-1][1:]
    assert again.tickets == city.tickets


def test_another_seed_gives_other_tickets(
    city: DemoFiles, tmp_path: Path, plan_calls: PlanCalls
) -> None:
    other = generate_city(replace(SMALL, seed=7), tmp_path / "other", BASE_CONFIG)
    assert other.tickets_csv.read_bytes() != city.tickets_csv.read_bytes()


def test_generated_config_validates(city: DemoFiles) -> None:
    config = load_config(city.config_dir)
    assert len(config.units.units) == city.units
    assert len(config.problems.problems) == city.problems == 27
    assert config.problems.year == SMALL.year
    copied = {p.name for p in city.config_dir.glob("*.yaml")}
    assert {p.name for p in BASE_CONFIG.glob("*.yaml")} <= copied
    assert (city.config_dir / "sources" / "duban.yaml").exists()
    assert SMALL.mail_domain in config.mail.allowed_domains


def test_units_match_the_domain(units: dict[str, dict[str, Any]]) -> None:
    kinds = pd.Series([u["kind"] for u in units.values()]).value_counts()
    assert kinds["city"] == 1 and units["city"]["name"] == "市民热线服务中心"
    assert kinds["district"] == 17
    assert 300 <= kinds["street"] <= 380
    assert 90 <= kinds["department"] + kinds["company"] <= 110
    assert 430 <= len(units) <= 500
    districts = {u["name"] for u in units.values() if u["kind"] == "district"}
    assert {"东城区", "朝阳区", "延庆区", "北京经济技术开发区"} <= districts
    for code, unit in units.items():
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", code)
        assert unit["emails"] == [f"{code}@{SMALL.mail_domain}"]
        if unit["kind"] == "street":
            assert units[unit["parent"]]["kind"] == "district"
            assert re.fullmatch(r"d\d\d-s\d{3}", code)
    for district in (c for c, u in units.items() if u["kind"] == "district"):
        names = [u["name"] for u in units.values() if u.get("parent") == district]
        assert len(names) == len(set(names))


def test_problems_match_the_domain(city: DemoFiles, units: dict[str, dict[str, Any]]) -> None:
    problems = load_config(city.config_dir).problems.problems
    assert len({p.category for p in problems}) == 12
    assert len({p.lead for p in problems}) == 12
    cooperating = {c for p in problems for c in p.cooperating}
    assert len(cooperating) == 54
    assert {units[c]["kind"] for c in cooperating | {p.lead for p in problems}} <= {
        "department",
        "company",
    }
    assert {p.approach.value for p in problems} == {"reform", "governance", "rectification"}
    for p in problems:
        assert p.lead not in p.cooperating
        assert 1 <= len(p.ticket_categories) <= 2
        assert p.focus_month is not None and 1 <= p.focus_month <= 12
        assert p.plan
    names = {p.name for p in problems}
    assert {
        "房产证办证难",
        "预付式消费退费难",
        "拖欠工资",
        "老旧小区改造",
        "垃圾清运不及时",
    } <= names


def test_plan_lists(city: DemoFiles, plan_calls: PlanCalls) -> None:
    tasks, duties, policies, plans = plan_calls.lists
    assert plan_calls.calls[0][0] == city.plan_workbook
    assert city.plan_workbook.exists()
    assert abs(len(tasks) - 603) <= 60 and len(tasks) == city.plan_tasks
    assert 60 <= len(policies) <= 70 and len(policies) == city.policies
    assert len(plans) == 27 and all(p["plan"] for p in plans)
    problems = {p.code: p for p in load_config(city.config_dir).problems.problems}
    assert len(duties) == sum(len(p.cooperating) for p in problems.values())
    assert {(d["problem"], d["unit"]) for d in duties} == {
        (code, c) for code, p in problems.items() for c in p.cooperating
    }
    for task in tasks:
        assert set(task) == TASK_KEYS
        p = problems[task["problem"]]
        assert task["owner"] in (p.lead, *p.cooperating)
        assert task["start_month"] <= task["due_month"]
        assert task["status"] in ("planned", "in_progress", "done")
        assert 0 <= task["progress"] <= 1
        assert bool(task["completed_on"]) == (task["status"] == "done")
    for policy in policies:
        assert set(policy) == POLICY_KEYS
        assert bool(policy["issued_on"]) == (policy["status"] == "done")
    assert len({t["code"] for t in tasks}) == len(tasks)
    # As of the demo's today (2026-08-06): past-due tasks mostly done, some lagging.
    frame = pd.DataFrame(tasks)
    past = frame[frame.due_month < "2026-08"]
    lagging = (past.status != "done").mean()
    assert 0.04 <= lagging <= 0.25
    assert (frame[frame.due_month > "2026-08"].status != "done").mean() > 0.9


def test_ticket_file_reads_back_through_the_mapping(city: DemoFiles, tickets: pd.DataFrame) -> None:
    mapping = load_config(city.config_dir).source("duban")
    assert list(tickets.columns) == list(mapping.columns.values())
    assert city.tickets_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = sum(len(chunk.frame) for chunk in read_export(city.tickets_csv, mapping))
    assert rows == len(tickets) == city.tickets


def test_every_row_passes_ticket_validation(city: DemoFiles) -> None:
    """Duban's own row validation (with the working-day calendar) quarantines nothing."""
    config = load_config(city.config_dir)
    mapping = config.source("duban")
    refs = TicketRefs(
        unit_ids={u.code: i for i, u in enumerate(config.units.units)},
        problem_by_category={
            c: i for i, p in enumerate(config.problems.problems) for c in p.ticket_categories
        },
        urgency=config.urgency,
        calendar=config.calendar,
        city_zone=ZoneInfo(mapping.timezone),
    )
    good = 0
    for chunk in read_export(city.tickets_csv, mapping):
        rows, bad = validate_rows(chunk.frame, chunk.first_row, mapping, refs)
        assert bad == []
        assert rows.due_at.notna().all()
        assert rows.problem_id.notna().any()
        good += len(rows)
    assert good == city.tickets


def test_ticket_volume_and_fields(
    city: DemoFiles, tickets: pd.DataFrame, units: dict[str, dict[str, Any]]
) -> None:
    assert 0.85 * 5 * 200 <= len(tickets) <= 1.15 * 5 * 200
    assert tickets.external_id.is_unique
    assert tickets.external_id.str.fullmatch(r"2026080[1-5]\d{5}").all()
    assert set(tickets.unit) <= set(units)
    assert (tickets.due_at == "").all()
    assert set(tickets.urgency) <= {"1", "2", "3", "4"}
    assert set(tickets.status) <= {"open", "in_progress", "closed"}
    assert set(tickets.resolved) <= {"", "0", "1"}
    assert set(tickets.satisfaction) <= {"", "satisfied", "basically_satisfied", "dissatisfied"}
    phones = tickets.caller_phone[tickets.caller_phone != ""]
    assert phones.str.fullmatch(r"1[3-9]\d{9}|010-\d{8}").all()

    def when(column: str) -> pd.Series:
        return pd.to_datetime(tickets[column].replace("", None), format="%Y-%m-%d %H:%M:%S")

    received, dispatched = when("received_at"), when("dispatched_at")
    responded, resolved_at, closed_at = (
        when("first_response_at"),
        when("resolved_at"),
        when("closed_at"),
    )
    closed = closed_at.notna()
    assert received.notna().all()
    assert (tickets.status[closed] == "closed").all()
    assert (tickets.status[~closed] != "closed").all()
    assert (closed_at[closed] >= received[closed]).all()
    assert not (dispatched < received).any()
    assert not (responded < dispatched).any()
    assert not (closed_at < responded).any()
    assert not (resolved_at > closed_at).any()
    assert (tickets.status[responded.isna()] == "open").all()
    assert (tickets.resolved[closed] != "").all() and (tickets.resolved[~closed] == "").all()
    assert (tickets.satisfaction[~closed] == "").all()

    kinds = tickets.unit.map(lambda c: units[c]["kind"])
    assert 0.55 <= (kinds == "street").mean() <= 0.85
    assert kinds.isin(["street", "department", "company"]).all()
    # A street's tickets name that street and its district.
    streets = tickets[kinds == "street"]
    assert (streets.street == streets.unit.map(lambda c: units[c]["name"])).all()
    parent_names = streets.unit.map(lambda c: units[units[c]["parent"]]["name"])
    assert (streets.district == parent_names).all()
    assert (tickets.street != "").all() and (tickets.community != "").all()

    problems = load_config(city.config_dir).problems.problems
    problem_categories = {c for p in problems for c in p.ticket_categories}
    assert 0.25 <= tickets.category.isin(problem_categories).mean() <= 0.55
    for sample in HTML_SAMPLES[:5]:
        assert tickets.content.str.contains(sample, regex=False).sum() == 1


def test_problem_trends_follow_the_monthly_bulletin() -> None:
    spec = DemoSpec()
    city = build_city(spec)
    coop = cooperating_units(spec)
    urgency = yaml.safe_load((BASE_CONFIG / "urgency.yaml").read_text(encoding="utf-8"))
    model = ticket_model(spec, city, coop, urgency)
    rates = {}
    for p in PROBLEMS:
        first = model.categories.index(p.ticket_categories[0][0])
        rates[p.code] = model.monthly_rate[first]
    falling = [r for r in rates.values() if r < 0]
    assert len(falling) == 15
    assert sum(r < -0.10 for r in falling) == 7
    assert all(-0.15 <= r <= 0.10 for r in rates.values())


def test_data_files_load_and_agree() -> None:
    """The tables read from duban/demo/data/ and refer to each other consistently."""
    assert tables.CITY_NAME == "市民热线服务中心"
    assert len(tables.DISTRICTS) == 17
    assert all(d.streets and d.population > 0 for d in tables.DISTRICTS)
    assert {d.kind for d in tables.DEPARTMENTS} == {"department", "company"}
    codes = [d.code for d in tables.DEPARTMENTS]
    assert len(codes) == len(set(codes))
    assert len(PROBLEMS) == 27 and len({p.code for p in PROBLEMS}) == 27
    named = {u for p in PROBLEMS for u in (p.lead, *p.cooperating)}
    named |= set(tables.COOPERATING_RESERVE) | set(tables.DUTIES)
    named |= {u for g in tables.GENERAL_CATEGORIES for u in g.departments}
    assert named <= set(codes)
    assert {p.approach for p in PROBLEMS} <= set(tables.APPROACH_CN)
    categories = [g.name for g in tables.GENERAL_CATEGORIES]
    categories += [c for p in PROBLEMS for c, _ in p.ticket_categories]
    assert set(categories) == set(tables.CATEGORY_TEXT)
    assert set(tables.PROBLEM_CATEGORY_DISPATCH) | tables.RURAL_CATEGORIES <= set(categories)
    for texts in tables.CATEGORY_TEXT.values():
        for text, low, high in texts:
            assert ("{n}" in text) == (0 < low <= high), text
    assert len(tables.HOURLY_WEIGHTS) == 24
    assert set(tables.URGENCY_WEIGHTS) == {1, 2, 3, 4}
    assert all(p.isdigit() and len(p) == 3 for p in tables.MOBILE_PREFIXES)
    assert all(a.isdigit() and len(a) == 6 for a in tables.ID_AREAS)
    assert len(tables.HTML_SAMPLES) == 6


def test_data_files_are_package_data() -> None:
    """A non-editable install carries every data file (pyproject's package-data globs)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["duban"]
    data = REPO / "duban" / "demo" / "data"
    files = sorted(p.relative_to(REPO / "duban").as_posix() for p in data.iterdir())
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, g) for g in globs), name


def test_a_small_city_is_the_same_on_two_runs(tmp_path: Path, plan_calls: PlanCalls) -> None:
    """Every generated file, byte for byte (the workbook but for openpyxl's timestamps)."""
    spec = DemoSpec(seed=99, days=3, daily_volume=40)
    runs = [generate_city(spec, tmp_path / name, BASE_CONFIG) for name in ("one", "two")]
    names = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert names == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*"))
    for name in names:
        one, two = tmp_path / "one" / name, tmp_path / "two" / name
        if one.is_dir() or name.suffix == ".xlsx":
            continue
        assert one.read_bytes() == two.read_bytes(), name
    if runs[0].plan_workbook.read_bytes() != b"stand-in":
        with (
            zipfile.ZipFile(runs[0].plan_workbook) as a,
            zipfile.ZipFile(runs[1].plan_workbook) as b,
        ):
            members = [m for m in a.namelist() if m != "docProps/core.xml"]
            assert members == [m for m in b.namelist() if m != "docProps/core.xml"]
            for member in members:
                assert a.read(member) == b.read(member), member
    assert runs[0] == replace(
        runs[1],
        config_dir=runs[0].config_dir,
        plan_workbook=runs[0].plan_workbook,
        tickets_csv=runs[0].tickets_csv,
    )
