"""The production path end to end: a Prefect server on PostgreSQL, Duban's data on
PostgreSQL, the deployments registered to a `process` work pool by `duban deploy`, a
`prefect worker` that runs them, and a real SMTP server.

Staff start a look-back through the API with the parameters of its form, as the UI's
custom run does; a worker picks it up and runs it to completion; its artifact is on the
server and its e-mails arrive at the SMTP server. Both databases are created for the test
and dropped afterwards; every process is stopped on failure too.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from duban.db import make_engine
from duban.db.models import TicketStatus
from tests.conftest import PG_URL
from tests.e2e.processes import BIN, REPO, RetryingClient, wait
from tests.flows.helpers import add_ticket

pytestmark = pytest.mark.postgres


def _url(database: str, driver: str) -> str:
    base = make_engine(PG_URL).url
    return base.set(drivername=f"postgresql+{driver}", database=database).render_as_string(
        hide_password=False
    )


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Two fresh PostgreSQL databases: Prefect's (with pg_trgm) and Duban's."""
    suffix = uuid.uuid4().hex[:8]
    names = {"prefect": f"prefect_e2e_{suffix}", "duban": f"duban_e2e_{suffix}"}
    admin = create_engine(make_engine(PG_URL).url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        prefect_db = create_engine(make_engine(PG_URL).url.set(database=names["prefect"]))
        with prefect_db.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        prefect_db.dispose()
        yield {
            "prefect": _url(names["prefect"], "asyncpg"),
            "duban": _url(names["duban"], "psycopg"),
        }
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _seed(duban_url: str) -> None:
    """Jianguomen's J-BACK came back within the window (J-AGAIN: same address, category);
    Donghuamen's D-FINE did not."""
    engine = make_engine(duban_url)
    d = datetime
    add_ticket(engine, "J-BACK", "dc-jianguomen", d(2026, 9, 1, 9), d(2026, 9, 6, 18),
               status=TicketStatus.closed, closed_at=d(2026, 9, 3, 17), resolved=True)  # fmt: skip
    add_ticket(engine, "J-AGAIN", "dc-jianguomen", d(2026, 9, 20, 8), d(2026, 9, 25, 18))
    add_ticket(engine, "D-FINE", "dc-donghuamen", d(2026, 9, 2, 9), d(2026, 9, 7, 18),
               street="东华门街道", address="东华门大街5号", status=TicketStatus.closed,
               closed_at=d(2026, 9, 6, 17), resolved=True)  # fmt: skip
    engine.dispose()


def test_a_worker_runs_a_lookback_started_from_its_form(
    env: dict[str, str],
    start: Callable[..., Any],
    databases: dict[str, str],
    smtp_server: Any,
) -> None:
    env.update(
        {
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": databases["prefect"],
            "DUBAN_DATABASE_URL": databases["duban"],
            "DUBAN_SMTP_HOST": smtp_server.host,
            "DUBAN_SMTP_PORT": str(smtp_server.port),
            "DUBAN_SMTP_SECURITY": "none",
            "DUBAN_MAIL_FROM": "duban@duban.example",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
        }
    )
    port = env["PREFECT_SERVER_API_PORT"]
    server = start("prefect-server", str(BIN / "prefect"), "server", "start",
                   "--host", "127.0.0.1", "--port", port)  # fmt: skip
    api = RetryingClient(base_url=env["PREFECT_API_URL"], timeout=30)
    wait("the Prefect server on PostgreSQL", lambda: api.get("/health").status_code == 200,
          120, [server])  # fmt: skip
    # The server keeps its state in PostgreSQL, not in a SQLite file under PREFECT_HOME.
    assert not list(Path(env["PREFECT_HOME"]).glob("*.db"))

    def duban(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "duban"), *argv], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=180)  # fmt: skip

    synced = duban("sync")
    assert synced.returncode == 0, synced.stderr
    _seed(databases["duban"])

    api.post("/work_pools/", json={"name": "duban-prod", "type": "process"}).raise_for_status()
    deployed = duban("deploy", "--work-pool", "duban-prod", "--loop", "lookback")
    assert deployed.returncode == 0, deployed.stderr
    deployment = api.get("/deployments/name/lookback/lookback").json()
    assert deployment["work_pool_name"] == "duban-prod"
    assert deployment["schedules"] == []  # started from its form, never on a schedule
    # The form: typed parameters with titles, a drop-down for the notion of "same place".
    schema = deployment["parameter_openapi_schema"]
    request_schema = schema["definitions"]["LookbackRequest"]["properties"]
    assert request_schema["same_place"]["enum"] == ["address", "community", "street"]
    assert request_schema["closed_from"]["format"] == "date"

    worker = start("worker", str(BIN / "prefect"), "worker", "start",
                   "--pool", "duban-prod", "--type", "process")  # fmt: skip
    created = api.post(
        f"/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"request": {"closed_from": "2026-09-01", "closed_to": "2026-09-30"}}},
    )
    created.raise_for_status()
    run_id = created.json()["id"]

    def final_state() -> str | None:
        state = api.get(f"/flow_runs/{run_id}").json()["state"]["type"]
        return state if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    state = wait("the look-back run on the worker", final_state, 240, [server, worker])
    assert state == "COMPLETED", worker[1].read_text()[-4000:]

    artifacts = api.post(
        "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    [artifact] = [a for a in artifacts if a["key"] == "lookback"]
    assert "J-BACK" in artifact["data"] and "D-FINE" not in artifact["data"]

    recipients = {r for m in smtp_server.messages for r in m.rcpt_tos}
    assert recipients == {"office@duban.example", "jianguomen@duban.example"}
    [unit_mail] = [m for m in smtp_server.messages if "jianguomen@duban.example" in m.rcpt_tos]
    assert "J-BACK" in unit_mail.part("plain") and "回头看" in unit_mail.message["Subject"]
