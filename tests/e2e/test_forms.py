"""The Prefect UI explains itself: every deployment's *Custom run* form, read back from a real
server, has a title and a description for every parameter (and every field of a model
parameter), and the approval form of a paused bulletin makes the decision an explicit,
required choice.

Starts `prefect server start` (SQLite, its own PREFECT_HOME, a free port), registers every
loop of config/schedules.yaml (the scheduled look-back enabled too) with `duban deploy`,
and reads each deployment through the Prefect client (`read_deployment`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from prefect.client.orchestration import SyncPrefectClient

from flows.monthly import APPROVE, REJECT, BulletinApproval
from tests.e2e.processes import BIN, REPO, RetryingClient, wait

LOOPS = {
    "daily-report/daily-report": {"day", "dry_run"},
    "weekly-analysis/weekly-analysis": {"week", "dry_run"},
    "monthly-bulletin/monthly-bulletin": {
        "month",
        "dry_run",
        "wait_for_approval",
        "approval_timeout_hours",
        "approval_poll_seconds",
        "correct",
    },
    "quarterly-spot-check/quarterly-spot-check": {"quarter", "dry_run"},
    "annual-evaluation/annual-evaluation": {"year", "dry_run"},
    "lookback/lookback": {"request"},
    "decide/decide": {"decision"},
    "scheduled-lookback/scheduled-lookback": {"day"},
    "outbox-retry/outbox-retry": {"status", "ids"},
}


def unexplained(schema: dict[str, Any]) -> list[str]:
    """The parameters (and fields of model parameters) without a title of their own or a
    description: what the form would show as a bare name."""
    missing = []
    models = {"": schema, **{f"{n}.": d for n, d in (schema.get("definitions") or {}).items()}}
    for prefix, model in models.items():
        for name, prop in (model.get("properties") or {}).items():
            title, description = prop.get("title") or "", prop.get("description") or ""
            if title in ("", name) or not description.strip():
                missing.append(f"{prefix}{name}")
            if {"type": "null"} in prop.get("anyOf", []):
                missing.append(f"{prefix}{name} (a 'None' branch)")
    return missing


def test_every_deployment_form_explains_its_parameters(
    env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    schedules = Path(env["DUBAN_CONFIG_DIR"]) / "schedules.yaml"
    text = schedules.read_text(encoding="utf-8")
    schedules.write_text(text.replace("enabled: false", "enabled: true"), encoding="utf-8")
    port = env["PREFECT_SERVER_API_PORT"]
    server = start("prefect-server", str(BIN / "prefect"), "server", "start",
                   "--host", "127.0.0.1", "--port", port)  # fmt: skip
    api = RetryingClient(base_url=env["PREFECT_API_URL"], timeout=30)
    wait("the Prefect server", lambda: api.get("/health").status_code == 200, 120, [server])
    api.post("/work_pools/", json={"name": "forms", "type": "process"}).raise_for_status()
    deployed = subprocess.run(
        [str(BIN / "duban"), "deploy", "--work-pool", "forms"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr[-3000:]

    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        found = {}
        for deployment in client.read_deployments():
            full = client.read_deployment(deployment.id)
            flow = client.read_flow(full.flow_id)
            found[f"{flow.name}/{full.name}"] = full
    assert set(found) == set(LOOPS)
    for name, deployment in found.items():
        schema = deployment.parameter_openapi_schema or {}
        assert set(schema.get("properties") or {}) == LOOPS[name], name
        assert unexplained(schema) == [], name
        assert deployment.description, name  # what the loop does and when
    daily = found["daily-report/daily-report"]
    assert "工作日" in (daily.description or "") and "working days" in (daily.description or "")
    request = found["lookback/lookback"].parameter_openapi_schema["definitions"]["LookbackRequest"]
    assert request["properties"]["same_place"]["enum"] == ["address", "community", "street"]
    assert found["monthly-bulletin/monthly-bulletin"].parameters == {"wait_for_approval": True}
    month = found["monthly-bulletin/monthly-bulletin"].parameter_openapi_schema["properties"]
    assert month["month"]["type"] == "string" and "YYYY-MM" in month["month"]["description"]


def test_the_approval_decision_is_an_explicit_required_choice() -> None:
    schema = BulletinApproval.model_json_schema()
    assert set(schema["required"]) == {"decision", "approver"}
    assert schema["properties"]["decision"]["enum"] == [APPROVE, REJECT]
    assert "default" not in schema["properties"]["decision"]
    assert unexplained(schema) == []
    assert BulletinApproval(decision=APPROVE, approver="张主任").approved
    assert not BulletinApproval(decision=REJECT, approver="张主任").approved
