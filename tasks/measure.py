"""Prefect task: the SQL aggregates behind a report."""

from __future__ import annotations

from datetime import date, datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from duban.context import LoopContext
from duban.loops.daily.report import DailySnapshot, measure_daily


@task(name="measure-daily", cache_policy=NO_CACHE)
def measure(
    ctx: LoopContext, day: date, since_day: date, recorded_since: datetime | None = None
) -> DailySnapshot:
    return measure_daily(ctx.engine, ctx.config, day, since_day, recorded_since)
