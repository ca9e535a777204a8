"""The daily report's SQL alone on a bench database: what grows with history at a fixed day.

    .venv/bin/python bench/daily_sql.py --size tenth-history-hundredth --size tenth [--jit off]

Records the SELECTs of the daily's escalate step (a dry run: nothing is written) and of its
measure step for 2025-12-31, then replays them on a bare psycopg cursor `--repeat` times,
the sizes alternating, and prints each size's median total, its open tickets and
escalations, and the growth between the sizes; `--explain FILE` writes EXPLAIN (ANALYZE,
BUFFERS) of the slowest statements of the last size. Read-only: safe beside other runs,
but it measures SQL only (bench/run.py times the whole flow beside its floor).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data


def statements(size: str) -> list[tuple[str, Any]]:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from duban.config import load_config
    from duban.db import make_engine
    from duban.loops.daily.escalation import apply_escalations
    from duban.loops.daily.report import measure_daily

    spec = data.spec_for(size)
    seen: list[tuple[str, Any]] = []

    def hook(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        wanted = not many and statement.lstrip().upper().startswith(("SELECT", "WITH"))
        if wanted and "pg_catalog" not in statement and "alembic_version" not in statement:
            seen.append((statement, params))

    config = load_config(spec.config_dir)
    engine = make_engine(spec.url)
    event.listen(Engine, "before_cursor_execute", hook)
    try:
        last = data.REPORT_DAY.replace(day=30)
        apply_escalations(engine, config, data.REPORT_DAY, last_run_day=last, dry_run=True)
        measure_daily(engine, config, data.REPORT_DAY, last)
    finally:
        event.remove(Engine, "before_cursor_execute", hook)
        engine.dispose()
    return seen


def replay(size: str, stmts: list[tuple[str, Any]], jit: str) -> list[float]:
    with psycopg.connect(data.spec_for(size).dsn) as conn:
        if jit != "server":
            conn.execute(f"SET jit = {jit}")
        took = []
        for statement, params in stmts:
            t0 = time.perf_counter()
            conn.execute(statement, params).fetchall()
            took.append(time.perf_counter() - t0)
        conn.rollback()
    return took


def facts(size: str) -> dict[str, int]:
    with psycopg.connect(data.spec_for(size).dsn) as conn:
        one = lambda sql: int(conn.execute(sql).fetchone()[0])  # type: ignore[index]  # noqa: E731
        return {
            "tickets": one("SELECT count(*) FROM tickets"),
            "open": one("SELECT count(*) FROM tickets WHERE status <> 'closed'"),
            "escalations": one("SELECT count(*) FROM escalations"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", action="append", choices=list(data.SIZES), required=True)
    parser.add_argument("--jit", choices=("server", "on", "off"), default="server")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", type=Path)
    args = parser.parse_args()
    recorded = {size: statements(size) for size in args.size}
    runs: dict[str, list[list[float]]] = {size: [] for size in args.size}
    for i in range(args.repeat):
        for size in args.size if i % 2 == 0 else list(reversed(args.size)):
            runs[size].append(replay(size, recorded[size], args.jit))
    totals = {size: statistics.median(sum(r) for r in runs[size]) for size in args.size}
    for size in args.size:
        print(f"{size}: {facts(size)}, {len(recorded[size])} statements, "
              f"median {totals[size]:.2f} s (jit {args.jit}, {args.repeat} runs)")  # fmt: skip
    first = args.size[0]
    for size in args.size[1:]:
        print(f"growth {first} -> {size}: x{totals[size] / totals[first]:.2f}")
    if args.explain is not None:
        size = args.size[-1]
        last = runs[size][-1]
        slowest = sorted(range(len(last)), key=lambda i: -last[i])[:5]
        lines = []
        with psycopg.connect(data.spec_for(size).dsn) as conn:
            if args.jit != "server":
                conn.execute(f"SET jit = {args.jit}")
            for i in slowest:
                statement, params = recorded[size][i]
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
                lines += [f"-- {last[i]:.3f} s", statement, "", *(r[0] for r in plan), "", ""]
            conn.rollback()
        args.explain.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
