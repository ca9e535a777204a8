"""Which rates the data can support (数据覆盖): missing is missing, never 0 %.

Pure functions on plain values. A source mapping (config/sources/*.yaml) that does not map
the field a rate needs (duban/config/sources.py `RATE_FIELDS`) declares that its exports
have no data for that rate: its tickets are left out of the rate's denominator
(duban/queries/metrics.py), and when every ticket of the period comes from such sources the
rate is missing ("—"), with a note saying why. docs/metrics.md has the rule in words.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from duban.rules.ranking import RATE_NAMES, RATES

# The export field each rate needs, as the notes name it.
FIELD_NAMES: dict[str, str] = {
    "response_rate": "首次响应时间",
    "on_time_rate": "办结时间",
    "resolution_rate": "是否解决",
    "satisfaction_rate": "回访满意度",
}


@dataclass(frozen=True)
class RateNote:
    rate: str
    name: str  # 响应率 …
    unsupported: bool  # no ticket of the period can count: the rate is missing everywhere
    sources: tuple[str, ...]  # the sources of the period whose exports lack the field
    text: str


def rate_notes(lacking: Mapping[str, Collection[str]], sources: Collection[str]) -> list[RateNote]:
    """A note for each rate (in the order of `RATES`) that some of the period's `sources`
    (the sources of its tickets) cannot support; `lacking`: CityConfig.sources_lacking."""
    present = set(sources)
    notes: list[RateNote] = []
    for rate in RATES:
        without = sorted(present & set(lacking.get(rate, ())))
        if not without:
            continue
        name, field = RATE_NAMES[rate], FIELD_NAMES[rate]
        everywhere = set(without) == present
        if everywhere:
            text = f"— 导出数据无{field}，无法计算{name}"
        else:
            text = f"{name}不含来源 {'、'.join(without)} 的工单（其导出数据无{field}）"
        notes.append(RateNote(rate, name, everywhere, tuple(without), text))
    return notes


def unsupported_rates(notes: Collection[RateNote]) -> set[str]:
    """The rates the data of the period cannot support at all."""
    return {n.rate for n in notes if n.unsupported}
