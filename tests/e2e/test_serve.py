"""`duban serve` against a real Prefect server: schedules belong to the admins once deployed.

Starts `prefect server start` (SQLite, temporary PREFECT_HOME, a free port), runs `duban
serve` as a subprocess, edits and adds a schedule through the REST API as the UI does,
restarts serving, redeploys to a work pool, and finds the admins' schedules intact; runs
the daily deployment and finds its markdown artifact. Every process is stopped on failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import BIN, REPO, RetryingClient, stop, wait

DAILY = "daily-report/daily-report"


@pytest.fixture
def server(env: dict[str, str], start: Callable[..., Any]) -> RetryingClient:
    port = env["PREFECT_SERVER_API_PORT"]
    proc = start("prefect-server", str(BIN / "prefect"), "server", "start",
                 "--host", "127.0.0.1", "--port", port)  # fmt: skip
    api = RetryingClient(base_url=env["PREFECT_API_URL"], timeout=30)
    wait("the Prefect server", lambda: api.get("/health").status_code == 200, 90, [proc])
    return api


def _deployment(api: httpx.Client, name: str = DAILY) -> dict[str, Any]:
    response = api.get(f"/deployments/name/{name}")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _schedules(api: httpx.Client) -> dict[str, tuple[str, bool]]:
    """cron -> (timezone, active) of the daily deployment's schedules."""
    return {
        s["schedule"]["cron"]: (s["schedule"]["timezone"], s["active"])
        for s in _deployment(api)["schedules"]
    }


def _duban(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "duban"), *argv], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_serve_keeps_admin_schedules_and_runs_the_daily_report(
    env: dict[str, str], server: httpx.Client, start: Callable[..., Any]
) -> None:
    api = server
    synced = _duban(env, "sync")
    assert synced.returncode == 0, synced.stderr
    # A loop whose flow has not landed yet (as quarterly and annual once were).
    schedules = Path(env["DUBAN_CONFIG_DIR"]) / "schedules.yaml"
    text = schedules.read_text(encoding="utf-8")
    text += "\n  - name: future-loop\n    flow: flows.future:future_loop\n    cron: null\n"
    schedules.write_text(text, encoding="utf-8")
    serve_argv = (str(BIN / "duban"), "serve", "--loop", "daily-report",
                  "--loop", "future-loop")  # fmt: skip

    # First start: the deployment is created with the schedule of config/schedules.yaml.
    proc, log = start("serve", *serve_argv)
    first = wait("the daily deployment", lambda: _deployment(api), 60, [(proc, log)])
    assert _schedules(api) == {"30 8 * * *": ("Asia/Shanghai", True)}
    assert first["global_concurrency_limit"]["limit"] == 1
    assert first["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    wait("the runner to start", lambda: "being served" in log.read_text(), 60, [(proc, log)])
    output = log.read_text()
    # A loop whose flow module does not exist yet is skipped with a warning naming it.
    assert "future-loop: skipped: its flow module flows.future" in output

    # The admins change the schedule and add a paused one, as the UI does.
    deployment_id = first["id"]
    [schedule] = first["schedules"]
    api.patch(
        f"/deployments/{deployment_id}/schedules/{schedule['id']}",
        json={"schedule": {"cron": "45 7 * * *", "timezone": "Asia/Shanghai"}},
    ).raise_for_status()
    api.post(
        f"/deployments/{deployment_id}/schedules",
        json=[{"schedule": {"cron": "0 18 * * 5", "timezone": "Asia/Shanghai"}, "active": False}],
    ).raise_for_status()
    edited = {"45 7 * * *": ("Asia/Shanghai", True), "0 18 * * 5": ("Asia/Shanghai", False)}
    assert _schedules(api) == edited

    # Stopping serve pauses nothing; starting it again re-registers without touching them.
    stop(proc)
    assert _deployment(api)["paused"] is False
    before = _deployment(api)["updated"]
    proc, log = start("serve", *serve_argv)
    wait(
        "the deployment to be registered again",
        lambda: _deployment(api)["updated"] != before,
        60,
        [(proc, log)],
    )
    wait("the runner to start", lambda: "being served" in log.read_text(), 60, [(proc, log)])
    assert "exists: its schedules on the server are kept" in log.read_text()
    assert _schedules(api) == edited
    assert _deployment(api)["paused"] is False

    # Run the daily deployment for a given day, dry; it completes and leaves its artifact.
    created = api.post(
        f"/deployments/{deployment_id}/create_flow_run",
        json={"parameters": {"day": "2026-11-02", "dry_run": True}},
    )
    created.raise_for_status()
    run_id = created.json()["id"]

    def final_state() -> str | None:
        state = api.get(f"/flow_runs/{run_id}").json()["state"]["type"]
        return state if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    state = wait("the daily run", final_state, 90, [(proc, log)])
    assert state == "COMPLETED", log.read_text()[-4000:]
    artifacts = api.post(
        "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    [artifact] = [a for a in artifacts if a["key"] == "daily-report"]
    assert artifact["type"] == "markdown"
    assert "daily report 2026-11-02" in artifact["data"]
    assert "| dry\\_run | True |" in artifact["data"]  # keys escaped as markdown (md)

    # A failing run tells the admins through the outbox (no SMTP host: an .eml file).
    failing = api.post(
        f"/deployments/{deployment_id}/create_flow_run",
        json={"parameters": {"day": "2031-01-06", "dry_run": True}},  # a year with no calendar
    )
    failing.raise_for_status()
    run_id = failing.json()["id"]
    assert wait("the failing run", final_state, 90, [(proc, log)]) == "FAILED"
    outbox = Path(env["DUBAN_OUTBOX_DIR"])
    mails = wait("the alert e-mail", lambda: list(outbox.glob("*.eml")), 30, [(proc, log)])
    [mail] = [m.read_text(encoding="utf-8") for m in mails]
    assert "admin@duban.example" in mail
    assert "daily-report" in mail
    stop(proc)

    # A redeploy to a work pool keeps the admins' schedules too.
    api.post("/work_pools/", json={"name": "duban-test", "type": "process"}).raise_for_status()
    deployed = _duban(env, "deploy", "--work-pool", "duban-test", "--loop", "daily-report")
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed daily-report/daily-report to work pool duban-test" in deployed.stdout
    after = _deployment(api)
    assert after["work_pool_name"] == "duban-test"
    assert after["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
    ]
    assert after["entrypoint"] == "flows/daily.py:daily_report"
    assert _schedules(api) == edited
