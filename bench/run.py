"""Duban at Beijing scale, each figure beside its floor — the one command:

    .venv/bin/python bench/run.py --repeat 3

Three parts (--part, default all), medians of --repeat runs, side by side in the same run:

- import: `duban import tickets` of the demo city's ~1,010,000-row export (bench/
  import_rate.py), a first import and a re-import, on SQLite and on PostgreSQL (database
  duban_bench_import), beside a bare PostgreSQL COPY of the same file;
- loops: for each size (--size, default tenth and full; bench/data.py builds or reuses
  `duban_bench_<size>` on PostgreSQL) and each loop (daily report, monthly notice, year-end
  evaluation), flow and plain alternating:
  - flow:  the Prefect flow, against one Prefect server started here (on PostgreSQL);
  - plain: the same steps as plain functions (Prefect's share = (flow - plain) / flow);
  - floor: the analysis steps' SELECT statements replayed on a bare psycopg cursor, and a
           plain smtplib loop sending as many messages of the same size to the same local
           SMTP server (aiosmtpd on 127.0.0.1);
- sqlite: the daily report on SQLite, 50,000 tickets a day (bench/daily_run.py).

Every Duban run of the loops is a subprocess whose peak RSS is its own VmHWM
(bench/memory.py). The loops' tables are restored (bench/data.py `reset`) before every run.
Results: var/bench/*.json and a markdown table on stdout (also var/bench/results.md).
DUBAN_BENCH_DIR moves var/bench.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data

REPO = data.REPO
PY = sys.executable
LOOPS = ("daily", "monthly", "annual")
PARTS = ("import", "loops", "sqlite")
IMPORT_DB = "duban_bench_import"
PREFECT_DB = "duban_bench_prefect"
# Targets (2 cores, PostgreSQL): seconds and ratios.
TARGETS = {
    "daily": "under 60 s and within 2x of its floor",
    "monthly": "under 60 s; analysis within 1.5x of its SQL",
    "annual": "under 180 s",
}
IMPORT_TARGET_ROWS_S = 100_000
IMPORT_TARGET_X_COPY = 3.0
MEMORY_LIMIT_MB = 2048


class Sink:
    """The local SMTP server's handler: counts messages and bytes."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        self.bytes += len(envelope.content or b"")
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[run {time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, Any]:
    import psycopg

    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    with psycopg.connect(data.PG_ADMIN) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")
        }
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "postgresql": pg[0] if pg else "?",
        **settings,
        "loadavg_at_start": os.getloadavg(),
    }


