"""Screenshots of the Prefect UI pages an administrator uses, taken from a real server.

    .venv/bin/python docs/screenshots.py [--out var/screenshots] [--dir var/screens-demo]

Runs `duban demo --ui` on a small demo city (its own Prefect server on a free port, its
database in the demo folder), waits until the demo's loops are served, starts the monthly
bulletin of an earlier month from its deployment so that it pauses for approval, then
captures with headless Chromium (`apt-get install chromium`, and a CJK font for the
Chinese text, e.g. `apt-get install fonts-wqy-microhei`; tests/browser.py):

- deployments.png: the Deployments page (every loop, what it does and when);
- form-<deployment>.png: each deployment's *Custom run* form;
- paused-bulletin.png: the paused bulletin (its *Resume* button asks for the decision);
- draft-<artifact>.png: what its approver reads, one artifact a page (the headline, the
  text of the draft, the ranking and the named units as tables);
- finished-run.png and finished-<artifact>.png: a finished run and its artifacts (its key
  figures as a table in Chinese).

Everything is stopped at the end, on failure too. Not part of the test suite (it takes a
few minutes); tests/e2e/test_forms.py asserts what the forms say.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import FLAGS, chromium  # noqa: E402
from tests.e2e.processes import RetryingClient  # noqa: E402  (the server on SQLite: 503s)

DUBAN = Path(sys.executable).parent / "duban"
URL_LINE = re.compile(r"The Prefect UI: (http://127\.0\.0\.1:\d+)")
SCREEN = ("--window-size=1440,1100", "--virtual-time-budget=20000")


def wait(what: str, check: Any, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1.0)
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    raise SystemExit(f"timed out waiting for {what}; the demo's output ends:\n{tail}")


def shoot(page: str, png: Path, profile: Path) -> None:
    flags = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]
    subprocess.run(
        [chromium(), *flags, *SCREEN, f"--user-data-dir={profile}", f"--screenshot={png}", page],
        capture_output=True, timeout=180, check=False,
    )  # fmt: skip
    print(f"{png} {'ok' if png.exists() else 'MISSING'}  ({page})")


def shoot_artifacts(
    api: httpx.Client, url: str, run_id: str, prefix: str, out: Path, profile: Path
) -> None:
    """Each artifact page of the flow run `run_id` (the run page's tabs are not addressable)."""
    artifacts = api.post(
        "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    for artifact in artifacts:
        if artifact["key"]:
            shoot(f"{url}/artifacts/artifact/{artifact['id']}",
                  out / f"{prefix}-{artifact['key']}.png", profile)  # fmt: skip


def final_or_paused(api: httpx.Client, run_id: str) -> str | None:
    state = api.get(f"/flow_runs/{run_id}").json()["state"]["type"]
    return state if state in {"PAUSED", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="var/screenshots", help="where the PNGs go")
    parser.add_argument("--dir", default="var/screens-demo", help="the demo's folder")
    parser.add_argument("--month", default="2026-09", help="the bulletin left paused")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DUBAN_"))}
    argv = [str(DUBAN), "demo", "--ui", "--dir", args.dir, "--daily-volume", "300",
            "--daily-runs", "2"]  # fmt: skip
    with log.open("wb") as sink:
        demo = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        url = wait("the UI's address", lambda: URL_LINE.search(log.read_text()), 1500, log)[1]
        api = RetryingClient(base_url=f"{url}/api", timeout=30)

        def deployments() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.post("/deployments/filter", json={}).json()
            return found if len(found) >= 7 and "being served" in log.read_text() else []

        served = wait("the served deployments", deployments, 300, log)
        by_name = {d["name"]: d for d in served}
        monthly = by_name["monthly-bulletin"]
        created = api.post(
            f"/deployments/{monthly['id']}/create_flow_run",
            json={"parameters": {"month": args.month, "approval_poll_seconds": 2}},
        )
        created.raise_for_status()
        paused = created.json()["id"]
        state = wait("the bulletin to pause for approval",
                     lambda: final_or_paused(api, paused), 600, log)  # fmt: skip
        if state != "PAUSED":
            raise SystemExit(f"the bulletin of {args.month} ended {state} instead of pausing")

        profile = out / "chromium-profile"
        shoot(f"{url}/deployments", out / "deployments.png", profile)
        for name, deployment in sorted(by_name.items()):
            run_form = f"{url}/deployments/deployment/{deployment['id']}/run"
            shoot(run_form, out / f"form-{name}.png", profile)
        shoot(f"{url}/runs/flow-run/{paused}", out / "paused-bulletin.png", profile)
        shoot_artifacts(api, url, paused, "draft", out, profile)
        finished = api.post(
            "/flow_runs/filter",
            json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
                  "sort": "END_TIME_DESC", "limit": 1},
        ).json()  # fmt: skip
        if finished:
            shoot(f"{url}/runs/flow-run/{finished[0]['id']}", out / "finished-run.png", profile)
            shoot_artifacts(api, url, finished[0]["id"], "finished", out, profile)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
    print(f"screenshots in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
