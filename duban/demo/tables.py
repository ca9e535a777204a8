"""The demo city's static tables, read once from the data files in duban/demo/data/.

Edit the city there (YAML and CSV, UTF-8); each file says what its table means:

- ``districts.yaml``: the hotline office, the districts and their streets and townships;
- ``departments.csv``: the city departments and public-service companies;
- ``problems.yaml``: the 27 problems and the units that top up their cooperating lists;
- ``general_categories.csv``, ``problem_categories.csv``, ``calibration.yaml``: how the
  tickets spread over categories, units, hours and urgency levels;
- ``complaints.yaml``: what callers say; ``names.yaml``: the words addresses are made of;
- ``plan.yaml``: the texts of the plan workbook's tasks, policies and duties.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import yaml


def _text(name: str) -> str:
    return (resources.files("duban.demo") / "data" / name).read_text(encoding="utf-8")


def _yaml(name: str) -> Any:
    return yaml.safe_load(_text(name))


def _csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(name))))


def _flag(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(f"expected true or false, got {value!r}")
    return value == "true"


@dataclass(frozen=True)
class District:
    name: str
    population: int  # residents, in 10,000s
    core: bool  # a core district: its streets have hutongs
    streets: list[str]  # streets and townships


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    kind: str  # department or company


@dataclass(frozen=True)
class ProblemDef:
    code: str
    name: str
    category: str
    approach: str
    lead: str
    cooperating: tuple[str, ...]
    ticket_categories: tuple[tuple[str, float], ...]  # (ticket category, share of the problem)
    focus_month: int
    weight: float  # relative ticket volume
    topic: str  # for policy titles
    obj: str  # what the tasks work on
    measures: tuple[str, str]


@dataclass(frozen=True)
class GeneralCategory:
    name: str
    weight: float
    department_share: float  # share dispatched to departments
    departments: list[str]
    located: bool  # its tickets name the place


# ---------------------------------------------------------------- units

_districts = _yaml("districts.yaml")
CITY_NAME: str = _districts["city"]
DISTRICTS: list[District] = [
    District(d["name"], int(d["population"]), bool(d["core"]), [str(s) for s in d["streets"]])
    for d in _districts["districts"]
]
DEPARTMENTS: list[Department] = [
    Department(r["code"], r["name"], r["kind"]) for r in _csv("departments.csv")
]

# ---------------------------------------------------------------- problems

_problems = _yaml("problems.yaml")
PROBLEMS: list[ProblemDef] = [
    ProblemDef(
        code=p["code"],
        name=p["name"],
        category=p["category"],
        approach=p["approach"],
        lead=p["lead"],
        cooperating=tuple(p["cooperating"]),
        ticket_categories=tuple((c, float(s)) for c, s in p["ticket_categories"].items()),
        focus_month=int(p["focus_month"]),
        weight=float(p["weight"]),
        topic=p["topic"],
        obj=p["object"],
        measures=(p["measures"][0], p["measures"][1]),
    )
    for p in _problems["problems"]
]
COOPERATING_RESERVE: list[str] = list(_problems["cooperating_reserve"])
COOPERATING_TOTAL: int = int(_problems["cooperating_total"])

# ---------------------------------------------------------------- ticket categories

_calibration = _yaml("calibration.yaml")
GENERAL_CATEGORIES: list[GeneralCategory] = [
    GeneralCategory(
        r["category"],
        float(r["weight"]),
        float(r["department_share"]),
        r["departments"].split(),
        _flag(r["located"]),
    )
    for r in _csv("general_categories.csv")
]
GENERAL_SHARE: float = float(_calibration["general_share"])
DEPARTMENT_SHARE: float = float(_calibration["department_share"])
RURAL_CATEGORIES: frozenset[str] = frozenset(_calibration["rural_categories"])
# Problem categories: (share dispatched to departments, located), the default where not listed.
PROBLEM_CATEGORY_DISPATCH: dict[str, tuple[float, bool]] = {
    r["category"]: (float(r["department_share"]), _flag(r["located"]))
    for r in _csv("problem_categories.csv")
}
PROBLEM_CATEGORY_DEFAULT: tuple[float, bool] = (
    float(_calibration["problem_category_default"]["department_share"]),
    bool(_calibration["problem_category_default"]["located"]),
)
HOURLY_WEIGHTS: np.ndarray = np.array([float(w) for w in _calibration["hourly_weights"]])
URGENCY_WEIGHTS: dict[int, float] = {
    int(k): float(v) for k, v in _calibration["urgency_weights"].items()
}
WEEKEND_FACTOR: float = float(_calibration["weekend_factor"])  # non-working against working day

# ---------------------------------------------------------------- what callers say, and where

_complaints = _yaml("complaints.yaml")
# Complaint texts per category; "{n}" takes a number from the (low, high) range.
CATEGORY_TEXT: dict[str, list[tuple[str, int, int]]] = {
    category: [
        (text, 0, 0) if isinstance(text, str) else (str(text[0]), int(text[1]), int(text[2]))
        for text in texts
    ]
    for category, texts in _complaints["texts"].items()
}
LEAD_INS: list[str] = list(_complaints["lead_ins"])
ENDINGS: list[str] = list(_complaints["endings"])
HTML_SAMPLES: list[str] = list(_complaints["html_samples"])

_names = _yaml("names.yaml")
COMMUNITY_WORDS: list[str] = list(_names["community_words"])
VILLAGE_SURNAMES: list[str] = list(_names["village_surnames"])
VILLAGE_SUFFIXES: list[str] = list(_names["village_suffixes"])
ROAD_STEMS: list[str] = list(_names["road_stems"])
ROAD_SUFFIXES: list[str] = list(_names["road_suffixes"])
HUTONG_STEMS: list[str] = list(_names["hutong_stems"])
MOBILE_PREFIXES: list[str] = [str(p) for p in _names["mobile_prefixes"]]
ID_AREAS: list[str] = [str(a) for a in _names["id_areas"]]

# ---------------------------------------------------------------- the plan workbook's texts

_plan = _yaml("plan.yaml")
PLAN_TASK_TOTAL: int = int(_plan["task_total"])
POLICY_TOTAL: int = int(_plan["policy_total"])
PLAN_TEXT: str = _plan["plan_text"]
APPROACH_CN: dict[str, str] = dict(_plan["approach_names"])
TASKS_FIRST: list[str] = list(_plan["tasks_first"])
TASKS_MIDDLE: list[str] = list(_plan["tasks_middle"])
TASKS_LAST: list[str] = list(_plan["tasks_last"])
POLICY_TITLES: list[str] = list(_plan["policy_titles"])
EVIDENCE: list[str] = list(_plan["evidence_done"])
EVIDENCE_IN_PROGRESS: str = _plan["evidence_in_progress"]
DUTIES: dict[str, str] = dict(_plan["duties"])
DUTY_COMPANY: str = _plan["duty_company"]
DUTY_OTHER: str = _plan["duty_other"]
