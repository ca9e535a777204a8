"""`duban demo --ui`: the demo city in the Prefect UI, in one command.

A Prefect server (`prefect server start`, a subprocess on a free local port) keeps its
database in the demo folder (PREFECT_HOME=<dir>/prefect); the demo's own runs go to it, so
they are in the UI; then every loop is registered and served against the demo's database
and config (`duban serve`) until Ctrl-C, which stops the server too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PrefectServer", "free_port", "prefect_home", "start_server"]

STARTUP_SECONDS = 300.0


def prefect_home(out_dir: Path) -> Path:
    """The demo's Prefect home (never ~/.prefect): its profiles, and the server's database."""
    return out_dir / "prefect"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        """The UI."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def stop(self) -> None:
        """Ctrl-C to the server's process group, then kill it if it lingers."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass


def _prefect_command() -> str:
    """The `prefect` next to this Python (the same environment), else the one on PATH."""
    beside = Path(sys.executable).parent / "prefect"
    return str(beside) if beside.exists() else (shutil.which("prefect") or "prefect")


def start_server(home: Path, timeout: float = STARTUP_SECONDS) -> PrefectServer:
    """Start `prefect server start` with PREFECT_HOME=`home` on a free port; wait until it
    answers. RuntimeError (naming its log) if it exits or does not answer in `timeout`."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    env.pop("PREFECT_API_URL", None)
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = PrefectServer(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited (code {process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"{server.api_url}/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(1.0)
    server.stop()
    raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s; see {log}")
