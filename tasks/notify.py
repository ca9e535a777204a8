"""Tell the administrators (config/mail.yaml `admins`) when a flow run fails.

`notify_admins` is a Prefect `on_failure` hook: `@flow(..., on_failure=[notify_admins])`.
It goes through Duban's own outbox, like every other e-mail: a notice (loop "alert",
period the day of the run, audience "admins", kind the flow run's id) is archived under
DUBAN_REPORTS_DIR/alert/<day>/ and delivered to each admin once. A hook that runs again
for the same flow run (a retry that fails again, a re-run of the hook) finds the notice
and its deliveries and sends nothing twice; a delivery that could not be sent stays pending
and goes out with the next run of any loop.

A hook must never make things worse: any error here is logged, not raised.
"""

from __future__ import annotations

import html
import logging
import os
import socket
from datetime import datetime
from typing import Any

from duban.notices.render import Rendered

log = logging.getLogger("duban.notify")

LOOP = "alert"
AUDIENCE = "admins"


def failure_notice(
    flow_name: str,
    run_name: str,
    run_id: str,
    started: datetime | None,
    message: str,
    parameters: dict[str, Any],
    link: str | None,
    subject_prefix: str = "",
) -> Rendered:
    """The e-mail telling admins that a flow run failed (plain values in, text out)."""
    when = f"{started:%Y-%m-%d %H:%M}" if started else "(not started)"
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(parameters.items())) or "(defaults)"
    lines = [
        f"The flow run {run_name} of {flow_name} failed.",
        "",
        f"flow: {flow_name}",
        f"run: {run_name} ({run_id})",
        f"started: {when}",
        f"parameters: {params}",
        f"error: {message or '(no message)'}",
    ]
    if link:
        lines.append(f"details and logs: {link}")
    lines += [
        "",
        "Nothing is lost: the next run of the loop catches up what this one did not do.",
        "Re-run it from the Prefect UI once the cause is fixed.",
    ]
    text = "\n".join(lines)
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in (
            ("flow", flow_name),
            ("run", f"{run_name} ({run_id})"),
            ("started", when),
            ("parameters", params),
            ("error", message or "(no message)"),
        )
    )
    link_html = (
        f"<p><a href='{html.escape(link, quote=True)}'>details and logs</a></p>" if link else ""
    )
    body = (
        f"<html><body><p>The flow run <b>{html.escape(run_name)}</b> of "
        f"<b>{html.escape(flow_name)}</b> failed.</p><table>{rows}</table>{link_html}"
        "<p>Nothing is lost: the next run of the loop catches up what this one did not do. "
        "Re-run it from the Prefect UI once the cause is fixed.</p></body></html>"
    )
    subject = f"{subject_prefix}运行失败 failed: {flow_name} / {run_name}"
    return Rendered(subject=subject, html=body, text=text)


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
        )
        log.info("failure of %s/%s: %s e-mails sent to admins", flow.name, flow_run.name, sent)
    except Exception:
        log.exception("could not tell the admins that %s/%s failed", flow.name, flow_run.name)


def send_failure_notice(
    *,
    flow_name: str,
    run_name: str,
    run_id: str,
    started: datetime | None,
    message: str,
    parameters: dict[str, Any],
    settings: Any = None,
) -> int:
    """Archive the failure notice once per run id, enqueue it to each admin, deliver it.

    Returns the number of e-mails sent now (0 when they had been sent already).
    """
    from duban.config import load_config
    from duban.db import make_engine, session_scope, upgrade
    from duban.notices.mailer import make_mailer
    from duban.notices.outbox import deliver_pending, enqueue
    from duban.notices.render import archive_notice
    from duban.settings import get_settings
    from tasks.deliver import message_for

    settings = settings or get_settings()
    config = load_config(settings.config_dir)
    mail = config.mail
    if not mail.admins:
        log.warning("%s/%s failed; config/mail.yaml names no admins to tell", flow_name, run_name)
        return 0
    day = (started or datetime.now(settings.zone)).astimezone(settings.zone)
    rendered = failure_notice(
        flow_name, run_name, run_id, started, message, parameters, _ui_link(run_id),
        subject_prefix=mail.subject_prefix,
    )  # fmt: skip
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            notice = archive_notice(
                session,
                settings.reports_dir,
                loop=LOOP,
                period=f"{day:%Y-%m-%d}",
                audience=AUDIENCE,
                kind=run_id.replace("-", ""),  # unique per flow run: the key of idempotence
                rendered=rendered,
            )
            session.flush()
            notice_id = notice.id
            enqueue(session, notice_id, mail.admins, mail)
        mailer = make_mailer(settings)
        try:
            report = deliver_pending(
                engine, mailer, message_for, mail,
                worker=f"{socket.gethostname()}:{os.getpid()}", notice_ids=[notice_id],
            )  # fmt: skip
        finally:
            mailer.close()
        return report.sent
    finally:
        engine.dispose()
