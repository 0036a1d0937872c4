"""The sidecar record: how a quantized model was made, written next to it as MODEL.tflite.json."""

from __future__ import annotations

import json
from pathlib import Path


def sidecar_path(model_path: str | Path) -> Path:
    """Where `harness quantize` puts the record of how a model was made: MODEL.tflite -> MODEL.tflite.json."""
    return Path(f"{model_path}.json")


def read_sidecar(model_path: str | Path) -> dict | None:
    """The quantize record next to a model, or None when there is none (or it is not one)."""
    path = sidecar_path(model_path)
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and rec.get("kind") == "quantize" else None


__all__ = ["read_sidecar", "sidecar_path"]
