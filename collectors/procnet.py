"""Network counters as Linux exposes them per process: honestly, per network namespace.

``/proc/PID/net/dev`` shows the interfaces of the process's *network
namespace*, not the process's own traffic. A process in the same namespace as
loadgen sees host-wide numbers, so those are reported as ``system`` counters;
only a process in a namespace of its own (a container) gets ``namespace`` ones.
"""

from __future__ import annotations

import os
import sys

__all__ = ["IS_LINUX", "net_dev_totals", "netns_id"]

IS_LINUX = sys.platform.startswith("linux")


def netns_id(pid: int | str) -> str | None:
    """The network namespace of ``pid`` ("self" for loadgen), e.g. ``net:[4026531840]``; None when unreadable."""
    if not IS_LINUX:
        return None
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:  # gone, or not ours to inspect (needs ptrace access)
        return None


def parse_net_dev(text: str) -> tuple[int, int]:
    """(bytes sent, bytes received) summed over every interface of a ``/proc/*/net/dev`` text."""
    sent = recv = 0
    for line in text.splitlines()[2:]:
        _, sep, counters = line.partition(":")
        fields = counters.split()
        if not sep or len(fields) < 9:
            continue
        recv += int(fields[0])
        sent += int(fields[8])
    return sent, recv


def net_dev_totals(pid: int | str) -> tuple[int, int] | None:
    """(bytes sent, bytes received) of ``pid``'s network namespace; None when unreadable."""
    if not IS_LINUX:
        return None
    try:
        with open(f"/proc/{pid}/net/dev", encoding="ascii", errors="replace") as file:
            return parse_net_dev(file.read())
    except (OSError, ValueError):
        return None
