"""What every loop needs: settings, validated config, the database, the templates."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment
from sqlalchemy import Engine

from duban.config import CityConfig, load_config
from duban.db import make_engine, upgrade
from duban.notices.render import make_environment
from duban.settings import Settings, get_settings


@dataclass
class LoopContext:
    settings: Settings
    config: CityConfig
    engine: Engine
    templates: Environment


def load_context(settings: Settings | None = None) -> LoopContext:
    settings = settings or get_settings()
    config = load_config(settings.config_dir)
    problems = config.validate_all()
    if problems:
        from duban.config import ConfigError

        raise ConfigError(problems)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return LoopContext(settings, config, engine, make_environment(settings.templates_dir))
