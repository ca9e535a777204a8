"""The plan workbook's lists (tasks, duties, policies, plans) of the demo city, as of the
demo's "today" (``spec.start + spec.days``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from duban.demo.spec import STREAM_PLAN, City, DemoSpec, rng_for
from duban.demo.tables import (
    DEPARTMENTS,
    DUTIES,
    DUTY_COMPANY,
    DUTY_OTHER,
    EVIDENCE,
    EVIDENCE_IN_PROGRESS,
    PLAN_TASK_TOTAL,
    POLICY_TITLES,
    POLICY_TOTAL,
    PROBLEMS,
    TASKS_FIRST,
    TASKS_LAST,
    TASKS_MIDDLE,
)
from duban.demo.units import plan_text


def _month(year: int, ordinal: int) -> date:
    """The first day of month `ordinal` (1 = January of `year`; may run past December)."""
    y, m = divmod(ordinal - 1, 12)
    return date(year + y, m + 1, 1)


def _month_end(year: int, ordinal: int) -> date:
    return _month(year, ordinal + 1) - timedelta(days=1)


def _random_day(rng: np.random.Generator, first: date, last: date) -> date:
    if last <= first:
        return first
    return first + timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def _counts(rng: np.random.Generator, n: int, total: int, spread: int) -> list[int]:
    """`n` counts near total/n with +-spread, adjusted to sum exactly to `total`."""
    base = total // n
    counts = [int(x) for x in base + rng.integers(-spread, spread + 1, n)]
    i = 0
    while sum(counts) != total:
        step = 1 if sum(counts) < total else -1
        counts[i % n] += step
        i += 1
    return counts


def build_plan(
    spec: DemoSpec, city: City, coop: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = rng_for(spec, STREAM_PLAN)
    today = spec.start + timedelta(days=spec.days)
    year = spec.year
    now_month = (today.year - year) * 12 + today.month  # ordinal of today's month in `year`
    yesterday = today - timedelta(days=1)
    dept_index = {c: i for i, c in enumerate(city.dept_codes)}
    n_streets = len(city.street_codes)

    def lag_chance(owner: str) -> float:
        bad = float(city.badness[n_streets + dept_index[owner]])
        return float(np.clip(0.10 * bad, 0.03, 0.4))

    tasks: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    duties: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    task_counts = _counts(rng, len(PROBLEMS), PLAN_TASK_TOTAL, 4)
    policy_counts = _counts(rng, len(PROBLEMS), POLICY_TOTAL, 0)
    for p, n_tasks, n_policies in zip(PROBLEMS, task_counts, policy_counts, strict=True):
        lead_name = city.dept_names[p.lead]
        fill = {"name": p.name, "obj": p.obj, "topic": p.topic}
        plans.append({"problem": p.code, "plan": plan_text(p, lead_name, len(coop[p.code]))})
        n_middle = n_tasks - len(TASKS_FIRST) - len(TASKS_LAST)
        titles = [t.format(**fill) for t in TASKS_FIRST]
        titles += [
            TASKS_MIDDLE[i % len(TASKS_MIDDLE)].format(k=i // len(TASKS_MIDDLE) + 1, **fill)
            for i in range(n_middle)
        ]
        titles += [t.format(**fill) for t in TASKS_LAST]
        for i, title in enumerate(titles):
            due = 1 + (i * 12) // n_tasks
            start = max(1, due - int(rng.integers(0, 3)))
            middle = len(TASKS_FIRST) <= i < n_tasks - len(TASKS_LAST)
            owner = p.lead
            if middle and coop[p.code] and rng.random() < 0.6:
                owner = coop[p.code][int(rng.integers(0, len(coop[p.code])))]
            status, progress, done_on = _progress(
                rng, start, due, now_month, year, today, yesterday, lag_chance(owner)
            )
            evidence = ""
            if status == "done":
                evidence = EVIDENCE[int(rng.integers(0, len(EVIDENCE)))].format(title=title)
            elif status == "in_progress" and rng.random() < 0.3:
                evidence = EVIDENCE_IN_PROGRESS
            tasks.append(
                {
                    "problem": p.code,
                    "code": f"{p.code}-T{i + 1:02d}",
                    "title": title,
                    "owner": owner,
                    "start_month": f"{_month(year, start):%Y-%m}",
                    "due_month": f"{_month(year, due):%Y-%m}",
                    "status": status,
                    "progress": progress,
                    "completed_on": f"{done_on:%Y-%m-%d}" if done_on else "",
                    "evidence": evidence,
                }
            )
        for j, unit in enumerate(coop[p.code]):
            duty = DUTIES.get(unit)
            if duty is None and unit in dept_index and _kind(unit) == "company":
                duty = DUTY_COMPANY
            duty = duty or DUTY_OTHER
            duties.append(
                {
                    "problem": p.code,
                    "code": f"{p.code}-R{j + 1:02d}",
                    "unit": unit,
                    "duty": duty.format(name=p.name, lead=lead_name),
                }
            )
        for j, t in enumerate(rng.permutation(len(POLICY_TITLES))[:n_policies]):
            owner = p.lead
            if coop[p.code] and rng.random() < 0.2:
                owner = coop[p.code][int(rng.integers(0, len(coop[p.code])))]
            due = int(rng.integers(3, 13))
            status, _, issued = _progress(
                rng, max(1, due - 3), due, now_month, year, today, yesterday, lag_chance(owner)
            )
            number = int(rng.integers(1, 60))
            policies.append(
                {
                    "problem": p.code,
                    "code": f"{p.code}-Z{j + 1:02d}",
                    "title": POLICY_TITLES[int(t)].format(topic=p.topic),
                    "owner": owner,
                    "due_month": f"{_month(year, due):%Y-%m}",
                    "status": status,
                    "issued_on": f"{issued:%Y-%m-%d}" if issued else "",
                    "evidence": f"{city.dept_names[owner]}〔{year}〕{number}号" if issued else "",
                }
            )
    return tasks, duties, policies, plans


def _kind(code: str) -> str:
    for dept in DEPARTMENTS:
        if dept.code == code:
            return dept.kind
    return "department"


def _progress(
    rng: np.random.Generator,
    start: int,
    due: int,
    now_month: int,
    year: int,
    today: date,
    yesterday: date,
    lag: float,
) -> tuple[str, float, date | None]:
    """Status, progress and completion day of an item as of `today`."""
    first_day = _month(year, start)
    if first_day > yesterday:  # not started yet
        return "planned", 0.0, None
    if due < now_month:  # past its due month: mostly done, some lagging
        if rng.random() < lag:
            if rng.random() < 0.15:
                return "planned", 0.0, None
            return "in_progress", round(float(rng.uniform(0.3, 0.9)), 2), None
        last = _month_end(year, due)
        if rng.random() < 0.1:  # done, but late
            last = yesterday
        return "done", 1.0, _random_day(rng, first_day, min(last, yesterday))
    if due == now_month:
        if today.day > 1 and rng.random() < 0.4:
            return "done", 1.0, _random_day(rng, max(first_day, _month(year, due)), yesterday)
        return "in_progress", round(float(rng.uniform(0.4, 0.9)), 2), None
    # due later: in progress, a few done early
    if rng.random() < 0.05:
        return "done", 1.0, _random_day(rng, first_day, yesterday)
    elapsed = (now_month - start + 0.5) / (due - start + 1)
    return "in_progress", round(float(np.clip(elapsed * rng.uniform(0.6, 1.2), 0.05, 0.9)), 2), None
