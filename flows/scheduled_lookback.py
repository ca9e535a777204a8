"""回头看 on a schedule — the look-backs of `config/lookback.yaml`.

Each working day, for every configured schedule (by default: 30 days at the same address,
90 days in the same community), look back at the tickets closed `window_days + 1` days ago,
whose recurrence windows have all just ended. Each is an ordinary look-back run (a subflow
with its own record, artifact and notices), so a re-run for the same day finds its
notices recorded and sends nothing new. Enabled in `config/schedules.yaml`.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger

from duban.config import load_config
from duban.context import today_in_city
from duban.loops.lookback.findings import scheduled_request
from duban.settings import get_settings
from flows.bracket import skipped_state
from flows.lookback import lookback
from flows.parameters import DayValue, form
from tasks.notify import notify_admins

Day = Annotated[
    DayValue,
    form(
        "日期 Day",
        "The day whose look-backs to run (each schedule of config/lookback.yaml examines the "
        "tickets closed window + 1 days before it). Empty: today in the city's time zone. "
        "运行日期；留空为本市今天。",
    ),
]


@flow(
    name="scheduled-lookback",
    description="回头看: the scheduled look-backs of config/lookback.yaml",
    on_failure=[notify_admins],
)
def scheduled_lookback(
    day: Day = None,
) -> dict[str, Any]:
    """Run every look-back schedule of config/lookback.yaml for `day` (default: today in the
    city's time zone). Nothing happens on a non-working day: the windows that ended then
    are examined on the next working day, by a schedule with `closed_days` > 1, or not."""
    settings = get_settings()
    day = day or today_in_city(settings)
    config = load_config(settings.config_dir)
    logger = get_run_logger()
    if not config.calendar.is_working_day(day):
        logger.info("%s is not a working day: no scheduled look-back", day)
        reason = f"{day} is not a working day"
        return skipped_state({"day": f"{day}", "skipped": "not a working day"}, reason)
    schedules = config.lookback.lookback_schedules
    results: dict[str, Any] = {"day": f"{day}"}
    for schedule in schedules:
        request = scheduled_request(schedule, day)
        summary = lookback(request)
        results[schedule.name] = {
            k: summary.get(k) for k in ("request", "closed", "recurred", "mail_sent")
        }
        logger.info("%s: %s", schedule.name, results[schedule.name])
    return results
