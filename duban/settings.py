"""Runtime settings, read from DUBAN_* environment variables (and a .env file if present).

Secrets (the SMTP password, a password inside the database URL) are never shown:
use `Settings.safe_database_url` and `SecretStr` when anything is printed or logged.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from duban.config.base import IANA_HINT, check_time_zone
from duban.resources import example_config, templates
from duban.rules.plain_text import control_character

SmtpSecurity = Literal["none", "starttls", "ssl"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUBAN_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/duban.db",
        description="SQLAlchemy URL of Duban's database; default a SQLite file under ./var/",
    )
    config_dir: Path = Field(
        default_factory=lambda: default_config_dir(),
        description="folder of the YAML config: ./config when the working folder has one, "
        "else the example city shipped with Duban (`duban init DIR` makes a city's own)",
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="the city's time zone: DUBAN_TIMEZONE when set (an override), else "
        "`timezone` of config/city.yaml, else Asia/Shanghai",
    )
    import_engine: Literal["columnar", "rows"] = Field(
        default="columnar",
        description="`duban import tickets`: columnar (pyarrow) or rows (the row-by-row "
        "path); both store and quarantine the same (docs/sources.md)",
    )
    smtp_host: str | None = Field(default=None, description="unset or empty: write .eml files")
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: SmtpSecurity = "none"
    mail_from: str = "duban@localhost"
    outbox_dir: Path = Field(default=Path("var/outbox"), description=".eml files without SMTP")
    reports_dir: Path = Field(default=Path("var/reports"), description="archive of notices")
    templates_dir: Path = Field(
        default_factory=lambda: templates(), description="Jinja2 mail templates (shipped)"
    )

    xlsx_reader: Literal["calamine", "openpyxl"] = Field(
        default="calamine",
        description="what reads an Excel export: calamine (fast); openpyxl, the slow reader "
        "it replaced, kept as a way out should calamine misread a workbook",
    )

    _timezone_origin: str = PrivateAttr(default="DUBAN_TIMEZONE")

    def model_post_init(self, context: Any) -> None:
        """Without DUBAN_TIMEZONE, the city's time zone is the one config/city.yaml names."""
        if "timezone" not in self.model_fields_set:
            from duban.config.city import city_timezone

            zone, origin = city_timezone(self.config_dir, None)
            self.timezone = zone
            self._timezone_origin = origin

    @property
    def timezone_origin(self) -> str:
        """Where `timezone` comes from: DUBAN_TIMEZONE, config/city.yaml or the default."""
        return self._timezone_origin

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_time_zone(value, IANA_HINT)

    @field_validator("database_url")
    @classmethod
    def _parsable_url(cls, value: str) -> str:
        try:
            make_url(value)
        except Exception as exc:
            # Never echo the URL: it may carry a password.
            raise ValueError("DUBAN_DATABASE_URL is not a valid SQLAlchemy URL") from exc
        return value

    @field_validator("mail_from", "smtp_host")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        found = control_character(value) if value else None
        if found is not None:
            raise ValueError(f"contains a control or line-separator character {found}")
        return value

    @field_validator("smtp_host")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def safe_database_url(self) -> str:
        return make_url(self.database_url).render_as_string(hide_password=True)


def default_config_dir() -> Path:
    """./config when the working folder has one, else the example city shipped with Duban."""
    here = Path("config")
    return here if here.is_dir() else example_config()


def uses_example_config(settings: Settings) -> bool:
    """Whether `settings` read the example city shipped with Duban (no city of its own)."""
    return Path(settings.config_dir).resolve() == example_config().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
