"""A flow run that meets an invalid configuration: Prefect logs the error, and with the
`duban` command's filter installed, not its traceback (the command prints the problems)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from duban.cli.errors import FLOW_RUN_LOGGER, quiet_config_tracebacks
from duban.config import ConfigError
from duban.settings import get_settings


def test_the_flow_run_log_of_a_config_error_has_no_traceback(
    config_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.daily import daily_report

    units = yaml.safe_load((config_dir / "units.yaml").read_text(encoding="utf-8"))
    units["units"][2]["kind"] = "village"
    (config_dir / "units.yaml").write_text(yaml.safe_dump(units, allow_unicode=True), "utf-8")
    monkeypatch.setenv("DUBAN_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("DUBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'duban.db'}")
    monkeypatch.setenv("DUBAN_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("DUBAN_REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(FLOW_RUN_LOGGER)
    logger.addHandler(handler)
    quiet_config_tracebacks()
    try:
        with pytest.raises(ConfigError, match=r"units\[2\]\.kind"):
            daily_report(dry_run=True)
    finally:
        get_settings.cache_clear()
        logger.removeHandler(handler)
        logger.filters.clear()
    failed = [r for r in records if "Encountered exception" in r.getMessage()]
    assert len(failed) == 1, [r.getMessage() for r in records]
    assert r"units[2].kind" in failed[0].getMessage()
    assert failed[0].exc_info is None and not failed[0].exc_text
