"""The demo city's units (the office, districts, streets, departments) and problems."""

from __future__ import annotations

from typing import Any

import numpy as np

from duban.demo.spec import (
    COMMUNITIES_PER_STREET,
    ROADS_PER_STREET,
    STREAM_PROBLEMS,
    STREAM_UNITS,
    City,
    DemoSpec,
    rng_for,
)
from duban.demo.tables import (
    APPROACH_CN,
    CITY_NAME,
    COMMUNITY_WORDS,
    COOPERATING_RESERVE,
    COOPERATING_TOTAL,
    DEPARTMENTS,
    DISTRICTS,
    HUTONG_STEMS,
    PLAN_TEXT,
    PROBLEMS,
    ROAD_STEMS,
    ROAD_SUFFIXES,
    VILLAGE_SUFFIXES,
    VILLAGE_SURNAMES,
    ProblemDef,
)


def _unit(code: str, name: str, kind: str, parent: str, domain: str) -> dict[str, Any]:
    """A unit of units.yaml below the city office; it receives mail at code@domain."""
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "parent": parent,
        "emails": [f"{code}@{domain}"],
    }


def build_city(spec: DemoSpec) -> City:
    """The city's units (units.yaml) and what the tickets draw their addresses from."""
    rng = rng_for(spec, STREAM_UNITS)
    email = spec.mail_domain
    units: list[dict[str, Any]] = [
        {"code": "city", "name": CITY_NAME, "kind": "city", "emails": [f"city@{email}"]}
    ]
    codes, names, district_of, weights, rural = [], [], [], [], []
    seen_names: set[str] = set()
    for d, district in enumerate(DISTRICTS):
        dname, streets = district.name, district.streets
        dcode = f"d{d + 1:02d}"
        units.append(_unit(dcode, dname, "district", "city", email))
        for s, sname in enumerate(streets):
            if sname in seen_names:
                raise AssertionError(f"duplicate street name {sname}")
            seen_names.add(sname)
            scode = f"{dcode}-s{s + 1:03d}"
            units.append(_unit(scode, sname, "street", dcode, email))
            township = sname.endswith(("镇", "乡"))
            codes.append(scode)
            names.append(sname)
            district_of.append(d)
            rural.append(township)
            weights.append(district.population / len(streets) * (0.7 if township else 1.3))
    for dept in DEPARTMENTS:
        units.append(_unit(dept.code, dept.name, dept.kind, "city", email))

    n_streets = len(codes)
    weight = np.array(weights) * rng.lognormal(0.0, 0.45, n_streets)
    weight /= weight.sum()

    words = np.array(COMMUNITY_WORDS, dtype=object)
    villages_all = np.array(
        [s + x + "村" for s in VILLAGE_SURNAMES for x in VILLAGE_SUFFIXES], dtype=object
    )
    communities = np.empty((n_streets, COMMUNITIES_PER_STREET), dtype=object)
    is_village = np.zeros((n_streets, COMMUNITIES_PER_STREET), dtype=bool)
    roads = np.empty((n_streets, ROADS_PER_STREET), dtype=object)
    for s in range(n_streets):
        picked = rng.choice(words, COMMUNITIES_PER_STREET, replace=False)
        communities[s] = [w + "社区" for w in picked]
        if rural[s]:
            half = COMMUNITIES_PER_STREET // 2
            communities[s, half:] = rng.choice(villages_all, COMMUNITIES_PER_STREET - half, False)
            is_village[s, half:] = True
        core = DISTRICTS[district_of[s]].core
        stems = rng.choice(np.array(ROAD_STEMS, dtype=object), ROADS_PER_STREET, replace=False)
        suffixes = rng.choice(np.array(ROAD_SUFFIXES, dtype=object), ROADS_PER_STREET)
        roads[s] = [a + b for a, b in zip(stems, suffixes, strict=True)]
        if core:
            hutongs = rng.choice(np.array(HUTONG_STEMS, dtype=object), 2, replace=False)
            roads[s, :2] = [h + "胡同" for h in hutongs]

    dept_codes = [d.code for d in DEPARTMENTS]
    badness = rng.lognormal(0.0, 0.45, n_streets + len(dept_codes))
    badness /= badness.mean()
    return City(
        units=units,
        district_names=[d.name for d in DISTRICTS],
        street_codes=np.array(codes, dtype=object),
        street_names=np.array(names, dtype=object),
        street_district=np.array(district_of),
        street_weight=weight,
        street_rural=np.array(rural),
        communities=communities,
        villages=is_village,
        roads=roads,
        dept_codes=dept_codes,
        dept_names={d.code: d.name for d in DEPARTMENTS},
        badness=badness,
    )


# ---------------------------------------------------------------- problems


def cooperating_units(spec: DemoSpec) -> dict[str, list[str]]:
    """Each problem's cooperating units: the curated lists topped up to 54 distinct units."""
    coop = {p.code: list(p.cooperating) for p in PROBLEMS}
    union = {c for p in PROBLEMS for c in p.cooperating}
    rng = rng_for(spec, STREAM_PROBLEMS)
    order = rng.permutation(len(PROBLEMS))
    reserve = [c for c in COOPERATING_RESERVE if c not in union]
    i = 0
    while len(union) < COOPERATING_TOTAL:
        unit = reserve.pop(0)
        problem = PROBLEMS[int(order[i % len(PROBLEMS)])]
        i += 1
        if unit == problem.lead:
            reserve.append(unit)
            continue
        coop[problem.code].append(unit)
        union.add(unit)
    if len(union) != COOPERATING_TOTAL:
        raise AssertionError(f"{len(union)} cooperating units, expected {COOPERATING_TOTAL}")
    return coop


def plan_text(p: ProblemDef, lead_name: str, n_coop: int) -> str:
    """The problem's plan text (plan.yaml), as problems.yaml and the workbook give it."""
    return PLAN_TEXT.format(
        approach=APPROACH_CN[p.approach],
        name=p.name,
        measure1=p.measures[0],
        measure2=p.measures[1],
        lead=lead_name,
        cooperating=n_coop,
    )


def problems_yaml(spec: DemoSpec, city: City, coop: dict[str, list[str]]) -> dict[str, Any]:
    """The content of problems.yaml: the year and each problem with its cooperating units."""
    problems = []
    for p in PROBLEMS:
        problems.append(
            {
                "code": p.code,
                "name": p.name,
                "category": p.category,
                "approach": p.approach,
                "lead": p.lead,
                "cooperating": coop[p.code],
                "ticket_categories": [c for c, _ in p.ticket_categories],
                "focus_month": p.focus_month,
                "plan": plan_text(p, city.dept_names[p.lead], len(coop[p.code])),
            }
        )
    return {"year": spec.year, "problems": problems}
