"""The run bracket every flow shares (flows/bracket.py): one runs row per flow run, failed with
the error's name when the body raises, skipped on a day with nothing to do, and the engine
disposed whatever happens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from sqlalchemy import Engine, select

from duban.config import load_config
from duban.context import LoopContext
from duban.db import session_scope
from duban.db.models import Run
from duban.notices.render import make_environment
from duban.settings import Settings
from flows.bracket import loop_run, skipped

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def ctx(engine: Engine, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    disposed: list[int] = []
    dispose = engine.dispose
    monkeypatch.setattr(engine, "dispose", lambda *a, **k: (disposed.append(1), dispose())[1])
    settings = Settings(database_url="sqlite://", config_dir=config_dir, reports_dir=tmp_path)
    context = LoopContext(settings, load_config(config_dir), engine, make_environment(TEMPLATES))
    return context, disposed


def _runs(engine: Engine) -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    with session_scope(engine) as session:
        return [
            (r.loop, r.period, r.status, r.parameters, r.summary)
            for r in session.scalars(select(Run).order_by(Run.id))
        ]


@pytest.mark.parametrize("in_a_flow", [False, True])
def test_a_body_that_raises_records_failed_with_the_error_name(ctx: Any, in_a_flow: bool) -> None:
    context, disposed = ctx

    def body() -> None:
        with loop_run(context, "weekly", "week", "2026-W45", {"week": "2026-W45"}, True):
            raise KeyError("boom")

    if in_a_flow:
        assert flow(name="bracket-test")(body)(return_state=True).is_failed()
    else:
        with pytest.raises(KeyError):
            body()
    assert _runs(context.engine) == [
        ("weekly", "2026-W45", "failed", {"week": "2026-W45"},
         {"week": "2026-W45", "error": "KeyError"}),
    ]  # fmt: skip
    assert disposed == [1]


def test_finish_records_the_summary_and_skipped_its_reason(ctx: Any) -> None:
    context, disposed = ctx

    @flow(name="bracket-test-ok")
    def fine() -> dict[str, Any]:
        with loop_run(context, "annual", "year", "2025", {"year": 2025}, False) as run:
            run.finish({"year": "2025", "status": "ok"})
        return skipped(context, "annual", "year", "2026", "2026-01-05 is not the first day")

    assert fine() == {"year": "2026", "skipped": "2026-01-05 is not the first day",
                      "status": "skipped"}  # fmt: skip
    assert _runs(context.engine) == [
        ("annual", "2025", "ok", {"year": 2025}, {"year": "2025", "status": "ok"}),
        ("annual", "2026", "skipped", {"year": None},
         {"year": "2026", "skipped": "2026-01-05 is not the first day"}),
    ]  # fmt: skip
    assert disposed == [1, 1]


def test_a_run_with_nothing_to_do_ends_skipped_and_says_why(ctx: Any) -> None:
    """Not a green "Completed" that did nothing: the state is named "Skipped", its message
    and the run's artifact give the reason; a caller still gets the summary."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    context, _ = ctx
    reason = "2026-01-05 is not the first working day of the year"

    @flow(name="bracket-test-skipped")
    def nothing() -> dict[str, Any]:
        return skipped(context, "annual", "year", "2026", reason)

    state = nothing(return_state=True)
    assert state.is_completed() and state.name == "Skipped" and state.message == reason
    assert state.result() == {"year": "2026", "skipped": reason, "status": "skipped"}
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    by_key = {a.key: a for a in found}
    assert reason in str(by_key["annual-skipped"].data)
    figures = by_key["annual-skipped-figures"].data
    rows = json.loads(figures) if isinstance(figures, str) else figures
    assert rows == [{"指标": "原因", "键": "reason", "数值": reason}]
