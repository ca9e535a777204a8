"""What every section of the config shares: the error, the strict model, reading a YAML file
into a model with errors that name the file, the path inside it and the bad value, and the
checks several sections make (a time zone, weights of rates, a lookup by name)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
IANA_HINT = " (use an IANA name)"


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def format_loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a path: ``units[3].supervisor``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            [f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None


def parse_file(path: Path, model: type[M]) -> M:
    """Read `path` and validate it as `model`, or raise ConfigError naming file, path and value."""
    data = read_yaml(path)
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            problems.append(f"{path}: {format_loc(err['loc'])}: {err['msg']}{shown}")
        raise ConfigError(problems) from None


def parse_optional(path: Path, model: type[M]) -> M:
    """`parse_file` for a file that may be absent: then the model's defaults."""
    return parse_file(path, model) if path.exists() else model()


def check_time_zone(value: str, hint: str = "") -> str:
    """`value` when it names a time zone of the IANA database; ValueError otherwise
    ("unknown time zone 'X'" and `hint`)."""
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(value)
    except Exception as exc:
        raise ValueError(f"unknown time zone {value!r}{hint}") from exc
    return value


# The "percent hack" and bang paths: a relay that honours them sends `a%evil.com@duban.example`
# on to evil.com. RFC 5322 allows both characters, so the validator does too; we do not.
_ROUTING = "%!"


def check_email(value: str) -> str:
    """`value` when it is one e-mail address (by `email-validator`, without asking DNS, and
    without routing characters before the @-sign); ValueError saying why otherwise."""
    from email_validator import EmailNotValidError, validate_email

    try:
        address = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address: {exc}") from None
    routing = sorted(set(address.local_part) & set(_ROUTING))
    if routing:
        raise ValueError(
            f"not an e-mail address: {routing[0]!r} before the @-sign would route the mail "
            "through another host"
        )
    return value


EmailAddress = Annotated[str, AfterValidator(check_email)]


def check_weights(key: str, weights: Mapping[str, float], known: Collection[str]) -> None:
    """Weights of rates: each of a known rate, none negative, at least one above 0."""
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ValueError(f"{key}: unknown rate {unknown[0]!r}; one of {', '.join(known)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"{key}: a weight cannot be negative")
    if sum(weights.values()) <= 0:
        raise ValueError(f"{key}: at least one weight must be above 0")


def find(items: Iterable[T], key: Callable[[T], object], wanted: object) -> T:
    """The first of `items` whose `key` is `wanted`; KeyError(wanted) when none is."""
    for item in items:
        if key(item) == wanted:
            return item
    raise KeyError(wanted)
