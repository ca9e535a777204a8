"""Import rate of `duban import tickets` on a ~1-million-row canonical CSV, against a floor.

    .venv/bin/python bench/import_rate.py [--rows-per-day N] [--days N] [--chunk-rows N]
        [--sqlite] [--postgres URL]

e.g. `.venv/bin/python bench/import_rate.py --sqlite
--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test` (use `--days 10` while
iterating: ~110,000 rows instead of ~1,010,000).

Generates the demo city's export (deterministic) under var/bench/, then imports it into a
fresh SQLite file and/or a fresh PostgreSQL schema: a first import and a re-import of the
same file (which should change nothing). Each import runs in a subprocess of its own, so its
peak memory is that process's resource.getrusage(RUSAGE_SELF).ru_maxrss (the whole
process: Python, pandas, the driver). On PostgreSQL the same run also times the floor:
`COPY … FROM STDIN (FORMAT csv, HEADER)` of the same file into a bare table of text columns
(no indexes, no constraints), and prints each import's rate as a multiple of that floor.
Other processes share the CPU: compare the ratios of one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, text

from duban.city import sync_city
from duban.config import load_config
from duban.db import make_engine, session_scope, upgrade
from duban.demo_city import DemoSpec, generate_city
from duban.sources import DEFAULT_CHUNK_ROWS
from duban.ticket_import import import_tickets

REPO = Path(__file__).resolve().parents[1]


def _engine(url: str, schema: str | None) -> Engine:
    if schema:
        return make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return make_engine(url)


def child(url: str, schema: str | None, config_dir: Path, csv_path: Path, chunk_rows: int) -> None:
    """One import in this process; prints one JSON line: seconds, summary, peak memory."""
    engine = _engine(url, schema)
    config = load_config(config_dir)
    started = time.perf_counter()
    summary = import_tickets(
        engine, config, csv_path, "duban", config_dir.parent / "reports", chunk_rows=chunk_rows
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "read": summary.read, "line": summary.line(),
                      "peak_mib": peak_kib / 1024}))  # fmt: skip


def run(
    url: str, schema: str | None, config_dir: Path, csv_path: Path, chunk_rows: int
) -> list[float]:
    """A first import and a re-import, each in a subprocess; their rates (rows/s)."""
    engine = _engine(url, schema)
    upgrade(engine)
    with session_scope(engine) as session:
        sync_city(session, load_config(config_dir))
    dialect = engine.dialect.name
    engine.dispose()
    rates = []
    for label in ("first import", "re-import"):
        command = [sys.executable, __file__, "--child", url, "--schema", schema or "",
                   "--config", str(config_dir), "--csv", str(csv_path),
                   "--chunk-rows", str(chunk_rows)]  # fmt: skip
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rate = result["read"] / result["seconds"]
        rates.append(rate)
        print(
            f"{dialect:10} {label:12} {result['read']:>9} rows {result['seconds']:7.1f} s "
            f"{rate:>9,.0f} rows/s  peak {result['peak_mib']:5.0f} MiB  ({result['line']})",
            flush=True,
        )
    return rates


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-per-day", type=int, default=11_000)
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.schema or None, args.config, args.csv, args.chunk_rows)
        return
    out = REPO / "var" / "bench" / f"import-{args.rows_per_day}x{args.days}"
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
    print(f"chunk rows: {args.chunk_rows}", flush=True)
    if args.sqlite:
        db = out / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        run(f"sqlite:///{db}", None, out / "config", csv_path, args.chunk_rows)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            floor = copy_floor(args.postgres, schema, csv_path)
            rows = sum(1 for _ in csv_path.open("rb")) - 1  # the demo's rows hold no newlines
            floor_rate = rows / floor
            print(
                f"{'postgresql':10} {'COPY floor':12} {rows:>9} rows {floor:7.1f} s "
                f"{floor_rate:>9,.0f} rows/s  (COPY … FROM STDIN (FORMAT csv, HEADER) into a "
                "bare table of text columns)",
                flush=True,
            )
            rates = run(args.postgres, schema, out / "config", csv_path, args.chunk_rows)
            for label, rate in zip(("first import", "re-import"), rates, strict=True):
                print(
                    f"{'postgresql':10} {label:12} {floor_rate / rate:5.2f}× the COPY floor's time",
                    flush=True,
                )
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
