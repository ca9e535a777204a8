"""The bench's peak-memory figure is the measured process's own, not its parent's.

A child started with vfork and exec gets its parent's high-water RSS as its `ru_maxrss`
(both `getrusage(RUSAGE_SELF)` in it and `os.wait4` of it): the full daily's 1,031 MiB "with
clock events" was the bench process's own. bench/memory.py reads VmHWM instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HELD_MIB = 400


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
def test_a_child_reports_its_own_peak_not_the_parents() -> None:
    child = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); "
        "from memory import peak_rss_mib; print(peak_rss_mib())"
    )
    held = bytearray(HELD_MIB * 2**20)
    for i in range(0, len(held), 4096):  # touched, so resident
        held[i] = 1
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    _, _, usage = os.wait4(proc.pid, 0)
    assert proc.stdout is not None
    own = int(proc.stdout.read())
    del held
    assert usage.ru_maxrss // 1024 >= HELD_MIB  # what the bench used to report
    assert own < HELD_MIB // 4  # an interpreter that imported nothing big
