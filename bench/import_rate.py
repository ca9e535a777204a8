"""Import rate of `duban import tickets` on a ~1-million-row canonical CSV, against a floor.

    .venv/bin/python bench/import_rate.py [--rows-per-day N] [--days N] [--chunk-rows N]
        [--sqlite] [--postgres URL] [--repeat N] [--out FILE] [--engine columnar|rows]

e.g. `.venv/bin/python bench/import_rate.py --sqlite
--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test` (use `--days 10` while
iterating: ~110,000 rows instead of ~1,010,000).

Generates the demo city's export (deterministic) under var/bench/, then imports it into a
fresh SQLite file and/or a fresh PostgreSQL schema: a first import and a re-import of the
same file (which should change nothing). Each import runs in a subprocess of its own, so its
peak memory is that process's own VmHWM (bench/memory.py; the whole process: Python,
pandas, the driver). On PostgreSQL the same run also times the floor:
`COPY … FROM STDIN (FORMAT csv, HEADER)` of the same file into a bare table of text columns
(no indexes, no constraints), and prints each import's rate as a multiple of that floor.
Other processes share the CPU: compare the ratios of one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from memory import peak_rss_mib
from sqlalchemy import Engine, text

from duban.config import load_config
from duban.db import make_engine, session_scope, upgrade
from duban.demo.city import DemoSpec, generate_city
from duban.ingest.city import sync_city
from duban.ingest.sources import DEFAULT_CHUNK_ROWS
from duban.ingest.tickets import import_tickets

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(os.environ.get("DUBAN_BENCH_DIR") or REPO / "var" / "bench")


def _engine(url: str, schema: str | None) -> Engine:
    if schema:
        return make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return make_engine(url)


def child(
    url: str, schema: str | None, config_dir: Path, csv_path: Path, chunk_rows: int, bulk: str
) -> None:
    """One import in this process; prints one JSON line: seconds, summary, peak memory."""
    engine = _engine(url, schema)
    config = load_config(config_dir)
    started = time.perf_counter()
    summary = import_tickets(
        engine, config, csv_path, "duban", config_dir.parent / "reports", chunk_rows=chunk_rows,
        bulk={"auto": None, "on": True, "off": False}[bulk],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    engine.dispose()
    print(json.dumps({"seconds": seconds, "read": summary.read, "line": summary.line(),
                      "peak_mib": peak_rss_mib()}))  # fmt: skip


def run(
    url: str,
    schema: str | None,
    config_dir: Path,
    csv_path: Path,
    chunk_rows: int,
    bulk: str = "auto",
) -> dict[str, dict[str, float]]:
    """A first import and a re-import, each in a subprocess: seconds, rows/s, peak MiB."""
    engine = _engine(url, schema)
    upgrade(engine)
    with session_scope(engine) as session:
        sync_city(session, load_config(config_dir))
    dialect = engine.dialect.name
    engine.dispose()
    results = {}
    for label in ("first import", "re-import"):
        command = [sys.executable, __file__, "--child", url, "--schema", schema or "",
                   "--config", str(config_dir), "--csv", str(csv_path),
                   "--chunk-rows", str(chunk_rows),
                   "--bulk", bulk if label == "first import" else "auto"]  # fmt: skip
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rate = result["read"] / result["seconds"]
        results[label] = {
            "seconds": result["seconds"], "rows_per_s": rate, "peak_mib": result["peak_mib"],
            "rows": result["read"],
        }  # fmt: skip
        print(
            f"{dialect:10} {label:12} {result['read']:>9} rows {result['seconds']:7.1f} s "
            f"{rate:>9,.0f} rows/s  peak {result['peak_mib']:5.0f} MiB  ({result['line']})",
            flush=True,
        )
    return results


def copy_floor(url: str, schema: str, csv_path: Path) -> float:
    """Seconds of a plain COPY of the file into a bare table of the export's columns."""
    import psycopg

    with csv_path.open("r", encoding="utf-8-sig") as handle:
        header = handle.readline().rstrip("\r\n")
    columns = ", ".join(f'"{c}" text' for c in header.split(","))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn:
        conn.execute(f"CREATE TABLE copy_floor ({columns})")
        conn.commit()
        started = time.perf_counter()
        with (
            csv_path.open("rb") as handle,
            conn.cursor() as cur,
            cur.copy("COPY copy_floor FROM STDIN (FORMAT csv, HEADER)") as copy,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE copy_floor")
        conn.commit()
    return seconds


def _median_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        label: {key: statistics.median(r[label][key] for r in runs) for key in runs[0][label]}
        for label in runs[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-per-day", type=int, default=11_000)
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--repeat", type=int, default=1, help="medians of this many rounds")
    parser.add_argument("--out", type=Path, help="write the medians here as JSON")
    parser.add_argument(
        "--bulk",
        choices=("auto", "on", "off"),
        default="auto",
        help="the first import's bulk mode (auto: as `duban import tickets` chooses)",
    )
    parser.add_argument(
        "--engine",
        choices=("columnar", "rows"),
        default="columnar",
        help="the import's engine (DUBAN_IMPORT_ENGINE): columnar, or rows (the row-by-row path)",
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.schema or None, args.config, args.csv, args.chunk_rows, args.bulk)
        return
    out = BENCH_DIR / f"import-{args.rows_per_day}x{args.days}"
    csv_path = out / "tickets.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        files = generate_city(
            DemoSpec(days=args.days, daily_volume=args.rows_per_day), out, REPO / "config"
        )
        print(
            f"generated {files.tickets} rows in {time.perf_counter() - started:.1f} s "
            f"({csv_path.stat().st_size / 1e6:.0f} MB)",
            flush=True,
        )
    os.environ["DUBAN_IMPORT_ENGINE"] = args.engine  # for the imports' subprocesses
    print(f"chunk rows: {args.chunk_rows}, engine: {args.engine}", flush=True)
    rows = sum(1 for _ in csv_path.open("rb")) - 1  # the demo's rows hold no newlines
    sqlite_runs, pg_runs, floors = [], [], []
    for round_ in range(args.repeat):
        if args.repeat > 1:
            print(f"round {round_ + 1} of {args.repeat}", flush=True)
        if args.sqlite:
            db = out / "bench.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            sqlite_runs.append(
                run(f"sqlite:///{db}", None, out / "config", csv_path, args.chunk_rows, args.bulk)
            )
        if args.postgres:
            floor, pg_round = postgres_round(args.postgres, out / "config", csv_path, rows, args)
            floors.append(floor)
            pg_runs.append(pg_round)
    medians: dict[str, Any] = {"rows": rows, "repeat": args.repeat, "file": str(csv_path)}
    if sqlite_runs:
        medians["sqlite"] = _median_of(sqlite_runs)
    if pg_runs:
        floor = statistics.median(floors)
        pg = _median_of(pg_runs)
        medians["postgresql"] = pg
        medians["copy_floor"] = {"seconds": floor, "rows_per_s": rows / floor}
        if args.repeat > 1:
            print(f"medians of {args.repeat} rounds:", flush=True)
            print(f"{'postgresql':10} {'COPY floor':12} {floor:7.1f} s", flush=True)
        for label, result in pg.items():
            print(
                f"{'postgresql':10} {label:12} {result['seconds']:7.1f} s "
                f"{result['rows_per_s']:>9,.0f} rows/s  {result['seconds'] / floor:5.2f}× "
                "the COPY floor's time",
                flush=True,
            )
    for label, result in medians.get("sqlite", {}).items():
        print(
            f"{'sqlite':10} {label:12} {result['seconds']:7.1f} s "
            f"{result['rows_per_s']:>9,.0f} rows/s",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(medians, indent=2), encoding="utf-8")


def postgres_round(
    url: str, config_dir: Path, csv_path: Path, rows: int, args: argparse.Namespace
) -> tuple[float, dict[str, dict[str, float]]]:
    """In a fresh schema: the COPY floor, then a first import and a re-import."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        floor = copy_floor(url, schema, csv_path)
        print(
            f"{'postgresql':10} {'COPY floor':12} {rows:>9} rows {floor:7.1f} s "
            f"{rows / floor:>9,.0f} rows/s  (COPY … FROM STDIN (FORMAT csv, HEADER) into a "
            "bare table of text columns)",
            flush=True,
        )
        result = run(url, schema, config_dir, csv_path, args.chunk_rows, args.bulk)
        for label, r in result.items():
            print(
                f"{'postgresql':10} {label:12} {r['seconds'] / floor:5.2f}× the COPY floor's time",
                flush=True,
            )
        return floor, result
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
