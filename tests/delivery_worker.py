"""A delivery worker in its own process, for the kill -9 test (tests/db/test_delivery_faults.py):

    python -m tests.delivery_worker DATABASE_URL SMTP_HOST SMTP_PORT

records a daily run (its worker: this host and pid) and sends every pending delivery through
the real SmtpMailer — until the test kills it.
"""

from __future__ import annotations

import sys

from duban.config import MailFile
from duban.db import make_engine
from duban.db.runs import start_run, worker_name
from duban.notices.deliver import message_for
from duban.notices.mailer import SmtpMailer
from duban.notices.outbox import deliver_pending
from duban.settings import Settings


def main(url: str, host: str, port: str) -> None:
    engine = make_engine(url)
    start_run(engine, "daily", "2026-10-12", {"day": "2026-10-12"}, False)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, smtp_host=host, smtp_port=int(port), smtp_security="none",
        mail_from="duban@duban.example",
    )  # fmt: skip
    mail = MailFile(office=["office@duban.example"], allowed_domains=["duban.example"])
    deliver_pending(
        engine, SmtpMailer(settings), message_for, mail, worker=worker_name(), batch=50,
        sleep=lambda _: None,
    )  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:4])
