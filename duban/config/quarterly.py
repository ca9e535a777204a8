"""config/spot_check.yaml: the quarterly spot check (季度抽查核验) — the size rule of the draw,
its secret (the environment variable DUBAN_SPOT_CHECK_SECRET overrides the file's) and the
ladder step a failed check is escalated to. See docs/spot-check.md."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from duban.config.base import ConfigError, Strict, parse_optional
from duban.config.city import EscalationFile
from duban.rules.sampling import SampleRule

FILE_NAME = "spot_check.yaml"
SECRET_ENV = "DUBAN_SPOT_CHECK_SECRET"
MIN_SECRET_LENGTH = 16


class SpotCheckConfig(Strict):
    """config/spot_check.yaml; every key is optional but the secret must come from
    somewhere (the file or DUBAN_SPOT_CHECK_SECRET) before anything is drawn."""

    min_count: int = Field(default=3, ge=0, le=10_000, description="at least this many a stratum")
    percent: Decimal = Field(
        default=Decimal("0.02"), ge=0, le=1, description="share of a stratum drawn, 0.02 = 2 %"
    )
    max_per_stratum: int | None = Field(default=None, ge=1, description="at most this many")
    secret: SecretStr | None = Field(
        default=None, description="the key of the draw; DUBAN_SPOT_CHECK_SECRET overrides it"
    )
    escalate_to: str = Field(
        default="supervision",
        description="the ladder step (config/escalation.yaml) whose level a failed check takes",
    )

    @property
    def rule(self) -> SampleRule:
        return SampleRule(self.min_count, self.percent, self.max_per_stratum)

    def describe(self) -> str:
        cap = f"，每层最多 {self.max_per_stratum} 项" if self.max_per_stratum else ""
        return (
            f"每层（单位 × 类型）抽取 max({self.min_count}, ⌈{_percent(self.percent)} × 总数⌉) 项，"
            f"不超过该层总数{cap}"
        )


def _percent(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


class _SecretFromEnvironment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUBAN_", env_file=".env", extra="ignore")

    spot_check_secret: SecretStr | None = None


def load_spot_check(root: Path) -> SpotCheckConfig:
    """spot_check.yaml of a config folder (defaults when absent), with the secret from
    DUBAN_SPOT_CHECK_SECRET (environment or .env) when that is set. ConfigError names the
    file, the key and the value — never the secret."""
    path = root / FILE_NAME
    loaded = parse_optional(path, SpotCheckConfig)
    # Checked here, not by a validator: a validation error would echo the value.
    if loaded.secret is not None and _too_short(loaded.secret):
        raise ConfigError([f"{path}: secret: must be at least {MIN_SECRET_LENGTH} characters long"])
    from_env = _SecretFromEnvironment().spot_check_secret
    if from_env is not None and from_env.get_secret_value().strip():
        if _too_short(from_env):
            raise ConfigError(
                [f"{SECRET_ENV}: must be at least {MIN_SECRET_LENGTH} characters long"]
            )
        loaded = loaded.model_copy(update={"secret": from_env})
    return loaded


def _too_short(secret: SecretStr) -> bool:
    return len(secret.get_secret_value().strip()) < MIN_SECRET_LENGTH


def secret_bytes(spot: SpotCheckConfig, root: Path) -> bytes:
    """The key of the draw; ConfigError when neither the file nor the environment has one."""
    if spot.secret is None or not spot.secret.get_secret_value().strip():
        raise ConfigError(
            [
                f"{root / FILE_NAME}: secret: no spot-check secret: set {SECRET_ENV} "
                f"(or `secret` in the file), at least {MIN_SECRET_LENGTH} characters"
            ]
        )
    return spot.secret.get_secret_value().strip().encode()


def failure_level(spot: SpotCheckConfig, escalation: EscalationFile, root: Path) -> int:
    """The ladder level (1-based) a failed check is recorded with: that of `escalate_to`."""
    steps = [s.step for s in escalation.steps]
    if spot.escalate_to not in steps:
        raise ConfigError(
            [
                f"{root / FILE_NAME}: escalate_to: unknown ladder step "
                f"{spot.escalate_to!r} (config/escalation.yaml has {', '.join(steps)})"
            ]
        )
    return steps.index(spot.escalate_to) + 1
