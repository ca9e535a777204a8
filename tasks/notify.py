"""Tell the administrators (config/mail.yaml `admins`) when a flow run fails.

`notify_admins` is a Prefect `on_failure` hook: `@flow(..., on_failure=[notify_admins])`.
It reads the failed run from Prefect and sends the failure alert of duban/notices/alert.py
(templates/mail/failure_alert.*.j2) through Duban's own outbox, once per flow run.

A hook must never make things worse: any error here is logged, not raised.
"""

from __future__ import annotations

import logging
from typing import Any

from duban.notices.alert import AlertNotSent, send_failure_notice

log = logging.getLogger("duban.notify")


def _ui_link(run_id: str) -> str | None:
    try:
        from prefect.settings import get_current_settings

        ui = get_current_settings().ui_url
    except Exception:
        return None
    return f"{str(ui).rstrip('/')}/runs/flow-run/{run_id}" if ui else None


def notify_admins(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook: e-mail config/mail.yaml `admins`, once per flow run."""
    try:
        sent = send_failure_notice(
            flow_name=flow.name,
            run_name=flow_run.name,
            run_id=str(flow_run.id),
            started=flow_run.start_time or flow_run.expected_start_time,
            message=str(getattr(state, "message", "") or ""),
            parameters=dict(flow_run.parameters or {}),
            link=_ui_link(str(flow_run.id)),
        )
        log.info("failure of %s/%s: %s e-mails sent to admins", flow.name, flow_run.name, sent)
    except AlertNotSent as exc:
        log.error("could not tell the admins that %s/%s failed: %s", flow.name, flow_run.name, exc)
    except Exception:
        log.exception("could not tell the admins that %s/%s failed", flow.name, flow_run.name)
