"""A process's own peak memory, for the bench's figures.

Not `ru_maxrss`: CPython starts a subprocess with vfork and exec, and on exec Linux keeps the
parent's high-water RSS as the child's (`signal->maxrss`), so `getrusage(RUSAGE_SELF)` in a
child and `os.wait4`'s usage of it both report at least what the parent ever held (seen: a
parent that once held 1.5 GiB makes every later child of `python -c pass` report 1511 MiB).
`VmHWM` in /proc/self/status is the high-water mark of the process's own memory since its
exec, which is the figure meant.
"""

from __future__ import annotations


def peak_rss_mib() -> int:
    """This process's peak resident memory since its exec (VmHWM), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
