"""How many cores this process may use: the one answer for worker pools and the bootstrap's threads."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one, else the CPU count), so a
    container's or taskset's limit is honoured rather than the machine's size."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
