"""The demo city's ticket export: the working-day calendar, the ticket model (categories,
units, texts) and each day's tickets as strings per ticket field."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from duban.demo.spec import (
    COMMUNITIES_PER_STREET,
    ROADS_PER_STREET,
    STREAM_DAY,
    STREAM_SPELLING,
    STREAM_TRENDS,
    City,
    DemoSpec,
    rng_for,
)
from duban.demo.tables import (
    CATEGORY_TEXT,
    DEPARTMENT_SHARE,
    ENDINGS,
    GENERAL_CATEGORIES,
    GENERAL_SHARE,
    HOURLY_WEIGHTS,
    HTML_SAMPLES,
    ID_AREAS,
    LEAD_INS,
    MOBILE_PREFIXES,
    PROBLEM_CATEGORY_DEFAULT,
    PROBLEM_CATEGORY_DISPATCH,
    PROBLEMS,
    RURAL_CATEGORIES,
    URGENCY_WEIGHTS,
    WEEKEND_FACTOR,
)

DAY = 86_400


def working_days(first: date, last: date, base_config_dir: Path) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of the working days in [first, last].

    China's official calendar (chinese-calendar) where it knows the year, else Monday to
    Friday; then the overrides of the base config's calendar.yaml, like Duban's own calendar.
    """
    holidays: set[date] = set()
    workdays: set[date] = set()
    config_years: set[int] = set()
    path = base_config_dir / "calendar.yaml"
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        holidays = {_as_date(d) for d in data.get("holidays") or []}
        workdays = {_as_date(d) for d in data.get("workdays") or []}
        config_years = {int(y) for y in data.get("years") or []}
    try:
        import chinese_calendar
    except ImportError:  # pragma: no cover - a declared dependency
        chinese_calendar = None
    out = []
    day = first
    while day <= last:
        working = day.weekday() < 5
        if chinese_calendar is not None and day.year not in config_years:
            with contextlib.suppress(NotImplementedError):  # a year it does not know
                working = bool(chinese_calendar.is_workday(day))
        if day in holidays:
            working = False
        if day in workdays:
            working = True
        if working:
            out.append((day - date(1970, 1, 1)).days)
        day += timedelta(days=1)
    return np.array(out, dtype=np.int64)


def ticket_workdays(spec: DemoSpec, base_config_dir: Path) -> np.ndarray:
    """The working days the tickets of `spec` may need: a month before its start to four
    months after its last day."""
    first = spec.start - timedelta(days=31)
    return working_days(first, spec.start + timedelta(days=spec.days + 120), base_config_dir)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# ---------------------------------------------------------------- tickets


@dataclass
class TicketModel:
    categories: list[str]
    share: np.ndarray  # (C,) base share of all tickets
    monthly_rate: np.ndarray  # (C,) change of daily volume per month
    p_dept: np.ndarray  # (C,)
    located: np.ndarray  # (C,) bool
    rural: np.ndarray  # (C,) bool
    dept_choice: np.ndarray  # (C, K) int index into departments
    dept_cumw: np.ndarray  # (C, K) cumulative weights
    text_pre: np.ndarray  # (C, M) object
    text_post: np.ndarray  # (C, M) object
    text_lo: np.ndarray  # (C, M) int; 0 = no number
    text_hi: np.ndarray  # (C, M) int
    text_count: np.ndarray  # (C,) int
    response_hours: dict[int, float]
    working_days: dict[int, int]


