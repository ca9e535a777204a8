"""Wall time of one daily report for a 50,000-ticket day, and Prefect's share of it.

    .venv/bin/python bench/daily_run.py [--daily-volume 50000] [--days 14] [--repeat 3]
        [--out FILE]

Builds the demo city with `--days` days of tickets at `--daily-volume` a day (SQLite, under
var/bench/), runs the daily report for the first working day after them, delivering to a
local SMTP server (aiosmtpd on 127.0.0.1), and times, side by side on identical copies of
the database:

- flow:  the `daily-report` Prefect flow (tasks, state tracking, artifact);
- plain: the same steps called as plain functions (each Prefect task's `.fn`).

Prefect's share = (flow - plain) / flow. Medians over --repeat runs, alternating the two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from memory import peak_rss_mib

REPO = Path(__file__).resolve().parents[1]


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(out: Path, volume: int, days: int) -> tuple[Path, Path, Any]:
    from duban.config import load_config
    from duban.db import make_engine, session_scope, upgrade
    from duban.demo.city import DemoSpec, generate_city
    from duban.ingest.city import sync_city
    from duban.ingest.plan import import_plan
    from duban.ingest.tickets import import_tickets

    template = out / "template.db"
    spec = DemoSpec(days=days, daily_volume=volume)
    if not template.exists():
        files = generate_city(spec, out, REPO / "config")
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        config = load_config(files.config_dir)
        with session_scope(engine) as session:
            sync_city(session, config)
        import_plan(engine, config, files.plan_workbook, out / "reports")
        started = time.perf_counter()
        summary = import_tickets(engine, config, files.tickets_csv, "duban", out / "reports")
        print(f"imported {summary.read} tickets in {time.perf_counter() - started:.0f} s")
        engine.dispose()
    config = load_config(out / "config")
    calendar = config.calendar

    last = spec.start + timedelta(days=days - 1)
    return template, out / "config", calendar.add_working_days(last, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--daily-volume", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the medians here as JSON")
    args = parser.parse_args()
    bench_dir = Path(os.environ.get("DUBAN_BENCH_DIR") or REPO / "var" / "bench")
    out = bench_dir / f"daily-{args.daily_volume}x{args.days}"
    out.mkdir(parents=True, exist_ok=True)
    template, config_dir, day = prepare(out, args.daily_volume, args.days)

    from aiosmtpd.controller import Controller

    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    os.environ.update(
        {
            "DUBAN_CONFIG_DIR": str(config_dir),
            "DUBAN_SMTP_HOST": "127.0.0.1",
            "DUBAN_SMTP_PORT": str(port),
            "DUBAN_SMTP_SECURITY": "none",
            "DUBAN_MAIL_FROM": "duban@bj.duban.example",
            "DUBAN_TEMPLATES_DIR": str(REPO / "templates"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    from prefect import flow as prefect_flow

    from duban.settings import get_settings
    from flows.daily import daily_report

    @prefect_flow(name="bench-warm-up")
    def warm_up() -> None:
        """Starts the temporary Prefect server before anything is timed."""

    warm_up()
    times: dict[str, list[float]] = {"flow": [], "plain": []}
    mails: dict[str, int] = {}
    for i in range(args.repeat):
        for mode in ("flow", "plain") if i % 2 == 0 else ("plain", "flow"):
            db = out / f"run-{mode}.db"
            shutil.copy(template, db)
            reports = out / f"reports-{mode}-{i}"
            shutil.rmtree(reports, ignore_errors=True)
            os.environ["DUBAN_DATABASE_URL"] = f"sqlite:///{db}"
            os.environ["DUBAN_REPORTS_DIR"] = str(reports)
            get_settings.cache_clear()
            before = sink.count
            started = time.perf_counter()
            summary = daily_report(day=day) if mode == "flow" else plain_daily(day)
            times[mode].append(time.perf_counter() - started)
            mails[mode] = sink.count - before
            print(
                f"{mode:5} run {i + 1}: {times[mode][-1]:6.1f} s, {mails[mode]} e-mails, "
                f"{summary.get('units_reported')} units",
                flush=True,
            )
    controller.stop()
    flow, plain = statistics.median(times["flow"]), statistics.median(times["plain"])
    print(f"\nday {day}, {args.daily_volume} tickets a day, {args.days} days of history")
    print(f"flow  (Prefect) median {flow:6.1f} s")
    print(f"plain (no Prefect)     {plain:6.1f} s")
    print(f"Prefect's share        {(flow - plain) / flow:6.1%}  ({flow - plain:.1f} s)")
    # The whole process: the generator and both modes; the daily run's own peak is less.
    peak = peak_rss_mib()
    if args.out:
        result = {
            "day": str(day), "daily_volume": args.daily_volume, "days": args.days,
            "repeat": args.repeat, "flow_s": flow, "plain_s": plain, "runs": times,
            "emails": mails.get("flow"), "peak_mib_process": peak,
        }  # fmt: skip
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


def plain_daily(day: Any) -> dict[str, Any]:
    """The daily flow's steps without Prefect: the tasks' own functions, in the same order."""
    from duban.context import load_context
    from duban.db.runs import finish_run, last_completed_day, start_run
    from duban.rules.ladder import is_send_day
    from duban.rules.warnings import working_day_on_or_before
    from tasks.daily import escalate, measure, render_daily
    from tasks.deliver import deliver

    ctx = load_context()
    assert is_send_day(day, False, ctx.config.calendar)
    run_id = start_run(ctx.engine, "daily", f"{day}", {}, False)
    last = last_completed_day(ctx.engine, "daily", day)
    # As the flow does: with no earlier report, the window starts at the previous working day.
    since = last or working_day_on_or_before(day - timedelta(days=1), ctx.config.calendar)
    started = datetime.now()
    escalate.fn(ctx, day, last, False)
    snap = measure.fn(ctx, day, since, started)
    rendered = render_daily.fn(ctx, snap, False)
    sent = deliver.fn(ctx, rendered)
    finish_run(ctx.engine, run_id, "ok", {})
    ctx.engine.dispose()
    return {"units_reported": len(rendered.notices) - 1, **sent}


if __name__ == "__main__":
    main()
