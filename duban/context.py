"""What every loop needs: settings, validated config, the database, the templates."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment
from sqlalchemy import Engine

from duban.config import CityConfig, load_config
from duban.db import make_engine, upgrade
from duban.notices.render import archive_folder, make_environment
from duban.settings import Settings, get_settings

# Alembic's upgrade installs module globals (alembic.context): two flows started at once in
# one process (threads) must not migrate at the same time.
_UPGRADE_LOCK = threading.Lock()


@dataclass
class LoopContext:
    settings: Settings
    config: CityConfig
    engine: Engine
    templates: Environment

    def today(self) -> date:
        """Today in the city's time zone."""
        return today_in_city(self.settings)

    def archive_folder(self, loop: str, period: str, dry_run: bool) -> Path:
        """DUBAN_REPORTS_DIR/<loop>/<period>/ (under dry-run/ in a dry run): the period's
        notices, and its charts, workbooks and CSV files beside them."""
        return archive_folder(self.settings.reports_dir, loop, period, dry_run)


def today_in_city(settings: Settings | None = None) -> date:
    """Today in the city's time zone (settings.timezone), whatever the machine's zone."""
    return datetime.now((settings or get_settings()).zone).date()


def load_context(settings: Settings | None = None) -> LoopContext:
    settings = settings or get_settings()
    config = load_config(settings.config_dir)
    problems = config.validate_all()
    if problems:
        from duban.config import ConfigError

        raise ConfigError(problems)
    engine = make_engine(settings.database_url)
    with _UPGRADE_LOCK:
        upgrade(engine)
    return LoopContext(settings, config, engine, make_environment(settings.templates_dir))
