"""The logger of the current Prefect run, or a plain one when a task body runs outside
Prefect (called as a function, e.g. by a benchmark or a script)."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger() -> Any:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("duban")
