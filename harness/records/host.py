"""What machine a measurement came from, and a fingerprint id of the parts that matter for speed.

Reads /proc and /sys directly (no psutil) so it works on a board's minimal image.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def cpu_frequency() -> dict:
    """Governor and current/max frequency of cpu0 (kHz), where the kernel exposes cpufreq."""
    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    cur, mx = _read(base + "scaling_cur_freq"), _read(base + "cpuinfo_max_freq")
    return {"governor": _read(base + "scaling_governor"),
            "cur_khz": int(cur) if cur and cur.isdigit() else None,
            "max_khz": int(mx) if mx and mx.isdigit() else None}


def temperatures() -> dict[str, float]:
    """Thermal zones in degrees Celsius (boards throttle when hot: worth keeping beside a timing)."""
    out = {}
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
        t, kind = _read(str(zone / "temp")), _read(str(zone / "type"))
        if t and t.lstrip("-").isdigit():
            out[kind or zone.name] = int(t) / 1000.0
    return out


def describe() -> dict:
    """The host part of a run record."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info = {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "affinity": affinity,
        "memory_bytes": memory_bytes(),
        "os": platform.system(),
        "os_release": _os_release(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "board": _read("/proc/device-tree/model"),
        "cpufreq": cpu_frequency(),
        "temperatures_c": temperatures(),
    }
    info["fingerprint"] = fingerprint(info)
    return info


def fingerprint(info: dict) -> str:
    """A stable id of what decides speed: board, CPU model, cores, architecture, memory, governor.

    Hostname, temperature, current frequency and software versions are left out on purpose: they change
    between runs on the same machine (software versions are compared separately, per record).
    """
    parts = {k: info.get(k) for k in ("board", "cpu_model", "cores", "machine")}
    parts["memory_gib"] = round((info.get("memory_bytes") or 0) / 2**30)
    parts["governor"] = (info.get("cpufreq") or {}).get("governor")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _os_release() -> str | None:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return None
