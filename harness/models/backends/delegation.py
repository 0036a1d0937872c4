"""Bench's warning when a delegate left ops on the CPU, read from the record's `backend.delegation`.

The coverage itself is read from the interpreter by harness.models.backends.tflite.read_coverage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def fallback_warning(coverage: Mapping[str, Any] | None) -> str | None:
    """One line for `bench` when a delegate left ops on the CPU; None when it took them all (or none asked)."""
    if not coverage or not coverage.get("fell_back"):
        return None
    counts = sorted(coverage["cpu_by_type"].items(), key=lambda kv: -kv[1])
    kinds = ", ".join(f"{op} x{n}" for op, n in counts[:5]) + (", ..." if len(counts) > 5 else "")
    return (f"warning: {len(coverage['cpu_ops'])} of {coverage['model_ops']} ops fell back from "
            f"{coverage['delegate']} to the CPU ({kinds})")


__all__ = ["fallback_warning"]
