"""Headless Chromium from the distribution's packages (`apt-get install chromium`), as a unit's
staff would open a notice: how wide a page lays out at a given window width.

No driver and no extra package: the page is loaded into an iframe exactly `width` px wide
(a desktop window cannot be narrower than ~500 px; a frame can, and its media queries see
its own width), a script writes the frame's scroll width into the DOM once everything has
loaded, and `chromium --dump-dom` prints it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html import escape
from pathlib import Path

FRAME = (
    "<!DOCTYPE html><html><body style='margin:0'>"
    "<iframe id='f' style='border:0;width:{width}px;height:{height}px' srcdoc=\"{page}\">"
    "</iframe><script>document.getElementById('f').addEventListener('load',function(){{"
    "var d=this.contentDocument.documentElement;"
    "document.body.setAttribute('data-scroll-width',String(d.scrollWidth));}});</script>"
    "</body></html>"
)
# As the machines' probe starts it: no sandbox (root), no GPU, no network of its own.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=2000",
)  # fmt: skip
FOUND = re.compile(r'data-scroll-width="(\d+)"')


def chromium() -> str:
    """The browser's path; an AssertionError (never a skip) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed: apt-get install chromium (.ci/run does)"
    return path


def scroll_width(html: str, width: int, height: int = 900) -> int:
    """The page's laid-out width (CSS px) in a window `width` px wide."""
    with tempfile.TemporaryDirectory(prefix="duban-browser-") as folder:
        page = Path(folder) / "page.html"
        frame = FRAME.format(width=width, height=height, page=escape(html, quote=True))
        page.write_text(frame, encoding="utf-8")
        flags = [*FLAGS, f"--user-data-dir={folder}/profile"]
        flags.append(f"--window-size={max(width, 1280)},{height}")
        out = subprocess.run(
            [chromium(), *flags, "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    found = FOUND.search(out.stdout)
    assert found, f"chromium printed no width (exit {out.returncode}): {out.stderr[-500:]}"
    return int(found.group(1))