def ticket_model(
    spec: DemoSpec, city: City, coop: dict[str, list[str]], urgency: dict[str, Any]
) -> TicketModel:
    rng = rng_for(spec, STREAM_TRENDS)
    dept_index = {c: i for i, c in enumerate(city.dept_codes)}
    cats: list[str] = []
    share: list[float] = []
    rate: list[float] = []
    p_dept: list[float] = []
    located: list[bool] = []
    depts: list[list[str]] = []

    general_total = sum(g.weight for g in GENERAL_CATEGORIES)
    general_rates = rng.uniform(-0.02, 0.03, len(GENERAL_CATEGORIES))
    for g, r in zip(GENERAL_CATEGORIES, general_rates, strict=True):
        cats.append(g.name)
        share.append(GENERAL_SHARE * g.weight / general_total)
        rate.append(float(r))
        p_dept.append(g.department_share)
        located.append(g.located)
        depts.append(g.departments)

    # Month-on-month change of each problem's tickets, as in the domain's May 2021 bulletin:
    # 7 fall by more than 10 %, 8 more by 3-10 %, 6 stay about flat, 6 rise.
    order = rng.permutation(len(PROBLEMS))
    problem_rate = np.empty(len(PROBLEMS))
    bands = [(7, -0.15, -0.11), (8, -0.09, -0.04), (6, 0.0, 0.03), (6, 0.04, 0.10)]
    i = 0
    for count, low, high in bands:
        for idx in order[i : i + count]:
            problem_rate[idx] = rng.uniform(low, high)
        i += count
    problem_total = sum(p.weight for p in PROBLEMS)
    for p, r in zip(PROBLEMS, problem_rate, strict=True):
        for name, part in p.ticket_categories:
            cats.append(name)
            share.append((1 - GENERAL_SHARE) * p.weight / problem_total * part)
            rate.append(float(r))
            pd_, loc = PROBLEM_CATEGORY_DISPATCH.get(name, PROBLEM_CATEGORY_DEFAULT)
            p_dept.append(pd_)
            located.append(loc)
            depts.append([p.lead, *coop[p.code]])

    share_a = np.array(share)
    p_dept_a = np.array(p_dept)
    # Scale so that DEPARTMENT_SHARE of all tickets go to departments and companies.
    p_dept_a = np.clip(p_dept_a * DEPARTMENT_SHARE / float(share_a @ p_dept_a), 0.0, 0.97)

    width = max(len(d) for d in depts)
    choice = np.zeros((len(cats), width), dtype=np.int64)
    cumw = np.ones((len(cats), width))
    for c, units in enumerate(depts):
        pull = 1.0 / np.arange(1, len(units) + 1)  # the first listed unit takes the most
        pull[0] *= 2
        choice[c, : len(units)] = [dept_index[u] for u in units]
        cumw[c, : len(units)] = np.cumsum(pull) / pull.sum()
    cumw[:, -1] = 1.0

    m = max(len(CATEGORY_TEXT[c]) for c in cats)
    pre = np.full((len(cats), m), "", dtype=object)
    post = np.full((len(cats), m), "", dtype=object)
    lo = np.zeros((len(cats), m), dtype=np.int64)
    hi = np.zeros((len(cats), m), dtype=np.int64)
    n_texts = np.zeros(len(cats), dtype=np.int64)
    for c, name in enumerate(cats):
        texts = CATEGORY_TEXT[name]
        n_texts[c] = len(texts)
        for j, (text, low, high) in enumerate(texts):
            before, _, after = text.partition("{n}")
            pre[c, j], post[c, j] = before, after
            if "{n}" in text:
                lo[c, j], hi[c, j] = low, high

    return TicketModel(
        categories=cats,
        share=share_a / share_a.sum(),
        monthly_rate=np.array(rate),
        p_dept=p_dept_a,
        located=np.array(located),
        rural=np.array([c in RURAL_CATEGORIES for c in cats]),
        dept_choice=choice,
        dept_cumw=cumw,
        text_pre=pre,
        text_post=post,
        text_lo=lo,
        text_hi=hi,
        text_count=n_texts,
        response_hours={
            int(lv["level"]): float(lv.get("response_hours", 24)) for lv in urgency["levels"]
        },
        working_days={int(lv["level"]): int(lv["working_days"]) for lv in urgency["levels"]},
    )


