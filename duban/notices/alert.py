"""The failure alert: tell the administrators (config/mail.yaml `admins`) that a flow run
failed — rendered from templates/mail/failure_alert.*.j2, sent through the outbox.

A notice (loop "alert", period the day of the run, audience "admins", kind the flow run's
id) is archived under DUBAN_REPORTS_DIR/alert/<day>/ and delivered to each admin once. An
alert sent again for the same flow run finds the notice and its deliveries and sends
nothing twice; a delivery that could not be sent stays pending and goes out with the next
run of any loop.

The alert never migrates the database: it is sent when something already went wrong, and
uses the outbox tables as they are. When it cannot reach them it says so in one log line
(`AlertNotSent`). The Prefect hook is tasks/notify.py `notify_admins`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from jinja2 import Environment
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from duban.config import MailFile, load_config
from duban.db import make_engine, session_scope
from duban.notices.deliver import deliver
from duban.notices.outbox import enqueue
from duban.notices.render import Rendered, archive_notice, make_environment, render_notice
from duban.notices.todo import todo
from duban.resources import templates
from duban.settings import Settings, get_settings

__all__ = [
    "AUDIENCE",
    "LOOP",
    "TEMPLATE",
    "AlertNotSent",
    "database_lost_alert",
    "failure_notice",
    "record_alert",
    "send_failure_notice",
]

log = logging.getLogger("duban.notify")

LOOP = "alert"
AUDIENCE = "admins"
TEMPLATE = "failure_alert"
# The templates shipped with Duban: used when DUBAN_TEMPLATES_DIR has no failure alert.
SHIPPED_TEMPLATES = templates()


class AlertNotSent(RuntimeError):
    """The database (its outbox tables) cannot be used: the alert was not recorded."""


def _environment(settings: Settings | None) -> Environment:
    templates = (settings or get_settings()).templates_dir
    if not (templates / "mail" / f"{TEMPLATE}.txt.j2").is_file():
        templates = SHIPPED_TEMPLATES
    return make_environment(templates)


def failure_notice(
    flow_name: str,
    run_name: str,
    run_id: str,
    started: datetime | None,
    message: str,
    parameters: dict[str, Any],
    link: str | None,
    subject_prefix: str = "",
    *,
    settings: Settings | None = None,
) -> Rendered:
    """The e-mail telling admins that a flow run failed (plain values in, text out)."""
    context = {
        "subject_prefix": subject_prefix,
        "flow_name": flow_name,
        "run_name": run_name,
        "run_id": run_id,
        "started": f"{started:%Y-%m-%d %H:%M}" if started else "（未开始）(not started)",
        "parameters": ", ".join(f"{k}={v!r}" for k, v in sorted(parameters.items()))
        or "（默认）(defaults)",
        "error": message or "（无错误信息）(no message)",
        "link": link,
        "todo": todo(
            "查明失败原因并排除后，在 Prefect 界面重新运行该流程（Find the cause, fix it, and "
            "re-run the flow from the Prefect UI）",
            "尽快，最迟在该流程下次按计划运行前 (before its next scheduled run)",
        ),
    }
    return render_notice(_environment(settings), TEMPLATE, context, collapse=False)


def record_alert(
    engine: Engine, settings: Settings, mail: MailFile, run_id: str, day: datetime,
    rendered: Rendered,
) -> int:  # fmt: skip
    """Archive the alert once per run id and enqueue it to each admin; its notice id."""
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
    return notice_id


def database_lost_alert(
    engine: Engine, settings: Settings, mail: MailFile, worker: str, lost: list[str]
) -> int:
    """Tell the admins that the database was lost while `worker` (one delivery pass,
    "host:pid/<hex>") was sending, and waited out: once per pass. The e-mails sent now."""
    if not mail.admins:
        return 0
    now = datetime.now(settings.zone)
    process, _, token = worker.rpartition("/")
    message = (
        f"the database connection was lost {len(lost)} times while sending e-mails "
        f"(first: {lost[0]}); the delivery waited for the database and recorded every "
        "outcome once it was back: nothing was sent twice. Check the database server."
    )
    rendered = failure_notice(
        "delivery", process or worker, worker, now, message, {}, None,
        subject_prefix=mail.subject_prefix, settings=settings,
    )  # fmt: skip
    notice_id = record_alert(engine, settings, mail, f"dblost{token[:24]}", now, rendered)
    label = f"alert: database lost during {worker}"
    sent = deliver(engine, settings, mail, notice_ids=[notice_id], label=label, logger=log)
    return sent["sent"]


def send_failure_notice(
    *, flow_name: str, run_name: str, run_id: str, started: datetime | None, message: str,
    parameters: dict[str, Any], link: str | None = None, settings: Settings | None = None,
) -> int:  # fmt: skip
    """Archive the failure notice once per run id, enqueue it to each admin, deliver it.

    Returns the number of e-mails sent now (0 when they had been sent already). Raises
    AlertNotSent when the database cannot be used as it is.
    """
    settings = settings or get_settings()
    mail = load_config(settings.config_dir).mail
    if not mail.admins:
        log.warning("%s/%s failed; config/mail.yaml names no admins to tell", flow_name, run_name)
        return 0
    day = (started or datetime.now(settings.zone)).astimezone(settings.zone)
    rendered = failure_notice(
        flow_name, run_name, run_id, started, message, parameters, link,
        subject_prefix=mail.subject_prefix, settings=settings,
    )  # fmt: skip
    engine = make_engine(settings.database_url)
    try:
        notice_id = record_alert(engine, settings, mail, run_id, day, rendered)
        delivered = deliver(
            engine, settings, mail, notice_ids=[notice_id], label=f"alert {run_id}", logger=log
        )
        return delivered["sent"]
    except SQLAlchemyError as exc:
        raise AlertNotSent(
            f"the database cannot record the alert ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); it is not migrated by the alert"
        ) from exc
    finally:
        engine.dispose()
