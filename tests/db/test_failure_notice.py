"""The on_failure hook e-mails the admins through the outbox, once per flow run."""

from __future__ import annotations

import shutil
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from duban.db import make_engine
from duban.db.models import Delivery, Notice
from duban.notices.alert import failure_notice, send_failure_notice
from duban.settings import Settings


def test_failure_notice_escapes_and_names_the_run() -> None:
    rendered = failure_notice(
        "daily-report", "<b>brave-fox</b>", "id-1", None, "boom <script>", {"day": "x"}, None
    )
    assert "&lt;b&gt;brave-fox&lt;/b&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert "boom <script>" in rendered.text
    assert "daily-report" in rendered.subject


def test_one_email_per_admin_per_flow_run(
    sqlite_template: Path, config_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(sqlite_template, tmp_path / "duban.db")
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    engine = make_engine(url)
    settings = Settings(
        database_url=url,
        config_dir=config_dir,
        reports_dir=tmp_path / "reports",
        outbox_dir=tmp_path / "outbox",
        smtp_host=None,
    )
    run_id = str(uuid4())
    kwargs = dict(
        flow_name="daily-report",
        run_name="brave-fox",
        run_id=run_id,
        started=datetime(2026, 11, 2, 8, 30),
        message="Flow run encountered an exception: CalendarError",
        parameters={"day": "2031-01-06"},
        settings=settings,
    )
    assert send_failure_notice(**kwargs) == 1  # type: ignore[arg-type]
    assert send_failure_notice(**kwargs) == 0  # type: ignore[arg-type]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Notice)) == 1
        assert conn.scalar(select(func.count()).select_from(Delivery)) == 1
        notice = conn.execute(select(Notice.loop, Notice.period, Notice.kind)).one()
    engine.dispose()
    assert notice == ("alert", "2026-11-02", run_id.replace("-", ""))


def test_the_alert_never_migrates_and_says_plainly_when_it_cannot_record(
    config_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from types import SimpleNamespace

    from duban.notices.alert import AlertNotSent
    from tasks.notify import notify_admins

    url = f"sqlite:///{tmp_path / 'empty.db'}"  # no tables: never migrated
    settings = Settings(
        database_url=url, config_dir=config_dir, reports_dir=tmp_path / "reports",
        outbox_dir=tmp_path / "outbox", smtp_host=None,
    )  # fmt: skip
    kwargs: dict[str, Any] = dict(
        flow_name="daily-report", run_name="brave-fox", run_id=str(uuid4()), started=None,
        message="boom", parameters={}, settings=settings,
    )  # fmt: skip
    with pytest.raises(AlertNotSent, match="not migrated by the alert"):
        send_failure_notice(**kwargs)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM sqlite_master").all() == []
    engine.dispose()

    import tasks.notify

    run = SimpleNamespace(
        name="brave-fox", id=uuid4(), start_time=None, expected_start_time=None, parameters={}
    )
    with_settings = partial(send_failure_notice, settings=settings)
    monkeypatch.setattr(tasks.notify, "send_failure_notice", with_settings)
    with caplog.at_level("ERROR", logger="duban.notify"):
        notify_admins(SimpleNamespace(name="daily-report"), run, SimpleNamespace(message="x"))
    assert [r.getMessage() for r in caplog.records][-1].startswith(
        "could not tell the admins that daily-report/brave-fox failed: the database cannot"
    )