def _times(seconds: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Times as 'YYYY-MM-DD HH:MM:SS' where valid, '' elsewhere."""
    text = np.datetime_as_string(np.where(valid, seconds, 0).astype("datetime64[s]"), unit="s")
    text = np.char.replace(text, "T", " ").astype(object)
    text[~valid] = ""
    return text


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width).astype(object)


def _id_number(rng: np.random.Generator) -> str:
    """A made-up 18-digit resident ID number with a valid check digit."""
    area = ID_AREAS[int(rng.integers(0, len(ID_AREAS)))]
    birth = date(1950, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 50)))
    body = f"{area}{birth:%Y%m%d}{int(rng.integers(0, 1000)):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(ch) * w for ch, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def _pick(cumw: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the bucket each uniform draw falls in, row by row of cumulative weights."""
    return np.minimum((u[:, None] > cumw).sum(axis=1), cumw.shape[1] - 1)


RESPELLED_SHARE = 0.15
_WIDE_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def respelled(
    spec: DemoSpec, day_index: int, district: np.ndarray, street: np.ndarray, address: np.ndarray
) -> np.ndarray:
    """`address` with a share of the addresses spelled as exports do: with the district and
    street in front, full-width digits, a space before the number, 号院 for 号 — the same
    place all the same (rules/places.py). Its own draws: every other figure stays the same.
    (Different places with the same text need no planting: villages and road names are drawn
    from pools shared by every district, so 高家庄村1号 is in several.)"""
    rng = rng_for(spec, STREAM_SPELLING, day_index)
    n = len(address)
    which = np.where(rng.random(n) < RESPELLED_SHARE, rng.integers(0, 4, n), -1)
    out = address.copy()
    for i in np.flatnonzero(which >= 0).tolist():
        text = str(address[i])
        kind = int(which[i])
        if kind == 0:
            out[i] = f"{district[i]}{street[i]}{text}"
        elif kind == 1:
            out[i] = text.translate(_WIDE_DIGITS)
        elif kind == 2:
            out[i] = re.sub(r"(?<=\D)(?=\d)", " ", text, count=1)
        elif text.endswith("号") and not text.endswith("号楼"):
            out[i] = text + "院"
        else:
            out[i] = text + "。"
    return out


def day_tickets(
    spec: DemoSpec,
    city: City,
    model: TicketModel,
    day_index: int,
    n: int,
    p_category: np.ndarray,
    workdays: np.ndarray,
    id_width: int,
) -> pd.DataFrame:
    """The tickets received on day `day_index` of the period, as strings per ticket field."""
    rng = rng_for(spec, STREAM_DAY, day_index)
    day = spec.start + timedelta(days=day_index)
    day_no = (day - date(1970, 1, 1)).days
    now = ((spec.start - date(1970, 1, 1)).days + spec.days) * DAY  # the demo's "today"
    n_streets = len(city.street_codes)

    # Received: by the hour profile of the hotline, in time order.
    hours = rng.choice(24, n, p=HOURLY_WEIGHTS / HOURLY_WEIGHTS.sum())
    tod = np.sort(hours * 3600 + rng.integers(0, 3600, n))
    received = day_no * DAY + tod

    cat = rng.choice(len(model.categories), n, p=p_category)
    street_any = rng.choice(n_streets, n, p=city.street_weight)
    rural_w = city.street_weight * city.street_rural
    street_rural = rng.choice(n_streets, n, p=rural_w / rural_w.sum())
    street = np.where(model.rural[cat], street_rural, street_any)
    to_dept = rng.random(n) < model.p_dept[cat]
    dept = model.dept_choice[cat, _pick(model.dept_cumw[cat], rng.random(n))]
    unit_idx = np.where(to_dept, n_streets + dept, street)
    bad = city.badness[unit_idx]

    levels = np.array(list(URGENCY_WEIGHTS))
    weights = np.array(list(URGENCY_WEIGHTS.values()))
    urgency = rng.choice(levels, n, p=weights / weights.sum())

    # Dispatch a few minutes after receipt; a reassigned ticket takes longer.
    reassigned = np.select([rng.random(n) < 0.005, rng.random(n) < 0.035], [2, 1], 0)
    dispatch_delay = np.clip(rng.lognormal(np.log(360), 0.6, n), 60, 3600).astype(np.int64)
    dispatch_delay += reassigned * rng.integers(600, 7200, n)
    dispatched = received + dispatch_delay

    # First response: within the level's response hours for ~90 % (worse for bad units).
    resp_limit = np.array([model.response_hours[int(u)] for u in levels])[urgency - 1] * 3600
    resp_late = rng.random(n) < np.clip(0.10 * bad, 0.01, 0.5)
    resp_frac = np.where(resp_late, rng.uniform(1.05, 2.5, n), rng.uniform(0.03, 0.9, n))
    first_response = dispatched + (resp_frac * resp_limit).astype(np.int64)

    # Closure on the working-day calendar: on time for ~85 %, some late, a few stuck.
    limit = np.array([model.working_days[int(u)] for u in levels])[urgency - 1]
    late = rng.random(n) < np.clip(0.15 * bad, 0.02, 0.6)
    k = np.where(
        late,
        limit + rng.geometric(0.35, n),
        np.floor(rng.random(n) * (limit + 1)).astype(np.int64),
    )
    k = np.where((k == 0) & (tod >= 15 * 3600), 1, k)
    position = np.searchsorted(workdays, day_no, side="right")  # first working day after
    close_day = np.where(k == 0, day_no, workdays[np.minimum(position + k - 1, len(workdays) - 1)])
    morning, evening = int(8.5 * 3600), int(18.5 * 3600)
    close_tod = np.where(
        k == 0,
        tod + rng.integers(3600, 5 * 3600, n),
        morning + (rng.random(n) * (evening - morning)).astype(np.int64),
    )
    closed = close_day * DAY + close_tod
    closed = np.maximum(closed, dispatched + 3600)
    first_response = np.where(
        first_response >= closed,
        dispatched + ((closed - dispatched) * rng.uniform(0.2, 0.8, n)).astype(np.int64),
        first_response,
    )
    stuck = rng.random(n) < np.clip(0.008 * bad, 0.0, 0.05)
    is_closed = ~stuck & (closed < now)

    resolved = is_closed & (rng.random(n) < np.clip(1 - 0.2 * bad, 0.3, 0.98))
    resolved_at = first_response + ((closed - first_response) * rng.uniform(0.7, 1.0, n)).astype(
        np.int64
    )

    surveyed = is_closed & (rng.random(n) < 0.88) & (closed < now - DAY)
    p_diss = np.where(resolved, np.clip(0.05 * bad, 0.005, 0.5), 0.45)
    p_basic = np.where(resolved, 0.17, 0.25)
    u = rng.random(n)
    satisfaction = np.where(
        u < p_diss,
        "dissatisfied",
        np.where(u < p_diss + p_basic, "basically_satisfied", "satisfied"),
    ).astype(object)
    satisfaction[~surveyed] = ""
    returned = np.select(
        [rng.random(n) < np.clip(0.01 * bad, 0, 0.1), rng.random(n) < np.clip(0.05 * bad, 0, 0.3)],
        [2, 1],
        0,
    )

    has_dispatch = dispatched < now
    has_response = first_response < now
    status = np.where(is_closed, "closed", np.where(has_response, "in_progress", "open"))

    # Where the citizen lives.
    district = np.array(city.district_names, dtype=object)[city.street_district[street]]
    street_name = city.street_names[street]
    slot = rng.integers(0, COMMUNITIES_PER_STREET, n)
    community = city.communities[street, slot]
    village = city.villages[street, slot]
    road = city.roads[street, rng.integers(0, ROADS_PER_STREET, n)]
    # Complaints cluster: skewing the uniform draws towards the first numbers and buildings
    # makes a few compounds on each road the usual suspects, so that repeat complaints and
    # look-back recurrences happen at the same address (the draws themselves are unchanged).
    number_draw = rng.integers(1, 200, n)
    building_draw = rng.integers(1, 21, n)
    number = (1 + (number_draw - 1) ** 4 // 199**3).astype(str).astype(object)
    building = (1 + (building_draw - 1) ** 2 // 20).astype(str).astype(object)
    address = np.where(
        village,
        community + number + "号",
        np.where(
            rng.random(n) < 0.2, road + number + "号", road + number + "号院" + building + "号楼"
        ),
    )

    # What the citizen said.
    template = np.floor(rng.random(n) * model.text_count[cat]).astype(np.int64)
    low, high = model.text_lo[cat, template], model.text_hi[cat, template]
    value = (low + np.floor(rng.random(n) * (high - low + 1))).astype(np.int64)
    value_text = np.where(high > 0, value.astype(str).astype(object), "")
    place = district + street_name + np.where(village, "", community) + address
    where = np.where(model.located[cat], place, "")
    content = (
        np.array(LEAD_INS, dtype=object)[rng.integers(0, len(LEAD_INS), n)]
        + where
        + model.text_pre[cat, template]
        + value_text
        + model.text_post[cat, template]
        + "，"
        + np.array(ENDINGS, dtype=object)[rng.integers(0, len(ENDINGS), n)]
    )
    personal = np.flatnonzero(rng.random(n) < 0.002)
    for i in personal.tolist():
        if rng.random() < 0.5:
            phone = MOBILE_PREFIXES[int(rng.integers(0, len(MOBILE_PREFIXES)))]
            phone += f"{int(rng.integers(0, 10**8)):08d}"
            content[i] += f"来电人留电话{phone}，请回电。"
        else:
            content[i] += f"来电人身份证号{_id_number(rng)}。"
    if day_index < len(HTML_SAMPLES) and n > 0:
        at = min(17, n - 1)
        content[at] = LEAD_INS[0] + where[at] + HTML_SAMPLES[day_index] + ENDINGS[1]

    # Who called: mobiles mostly, some Beijing landlines, a few anonymous.
    kind = rng.random(n)
    mobile = np.array(MOBILE_PREFIXES, dtype=object)[
        rng.integers(0, len(MOBILE_PREFIXES), n)
    ] + _digits(rng, n, 8)
    landline = "010-" + rng.choice(np.array(list("5678"), dtype=object), n) + _digits(rng, n, 7)
    phone_text = np.where(kind < 0.85, mobile, np.where(kind < 0.98, landline, ""))

    address = respelled(spec, day_index, district, street_name, address)

    unit_codes = np.concatenate([city.street_codes, np.array(city.dept_codes, dtype=object)])
    ids = f"{day:%Y%m%d}" + np.char.zfill(np.arange(1, n + 1).astype(str), id_width).astype(object)
    empty = np.full(n, "", dtype=object)
    return pd.DataFrame(
        {
            "external_id": ids,
            "received_at": _times(received, np.ones(n, dtype=bool)),
            "dispatched_at": _times(dispatched, has_dispatch),
            "first_response_at": _times(first_response, has_response),
            "resolved_at": _times(resolved_at, resolved),
            "closed_at": _times(closed, is_closed),
            "due_at": empty,
            "category": np.array(model.categories, dtype=object)[cat],
            "district": district,
            "street": street_name,
            "community": community,
            "address": address,
            "content": content,
            "caller_phone": phone_text,
            "unit": unit_codes[unit_idx],
            "urgency": urgency.astype(str).astype(object),
            "status": status.astype(object),
            "resolved": np.where(is_closed, np.where(resolved, "1", "0"), "").astype(object),
            "satisfaction": satisfaction,
            "returned_count": np.where(is_closed | has_response, returned, 0).astype(str),
            "reassigned_count": reassigned.astype(str),
        },
        dtype=object,
    )


def daily_counts(
    spec: DemoSpec, model: TicketModel, workdays: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tickets per day (Poisson around the calibrated mean) and category probabilities."""
    start_no = (spec.start - date(1970, 1, 1)).days
    day_nos = start_no + np.arange(spec.days)
    working = np.isin(day_nos, workdays)
    day_weight = np.where(working, 1.0, WEEKEND_FACTOR)
    # Within each month, working days take more than other days; but every month has the
    # same mean daily volume before the trends, so that month-on-month changes of a problem
    # show its trend and not the number of holidays in the month.
    month = (day_nos.astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64)
    for m in np.unique(month):
        in_month = month == m
        day_weight[in_month] /= day_weight[in_month].mean()
    months = np.arange(spec.days) / 30.4375
    trend = (1 + model.monthly_rate)[None, :] ** months[:, None]  # (days, C)
    per_category = model.share[None, :] * trend
    expected = day_weight * per_category.sum(axis=1)
    expected *= spec.daily_volume * spec.days / expected.sum()
    p_category = per_category / per_category.sum(axis=1, keepdims=True)
    counts = np.array(
        [rng_for(spec, STREAM_DAY, d, 0).poisson(expected[d]) for d in range(spec.days)]
    )
    return counts, p_category
