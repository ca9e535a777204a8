"""How the `duban` command reports an invalid configuration met at run time: one line per
problem (``duban: <file>: <key>: <problem>``), exit code 1, no traceback — neither its own
nor the one Prefect's flow-run logger would print when a flow meets the error."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from duban.config import ConfigError

CONFIG_ERROR_EXIT = 1
FLOW_RUN_LOGGER = "prefect.flow_runs"  # where Prefect logs "Encountered exception …"


class NoConfigTraceback(logging.Filter):
    """Keeps a record of a ConfigError but drops its traceback: the problems are the news."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ConfigError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_config_tracebacks(logger_name: str = FLOW_RUN_LOGGER) -> None:
    """Install NoConfigTraceback on `logger_name` (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, NoConfigTraceback) for f in logger.filters):
        logger.addFilter(NoConfigTraceback())


def report_config_error(exc: ConfigError, stream: TextIO | None = None) -> int:
    """Print one line per problem of `exc`; the exit code."""
    for problem in exc.problems:
        print(f"duban: {problem}", file=stream or sys.stderr)
    return CONFIG_ERROR_EXIT
