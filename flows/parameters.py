"""The parameters of every loop's flow, as the Prefect UI's *Custom run* form shows them.

Prefect builds a pydantic model of each flow's signature (`parameter_openapi_schema` of its
deployment); a parameter declared here carries a bilingual title and description and a
JSON schema the form renders as one plain field: a date picker, a text box with its format,
a number, a toggle — never "str | None" with a "Property is type None" branch. Left empty,
a period parameter means "the period a scheduled run is due for" (the flow's docstring).

    def weekly_analysis(week: Week = None, dry_run: DryRun = False) -> ...

A parameter's type carries its form (title, description, JSON schema) in `Annotated`
metadata; its default is a plain Python default, so a flow's `.fn` called without Prefect
(bench/loops.py's plain mode, a test) gets the same defaults a flow run does. (A pydantic
`Field(default)` as the default would reach such a call as a FieldInfo object.)

The form does not run the checks: the flows parse every value themselves (duban.periods).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema
from pydantic.fields import FieldInfo

__all__ = [
    "Day",
    "DayValue",
    "DryRun",
    "Month",
    "OptionalFlag",
    "Quarter",
    "Week",
    "Year",
    "form",
]


def form(title: str, description: str, **schema: Any) -> FieldInfo:
    """The form of a parameter, as `Annotated` metadata: its title, description and extra
    JSON schema (`minimum=1`…) — not its default, which the signature gives."""
    return Field(json_schema_extra={"title": title, "description": description, **schema})


def _text(pattern: str, example: str) -> WithJsonSchema:
    """An optional text parameter shown as one text box ("" or absent: the default)."""
    return WithJsonSchema({"type": "string", "pattern": pattern, "examples": [example]})


DayValue = Annotated[date | None, WithJsonSchema({"type": "string", "format": "date"})]
OptionalFlag = Annotated[bool | None, WithJsonSchema({"type": "boolean"})]

DryRun = Annotated[
    bool,
    form(
        "试运行 Dry run",
        "Render and archive the notices under reports/dry-run; record nothing and send "
        "nothing. 只生成并存档（reports/dry-run），不记录、不发送。",
    ),
]
Day = Annotated[
    DayValue,
    form(
        "日期 Day",
        "The day to report on. Empty: today in the city's time zone (a scheduled run). "
        "报告日期；留空为本市今天（定时运行）。",
    ),
]
Week = Annotated[
    str | None,
    _text(r"^$|^\d{4}-W\d{2}$", "2026-W45"),
    form(
        "周次 ISO week",
        "ISO week as YYYY-Www, e.g. 2026-W45. Empty: the week before this one (a scheduled "
        "Monday run). 周次（如 2026-W45）；留空为上一周。",
    ),
]
Month = Annotated[
    str | None,
    _text(r"^$|^\d{4}-\d{2}$", "2026-10"),
    form(
        "月份 Month",
        "The month as YYYY-MM, e.g. 2026-10. Empty: the month before this one, on the first "
        "working day of a month only (a scheduled run; on other days it is skipped). "
        "月份（如 2026-10）；留空为上月，仅在每月第一个工作日运行，其他日期跳过。",
    ),
]
Quarter = Annotated[
    str | None,
    _text(r"^$|^\d{4}-Q[1-4]$", "2026-Q3"),
    form(
        "季度 Quarter",
        "The quarter as YYYY-Qn, e.g. 2026-Q3; it must have ended. Empty: the quarter before "
        "this one, on the first working day of a quarter only (on other days it is skipped). "
        "季度（如 2026-Q3，须已结束）；留空为上季度，仅在季度第一个工作日运行。",
    ),
]
Year = Annotated[
    int | None,
    WithJsonSchema({"type": "integer", "minimum": 2000}),
    form(
        "年度 Year",
        "The year to evaluate, e.g. 2026. Empty: last year, on the first working day of "
        "January only (on other days it is skipped). "
        "考评年度（如 2026）；留空为上一年，仅在一月第一个工作日运行。",
    ),
]