def start_prefect(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """One Prefect server for the whole run, its database on PostgreSQL (as in production)."""
    import psycopg

    with psycopg.connect(data.PG_ADMIN, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PREFECT_DB])
        if not exists.fetchone():
            admin.execute(f'CREATE DATABASE "{PREFECT_DB}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{PREFECT_DB}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PREFECT_DB}"
        ),
        "PREFECT_UI_ENABLED": "false",
    }
    log_file = (folder / "prefect-server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(PY).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-services",
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise RuntimeError(f"the Prefect server did not start: see {folder / 'prefect-server.log'}")


def run_worker(args: list[str], env: dict[str, str], folder: Path, tag: str) -> dict[str, Any]:
    """Run bench/loops.py in a subprocess; its result plus peak RSS (MiB) and process wall."""
    out = folder / f"{tag}.json"
    out.unlink(missing_ok=True)
    log_path = folder / f"{tag}.log"
    started = time.perf_counter()
    with log_path.open("wb") as handle:
        proc = subprocess.Popen(
            [PY, str(REPO / "bench" / "loops.py"), *args, "--out", str(out)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        proc.wait()
    process_wall = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{tag} failed ({proc.returncode}); {log_path}:\n{tail}")
    result = dict(json.loads(out.read_text(encoding="utf-8")))
    # its own VmHWM (bench/memory.py): ru_maxrss would include this process's high-water mark
    result["peak_mb"] = result.pop("peak_mib")
    result["process_wall"] = process_wall
    return result


def annual_available() -> str | None:
    """None when flows.annual:annual_evaluation can be imported, else why not."""
    if not (REPO / "flows" / "annual.py").exists():
        return "flows/annual.py does not exist yet"
    probe = subprocess.run(
        [PY, "-c", "from flows.annual import annual_evaluation"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return "flows.annual:annual_evaluation does not import: " + probe.stderr.strip()[-300:]
    return None


def bench_size(
    size: str,
    loops: list[str],
    repeat: int,
    base_env: dict[str, str],
    sink: Sink,
    explain: bool,
    profile: bool = False,
    clock_events: float = 0.0,
    jit: str = "server",
    memory: bool = False,
) -> dict[str, Any]:
    spec = data.spec_for(size)
    facts = data.ensure(spec)
    # with events for a fraction of the tickets, or none (restored): run both, side by side
    facts = {**facts, "clock_events": data.set_clock_events(spec, clock_events)}
    folder = data.BENCH_DIR / f"runs-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # --jit on|off: Duban's connections (and the floor's, the same URL) with `SET jit` as an
    # administrator would give it (docs/operations.md); "server": the server's own setting.
    url = spec.url if jit == "server" else f"{spec.url}?options=-c%20jit%3D{jit}"
    env = {
        **base_env,
        "DUBAN_DATABASE_URL": url,
        "DUBAN_CONFIG_DIR": str(spec.config_dir),
    }
    log(f"{size}: cache warmed in {data.prewarm(spec):.0f} s")
    results: dict[str, Any] = {"size": size, "facts": facts, "jit": jit, "loops": {}}
    for loop in loops:
        if loop == "annual":
            why = annual_available()
            if why:
                log(f"{size} annual: SKIPPED — {why}")
                results["loops"][loop] = {"skipped": why}
                continue
        runs: dict[str, list[dict[str, Any]]] = {"flow": [], "plain": [], "sql": [], "smtp": []}
        statements = folder / f"{loop}-statements.pickle"
        for i in range(repeat):
            for mode in ("flow", "plain") if i % 2 == 0 else ("plain", "flow"):
                data.reset(spec)
                tag = f"{loop}-{mode}-{i}"
                env_run = {**env, "DUBAN_REPORTS_DIR": str(folder / f"reports-{tag}")}
                args = ["--loop", loop, "--mode", mode]
                if mode == "plain" and not statements.exists():
                    args += ["--record", str(statements)]
                if profile and i == 0:
                    args += ["--profile", str(folder / f"{tag}-profile.txt")]
                if memory and i == 0 and mode == "plain":
                    args += ["--memory", str(folder / f"{tag}-memory.bin")]
                before = (sink.count, sink.bytes)
                result = run_worker(args, env_run, folder, tag)
                result["loadavg"] = os.getloadavg()[0]
                result["mails"] = sink.count - before[0]
                result["mail_bytes"] = sink.bytes - before[1]
                runs[mode].append(result)
                log(
                    f"{size} {loop} {mode} {i + 1}/{repeat}: {result['wall']:.1f} s, "
                    f"{result['peak_mb']} MiB, {result['mails']} e-mails "
                    f"({result['mail_bytes'] / 1e6:.1f} MB), "
                    f"load {result['loadavg']:.1f}, "
                    f"steps {_fmt_steps(result.get('steps', {}))}; "
                    f"peak MiB after each {result.get('step_peaks', {})}"
                )
        data.reset(spec)
        for i in range(repeat):
            args = ["--loop", loop, "--mode", "sql", "--statements", str(statements)]
            if explain and i == 0:
                args += ["--explain", str(folder / f"{loop}-explain.txt")]
            result = run_worker(args, env, folder, f"{loop}-sql-{i}")
            runs["sql"].append(result)
            log(
                f"{size} {loop} floor SQL {i + 1}/{repeat}: {result['wall']:.2f} s "
                f"({result['statements']} statements)"
            )
        mails = runs["flow"][-1]["mails"]
        if mails:
            size_each = runs["flow"][-1]["mail_bytes"] // mails
            for i in range(repeat):
                args = [
                    "--loop",
                    loop,
                    "--mode",
                    "smtp",
                    "--count",
                    str(mails),
                    "--bytes",
                    str(size_each),
                ]
                result = run_worker(args, env, folder, f"{loop}-smtp-{i}")
                runs["smtp"].append(result)
                log(
                    f"{size} {loop} floor SMTP {i + 1}/{repeat}: {result['wall']:.2f} s "
                    f"({mails} e-mails of {size_each} bytes)"
                )
        results["loops"][loop] = summarise(loop, runs)
    path = data.BENCH_DIR / f"loops-{size}.json"
    path.write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False))
    return results


def _fmt_steps(steps: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in steps.items())


def _median(runs: list[dict[str, Any]], key: str = "wall") -> float:
    return statistics.median(r[key] for r in runs) if runs else 0.0


def _median_steps(runs: list[dict[str, Any]]) -> dict[str, float]:
    names = {n for r in runs for n in r.get("steps", {})}
    return {n: statistics.median(r.get("steps", {}).get(n, 0.0) for r in runs) for n in names}


def summarise(loop: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    flow, plain = _median(runs["flow"]), _median(runs["plain"])
    sql, smtp = _median(runs["sql"]), _median(runs["smtp"])
    floor = sql + smtp
    plain_steps = _median_steps(runs["plain"])
    analysis_names = [n for n in plain_steps if n in _median_steps(runs["sql"])]
    analysis = sum(plain_steps[n] for n in analysis_names)
    return {
        "flow_s": flow,
        "plain_s": plain,
        "floor_sql_s": sql,
        "floor_smtp_s": smtp,
        "floor_s": floor,
        "flow_over_floor": flow / floor if floor else None,
        "prefect_share": (flow - plain) / flow if flow else None,
        "analysis_steps": analysis_names,
        "analysis_plain_s": analysis,
        "analysis_over_sql": analysis / sql if sql else None,
        "peak_mb_flow": max(r["peak_mb"] for r in runs["flow"]),
        "peak_mb_plain": max(r["peak_mb"] for r in runs["plain"]),
        "mails": runs["flow"][-1].get("mails"),
        "mail_bytes": runs["flow"][-1].get("mail_bytes"),
        "flow_steps": _median_steps(runs["flow"]),
        "plain_steps": plain_steps,
        "sql_steps": _median_steps(runs["sql"]),
        "slowest_sql": runs["sql"][0].get("slowest") if runs["sql"] else None,
        "flow_runs": [r["wall"] for r in runs["flow"]],
        "plain_runs": [r["wall"] for r in runs["plain"]],
        "sql_runs": [r["wall"] for r in runs["sql"]],
        "smtp_runs": [r["wall"] for r in runs["smtp"]],
        "summary": runs["flow"][-1].get("summary"),
    }


def _label(res: dict[str, Any]) -> str:
    jit = res.get("jit", "server")
    events = res["facts"].get("clock_events", 0)
    return (
        res["size"]
        + (f", jit {jit}" if jit != "server" else "")
        + (f", {events:,} clock events" if events else "")
    )


def table(all_results: list[dict[str, Any]]) -> str:
    lines = [
        "| size | loop | tickets | Duban flow s | plain s | floor s (SQL + SMTP) | flow / floor "
        "| analysis s / its SQL s | Prefect share | peak MiB | e-mails (MB sent) | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in all_results:
        facts = res["facts"]
        for loop, r in res["loops"].items():
            volume = {
                "daily": f"{facts['peak_day']:,} new / {facts['tickets']:,}",
                "monthly": f"{facts['month']:,} in the month",
                "annual": f"{facts['tickets']:,} in the year",
            }[loop]
            if "skipped" in r:
                skipped = f"| {_label(res)} | {loop} | {volume} | skipped: {r['skipped']} |"
                lines.append(skipped + " |" * 9)
                continue
            floor = f"{r['floor_s']:.1f} ({r['floor_sql_s']:.1f} + {r['floor_smtp_s']:.1f})"
            ratio = f"{r['flow_over_floor']:.2f}" if r["flow_over_floor"] else "–"
            analysis = (
                f"{r['analysis_plain_s']:.1f} / {r['floor_sql_s']:.1f} = "
                f"{r['analysis_over_sql']:.2f}"
                if r["analysis_over_sql"]
                else "–"
            )
            peak = max(r["peak_mb_flow"], r["peak_mb_plain"])
            sent = f"{r['mails']:,} ({r.get('mail_bytes', 0) / 1e6:.1f})" if r["mails"] else "0"
            lines.append(
                f"| {_label(res)} | {loop} | {volume} | {r['flow_s']:.1f} | {r['plain_s']:.1f} "
                f"| {floor} | {ratio} | {analysis} | {r['prefect_share']:.0%} | {peak} "
                f"| {sent} | {TARGETS[loop]} |"
            )
    lines += growth(all_results)
    return "\n".join(lines)


def growth(all_results: list[dict[str, Any]]) -> list[str]:
    """Growth tables: among the sizes with the same new day (tenth beside tenth, full beside
    history-tenth), from the one with the least history to each other."""
    lines: list[str] = []
    by_day: dict[int, list[dict[str, Any]]] = {}
    for res in all_results:
        by_day.setdefault(res["facts"]["peak_day"], []).append(res)
    if len(by_day) > 1 and len(all_results) == len(by_day):  # tenth and full: all grows
        by_day = {0: all_results}
    for group in by_day.values():
        ordered = sorted(group, key=lambda res: res["facts"]["tickets"])
        small = ordered[0]
        for big in ordered[1:]:
            data_growth = big["facts"]["tickets"] / small["facts"]["tickets"]
            same_day = small["facts"]["peak_day"] == big["facts"]["peak_day"]
            lines += [
                "",
                f"Growth from {small['size']} to {big['size']} (history x{data_growth:.1f}, "
                + ("the same day" if same_day else "day and history")
                + "):",
                "",
                "| loop | flow | plain | floor | floor SQL | peak memory |",
                "|---|---|---|---|---|---|",
            ]
            for loop, r in big["loops"].items():
                s = small["loops"].get(loop, {})
                if "skipped" in r or "skipped" in s or not s:
                    continue
                lines.append(
                    f"| {loop} | x{r['flow_s'] / s['flow_s']:.2f} "
                    f"| x{r['plain_s'] / s['plain_s']:.2f} | x{r['floor_s'] / s['floor_s']:.2f} "
                    f"| x{r['floor_sql_s'] / max(s['floor_sql_s'], 1e-9):.2f} "
                    f"| x{max(r['peak_mb_flow'], 1) / max(s['peak_mb_flow'], 1):.2f} |"
                )
    return lines


def _bench_script(script: str, args: list[str], out: Path) -> dict[str, Any]:
    """Run bench/<script> with `args --out out` (its lines go to this one's stdout)."""
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    subprocess.run(
        [PY, str(REPO / "bench" / script), *args, "--out", str(out)], env=env, check=True
    )
    return dict(json.loads(out.read_text(encoding="utf-8")))


def bench_import(repeat: int) -> dict[str, Any]:
    """`duban import tickets` of the demo city's ~1,010,000-row export, first import and
    re-import, on SQLite and on PostgreSQL (database duban_bench_import), beside COPY."""
    import psycopg

    with psycopg.connect(data.PG_ADMIN, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [IMPORT_DB])
        if not exists.fetchone():
            admin.execute(f'CREATE DATABASE "{IMPORT_DB}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{IMPORT_DB}"
    args = ["--sqlite", "--postgres", url, "--repeat", str(repeat)]
    return _bench_script("import_rate.py", args, data.BENCH_DIR / "import.json")


def bench_sqlite_daily(repeat: int) -> dict[str, Any]:
    """The daily report on SQLite: 50,000 tickets a day, 14 days of history."""
    return _bench_script(
        "daily_run.py", ["--repeat", str(repeat)], data.BENCH_DIR / "daily-sqlite.json"
    )


def import_table(result: dict[str, Any]) -> str:
    floor = result.get("copy_floor", {}).get("seconds")
    lines = [
        f"Import of {result['rows']:,} rows (median of {result['repeat']}):",
        "",
        "| database | import | seconds | rows/s | × COPY floor | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    if floor:
        lines.append(
            f"| postgresql | floor: COPY into a bare table | {floor:.1f} s "
            f"| {result['rows'] / floor:,.0f} | 1.00 | |"
        )
    for db in ("postgresql", "sqlite"):
        for label, r in result.get(db, {}).items():
            ratio = f"{r['seconds'] / floor:.2f}" if floor and db == "postgresql" else ""
            lines.append(
                f"| {db} | {label} | {r['seconds']:.1f} s | {r['rows_per_s']:,.0f} | {ratio} "
                f"| {r['peak_mib']:.0f} MiB |"
            )
    first = result.get("postgresql", {}).get("first import")
    if first and floor:
        met = (
            first["rows_per_s"] >= IMPORT_TARGET_ROWS_S
            and first["seconds"] / floor <= IMPORT_TARGET_X_COPY
        )
        lines += [
            "",
            f"Target (PostgreSQL first import): at least {IMPORT_TARGET_ROWS_S:,} rows/s and "
            f"within {IMPORT_TARGET_X_COPY:.0f}x of COPY: **{'met' if met else 'not met'}** "
            f"({first['rows_per_s']:,.0f} rows/s, {first['seconds'] / floor:.2f}x).",
        ]
    return "\n".join(lines)


def sqlite_table(result: dict[str, Any]) -> str:
    flow, plain = result["flow_s"], result["plain_s"]
    return "\n".join(
        [
            f"Daily report on SQLite, {result['daily_volume']:,} tickets a day, "
            f"{result['days']} days of history, {result['emails']} e-mails "
            f"(median of {result['repeat']}):",
            "",
            "| flow | plain | Prefect share | peak RSS (whole bench process) |",
            "|---|---|---|---|",
            f"| {flow:.1f} s | {plain:.1f} s | {(flow - plain) / flow:.0%} "
            f"| {result['peak_mib_process']:.0f} MiB |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size",
        action="append",
        choices=list(data.SIZES),
        help="tenth, full or hundredth (history and day scaled alike), history-tenth (full's "
        "stream and 50,000-ticket day over the last 36 days: a tenth of the history, daily "
        "only), tenth-history-hundredth (a tenth's day over a hundredth of the stream); "
        "repeatable (default: tenth, history-tenth and full)",
    )
    parser.add_argument(
        "--part",
        action="append",
        choices=PARTS,
        help="import (1 M-row export, SQLite and PostgreSQL), loops (PostgreSQL, --size), "
        "sqlite (daily report on SQLite); repeatable (default: all three)",
    )
    parser.add_argument("--loop", action="append", choices=LOOPS, help="default: all three")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="regenerate the databases")
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument(
        "--clock-events",
        type=float,
        default=0.0,
        help="give this fraction of the tickets a clock event (issue 13: 0.083 is ~1 M of "
        "12 M); 0, the default, removes them. Run once with and once without to compare",
    )
    parser.add_argument(
        "--jit",
        choices=("server", "on", "off"),
        default="server",
        help="PostgreSQL JIT for Duban's and the floor's connections (the URL's options, as "
        "docs/operations.md tells an admin); default: the server's setting",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="pyinstrument report of the first flow and plain run (pip install pyinstrument)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="memray capture of the first plain run (pip install memray), in runs-SIZE/",
    )
    args = parser.parse_args()
    sizes = args.size or ["tenth", "history-tenth", "full"]
    loops = args.loop or list(LOOPS)
    parts = args.part or list(PARTS)
    data.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    info = machine()
    log(f"machine: {info}")
    sections = []
    if "import" in parts:
        log("import: the demo city's 1 M-row export, SQLite and PostgreSQL, beside COPY")
        sections.append(import_table(bench_import(args.repeat)))
    if "loops" in parts:
        sections.append(bench_loops(args, sizes, loops))
    if "sqlite" in parts:
        log("sqlite: the daily report on SQLite")
        sections.append(sqlite_table(bench_sqlite_daily(args.repeat)))
    header = (
        f"{time.strftime('%Y-%m-%d %H:%M')} — {info['nproc']} cores, {info['memory_gib']} GiB, "
        f"PostgreSQL {info['postgresql']}, median of {args.repeat}, "
        f"load at start {info['loadavg_at_start'][0]:.1f}"
    )
    text = "\n\n".join([header, *sections])
    (data.BENCH_DIR / "results.md").write_text(text + "\n", encoding="utf-8")
    print("\n" + text)


def bench_loops(args: argparse.Namespace, sizes: list[str], loops: list[str]) -> str:
    for size in sizes:
        spec = data.spec_for(size)
        if args.rebuild or not data.is_complete(spec):
            data.build(spec)

    from aiosmtpd.controller import Controller

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    prefect, api_url = start_prefect(data.BENCH_DIR)
    log(f"Prefect server {api_url}, SMTP 127.0.0.1:{smtp_port}")
    base_env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(data.BENCH_DIR / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DUBAN_SMTP_HOST": "127.0.0.1",
        "DUBAN_SMTP_PORT": str(smtp_port),
        "DUBAN_SMTP_SECURITY": "none",
        "DUBAN_MAIL_FROM": "duban@bj.duban.example",
        "DUBAN_TEMPLATES_DIR": str(REPO / "templates"),
        "DUBAN_TIMEZONE": "Asia/Shanghai",
        "PYTHONPATH": str(REPO),
    }
    all_results = []
    try:
        for size in sizes:
            all_results.append(
                bench_size(
                    size,
                    # the history case is the daily's: the others' work is the whole history
                    [lp for lp in loops if lp == "daily"] if size.startswith("history-") else loops,
                    args.repeat,
                    base_env,
                    sink,
                    not args.no_explain,
                    args.profile,
                    args.clock_events,
                    args.jit,
                    args.memory,
                )
            )
    finally:
        controller.stop()
        prefect.terminate()
        prefect.wait(timeout=30)
    text = table(all_results)
    (data.BENCH_DIR / "loops-results.md").write_text(text + "\n", encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
