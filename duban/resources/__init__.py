"""What ships with the package besides code: the mail templates and the example city's
configuration, so that `duban` works from any folder.

In the repository they live at the top (templates/, config/; this package holds links to
them); an installed wheel carries copies (pyproject.toml, package-data). Found through
importlib.resources either way.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["example_config", "shipped", "templates"]


def shipped(name: str) -> Path:
    """The folder `name` shipped with the package ("templates" or "config")."""
    return Path(str(files(__package__ or "duban.resources") / name))


def templates() -> Path:
    """The mail templates (the default of DUBAN_TEMPLATES_DIR)."""
    return shipped("templates")


def example_config() -> Path:
    """The example city's configuration (`duban init` copies it; the default of
    DUBAN_CONFIG_DIR when the working folder has no config/)."""
    return shipped("config")
