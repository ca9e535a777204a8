"""A restart of the PostgreSQL cluster mid-send (issue 15, fault tests): the test starts a
cluster of its own (initdb into a temporary folder, pg_ctl on a free port), points Duban at
it, runs the daily report against the real SMTP sink, restarts the cluster from the sink's
handler after k messages, then runs again: every delivery arrives exactly once (by
Message-ID) and the admins are told. The fixture stops the cluster and removes its folder
whatever happens."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from duban.db import make_engine, session_scope, upgrade
from duban.db.models import Delivery, DeliveryStatus, Run
from flows.daily import daily_report
from tests.flows.test_daily_flow import DAY, seed_tickets
from tests.smtp_server import free_port

ADMIN = "admin@duban.example"  # config/mail.yaml admins
SCHEMA = "duban"


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@dataclass
class Cluster:
    """A PostgreSQL cluster of the test's own, run by the `postgres` user when we are root
    (initdb refuses root)."""

    bindir: Path
    folder: Path
    port: int
    restarts: list[threading.Thread] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, str(self.bindir / tool), *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    def _ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c fsync=off -c full_page_writes=off")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "-o", options, *args)  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def restart(self, down_seconds: float) -> threading.Thread:
        """Stop now (fast: every connection is cut) and start again `down_seconds` later, in
        a thread (returned, to join): a restart that the next statement runs into."""
        self._ctl("-m", "fast", "stop")

        def start_later() -> None:
            time.sleep(down_seconds)
            self.start()

        thread = threading.Thread(target=start_later, name="pg-restart")
        thread.start()
        self.restarts.append(thread)
        return thread

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", "immediate", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no initdb under /usr/lib/postgresql/*/bin: install the PostgreSQL server")
    folder = Path(tempfile.mkdtemp(prefix="duban-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    own = Cluster(bindir, folder, free_port())
    try:
        own.init()
        own.start()
        yield own
    finally:
        for thread in own.restarts:
            thread.join(timeout=120)
        try:
            own.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def engine(cluster: Cluster) -> Iterator[Engine]:
    """Overrides tests/conftest.py's: the test's own cluster, in a schema of its own (as the
    shared server's engine is), so that the `city` fixture points the flows at it."""
    admin = make_engine(cluster.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    admin.dispose()
    eng = make_engine(cluster.url, connect_args={"options": f"-csearch_path={SCHEMA}"})
    upgrade(eng)
    yield eng
    eng.dispose()


def test_a_database_restart_mid_send_delivers_everything_once_and_the_admins_are_told(
    cluster: Cluster, city: dict[str, Any]
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    # After the 2nd e-mail is accepted, before its 250: the database restarts (down 3 s), so
    # that recording it as sent, and what follows, meet a database that is gone.
    smtp.after_messages(2, lambda: cluster.restart(down_seconds=3))
    first = daily_report(day=DAY)
    [restart] = cluster.restarts
    restart.join(timeout=120)
    with engine.connect() as conn:  # it really went down and came back
        assert conn.execute(text("SELECT now() - pg_postmaster_start_time()")).scalar_one()
    again = daily_report(day=DAY)  # the next run: nothing left, nothing twice

    with session_scope(engine) as session:
        deliveries = session.scalars(select(Delivery)).all()
        runs = session.scalars(select(Run.status).order_by(Run.id)).all()
    assert deliveries and {d.status for d in deliveries} == {DeliveryStatus.sent}
    assert first["mail_sent"] == first["notices"] == 4 and again["mail_sent"] == 0
    assert runs == ["ok", "ok"]
    ids = smtp.message_ids()
    assert set(ids.values()) == {1} and len(ids) == len(deliveries)  # each e-mail once
    to_admin = [m for m in smtp.messages if ADMIN in m.rcpt_tos]
    assert len(to_admin) == 1 and "database connection was lost" in to_admin[0].part("plain")
    admin_deliveries = [d for d in deliveries if d.recipient == ADMIN]
    assert len(admin_deliveries) == 1
