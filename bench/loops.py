"""One measurement of one loop, in its own process (bench/run.py starts it; its peak
memory is its own VmHWM, bench/memory.py).

    python bench/loops.py --loop daily|monthly|annual --mode flow|plain|sql|smtp --out FILE

Modes:
- flow:  the Prefect flow as `duban run …` calls it (monthly: the flow, then
         `flows.monthly.approve_monthly`, which approves and delivers);
- plain: the same flow body with every Prefect task replaced by its `.fn` and the run
         logger/artifact calls by plain ones — the same steps without Prefect. Each step is
         timed; with --record the SELECT statements each step sends are saved (pickle);
- sql:   the floor: those recorded statements of the analysis steps, replayed through a bare
         psycopg cursor (execute + fetchall), timed; --explain writes EXPLAIN ANALYZE of the
         slowest ones;
- smtp:  the floor of delivery: a plain smtplib loop sending --count messages of --bytes
         each over one connection to the same local SMTP server.

The environment (DUBAN_*, PREFECT_API_URL) is set by bench/run.py. Writes a JSON result.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data
from memory import peak_rss_mib

# Steps whose SQL is "the aggregate SQL the loop needs" (the floor): by task name.
ANALYSIS_STEPS = {
    "daily": ("escalate", "measure-daily"),
    "monthly": ("measure-monthly",),
    # flows/annual.py: any task whose name says it measures or evaluates.
    "annual": ("measure", "evaluat", "score", "escalat"),
}


class Recorder:
    """Times each step and (optionally) records the SELECT statements it sends."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.phase = "flow"
        self.steps: dict[str, float] = {}
        self.peaks: dict[str, int] = {}  # the process's peak RSS (MiB) at the end of each step
        self.statements: list[tuple[str, str, Any]] = []

    def listen(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        @event.listens_for(Engine, "before_cursor_execute")
        def _seen(
            conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
        ) -> None:
            if not self.record or many:
                return
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                return
            skip = ("FOR UPDATE", "pg_catalog", "alembic_version", "information_schema")
            if any(s in statement for s in skip):
                return
            self.statements.append((self.phase, statement, params))

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outer, self.phase = self.phase, name
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started
                self.peaks[name] = peak_rss_mib()
                self.phase = outer

        return wrapper


def _tasks(module: Any) -> dict[str, Any]:
    from prefect import Task

    return {name: obj for name, obj in vars(module).items() if isinstance(obj, Task)}


def _unprefect(module: Any, recorder: Recorder) -> None:
    """Replace the module's tasks by their timed functions, and Prefect's run logger and
    artifacts by plain ones: the flow's body then runs without Prefect."""
    for attr, task in _tasks(module).items():
        setattr(module, attr, recorder.timed(task.name, task.fn))
    if hasattr(module, "get_run_logger"):
        module.get_run_logger = lambda: logging.getLogger("duban")
    if hasattr(module, "create_markdown_artifact"):
        module.create_markdown_artifact = lambda *a, **k: None


def _time_tasks(module: Any, recorder: Recorder) -> None:
    """Flow mode: time the body of each task inside its Prefect task run."""
    for task in _tasks(module).values():
        task.fn = recorder.timed(task.name, task.fn)


def _flow_module(loop: str) -> tuple[Any, Any]:
    import importlib

    if loop == "daily":
        module = importlib.import_module("flows.daily")
        return module, module.daily_report
    if loop == "monthly":
        module = importlib.import_module("flows.monthly")
        return module, module.monthly_bulletin
    module = importlib.import_module("flows.annual")
    return module, module.annual_evaluation


def _annual_kwargs(flow_obj: Any) -> dict[str, Any]:
    import inspect

    params = inspect.signature(flow_obj.fn).parameters
    kwargs: dict[str, Any] = {}
    if "year" in params:
        kwargs["year"] = data.YEAR
    if "wait_for_approval" in params:
        kwargs["wait_for_approval"] = False
    return kwargs


def run_loop(loop: str, mode: str, recorder: Recorder) -> dict[str, Any]:
    module, flow_obj = _flow_module(loop)
    if mode == "plain":
        _unprefect(module, recorder)
        call = flow_obj.fn
    else:
        _time_tasks(module, recorder)
        call = flow_obj
    recorder.listen()
    out: dict[str, Any] = {}
    started = time.perf_counter()
    if loop == "daily":
        out["summary"] = call(day=data.REPORT_DAY)
    elif loop == "monthly":
        out["summary"] = call(month=data.MONTH, wait_for_approval=False)
        if mode == "plain":
            module._paused_or_none = lambda month: None  # the Prefect API lookup
        approve = recorder.timed("approve-and-send", module.approve_monthly)
        out["approve"] = approve(data.MONTH, "bench")
    else:
        out["summary"] = call(**_annual_kwargs(flow_obj))
    out["wall"] = time.perf_counter() - started
    return out


def replay(
    statements: list[tuple[str, str, Any]], loop: str, explain: Path | None
) -> dict[str, Any]:
    import psycopg

    wanted = ANALYSIS_STEPS[loop]
    chosen = [s for s in statements if any(w in s[0] for w in wanted)]
    dsn = os.environ["DUBAN_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    timings: list[tuple[float, str, str, Any]] = []
    steps: dict[str, float] = {}
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for phase, statement, params in chosen:
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(statement, params)
                cur.fetchall()
            took = time.perf_counter() - t0
            steps[phase] = steps.get(phase, 0.0) + took
            timings.append((took, phase, statement, params))
        wall = time.perf_counter() - started
        conn.rollback()
        if explain is not None:
            lines = []
            for took, phase, statement, params in sorted(timings, key=lambda t: -t[0])[:5]:
                with conn.cursor() as cur:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                    plan = "\n".join(r[0] for r in cur.fetchall())
                lines += [f"-- {phase}: {took:.3f} s", statement, "", plan, "", ""]
            explain.write_text("\n".join(lines), encoding="utf-8")
    top = sorted(timings, key=lambda t: -t[0])[:5]
    return {
        "wall": wall,
        "steps": steps,
        "statements": len(chosen),
        "slowest": [(round(t, 3), p, s[:160]) for t, p, s, _ in top],
    }


def smtp_loop(count: int, size: int) -> dict[str, Any]:
    import smtplib
    from email.message import EmailMessage

    host, port = os.environ["DUBAN_SMTP_HOST"], int(os.environ["DUBAN_SMTP_PORT"])
    body = ("督办 daily report line 0123456789 abcdefghij\n" * (size // 48 + 1))[:size]
    started = time.perf_counter()
    with smtplib.SMTP(host, port) as smtp:
        for i in range(count):
            msg = EmailMessage()
            msg["From"] = "duban@bj.duban.example"
            msg["To"] = f"unit{i}@bj.duban.example"
            msg["Subject"] = f"floor {i}"
            msg.set_content(body)
            smtp.send_message(msg)
    return {"wall": time.perf_counter() - started, "sent": count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=["daily", "monthly", "annual"], required=True)
    parser.add_argument("--mode", choices=["flow", "plain", "sql", "smtp"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--record", type=Path, help="plain: save the SELECTs sent, per step")
    parser.add_argument("--statements", type=Path, help="sql: the recorded statements")
    parser.add_argument("--explain", type=Path, help="sql: write EXPLAIN ANALYZE of the slowest")
    parser.add_argument("--profile", type=Path, help="flow/plain: pyinstrument text report")
    parser.add_argument("--memory", type=Path, help="flow/plain: memray capture file")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--bytes", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.mode == "sql":
        statements = pickle.loads(args.statements.read_bytes())
        result = replay(statements, args.loop, args.explain)
    elif args.mode == "smtp":
        result = smtp_loop(args.count, args.bytes)
    else:
        recorder = Recorder(record=args.record is not None)
        if args.memory is not None:  # memray: for your own use, not a dependency
            import memray

            args.memory.unlink(missing_ok=True)
            with memray.Tracker(args.memory, native_traces=False, follow_fork=False):
                result = run_loop(args.loop, args.mode, recorder)
        elif args.profile is not None:  # pyinstrument: for your own use, not a dependency
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            with profiler:
                result = run_loop(args.loop, args.mode, recorder)
            args.profile.write_text(
                profiler.output_text(unicode=True, show_all=False), encoding="utf-8"
            )
        else:
            result = run_loop(args.loop, args.mode, recorder)
        result["steps"] = recorder.steps
        result["step_peaks"] = recorder.peaks
        if args.record is not None:
            args.record.write_bytes(pickle.dumps(recorder.statements))
            result["recorded"] = len(recorder.statements)
    result["peak_mib"] = peak_rss_mib()
    args.out.write_text(json.dumps(result, default=str, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
