"""A precision plan: everything that decides a quantized model's bytes, as JSON that rebuilds it.

The search (harness.analyse.precision.search) writes one per candidate; `harness quantize --plan PLAN.json`
replays it. What makes the bytes: the float SavedModel (checked by its hash), the converter mode, the
calibration images in feeding order with their resize filter and the draw's seed, the layers kept in
float, and the versions of the converter and the image reader. A replay under other versions is refused
unless asked for, since the converter's output is only stable within a version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

PLAN_FORMAT = "centernet-harness/quant-plan"
PLAN_VERSION = 1
# The versions that change the converted bytes (read from metadata; TensorFlow is not imported for it).
_BYTE_VERSIONS = ("tensorflow", "tensorflow-cpu", "numpy", "Pillow", "ai-edge-quantizer")


def byte_versions() -> dict[str, str]:
    """Installed versions of the packages a conversion's bytes depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in _BYTE_VERSIONS:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class Plan:
    """One precision plan for one float SavedModel."""

    name: str
    mode: str  # a harness.quantize.modes MODES key, or "int8+a16" (ai-edge-quantizer)
    source: dict  # {"path", "sha256"} of the float SavedModel
    calibration: dict | None = None  # harness.quantize.calibration.Calibration.to_dict()
    float_layers: tuple[str, ...] = ()  # op output tensor names kept in float (int8 only)
    float_ops: tuple[str, ...] = ()  # op types those layers came from, for the reader
    a16_tensors: tuple[str, ...] = ()  # tensors with 16-bit activations (int8+a16 only)
    note: str = ""
    versions: dict = field(default_factory=byte_versions)

    def key(self) -> str:
        """What decides the bytes, hashed: two plans with one key build one file (versions and name aside)."""
        cal = self.calibration or {}
        basis = {"mode": self.mode, "source": self.source.get("sha256"),
                 "calibration": {k: cal.get(k) for k in ("files", "resize", "size", "dtype")} if cal else None,
                 "float_layers": sorted(self.float_layers), "a16_tensors": sorted(self.a16_tensors)}
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        cal = self.calibration
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "name": self.name, "mode": self.mode,
                "source": dict(self.source), "calibration": dict(cal) if cal else None,
                "seeds": {"calibration_draw": cal.get("seed") if cal else None},
                "float_layers": list(self.float_layers), "float_ops": list(self.float_ops),
                "a16_tensors": list(self.a16_tensors), "note": self.note, "versions": dict(self.versions),
                "key": self.key()}

    @classmethod
    def from_dict(cls, d: dict, where: str = "plan") -> Plan:
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise HarnessError(f"{where}: not a precision plan (format {PLAN_FORMAT!r}); write one with "
                               "`harness quantize --max-drop` or take it from a quant_search record")
        if d.get("version", 0) > PLAN_VERSION:
            raise HarnessError(f"{where}: plan version {d['version']} is newer than this harness reads")
        try:
            return cls(d["name"], d["mode"], dict(d["source"]), d.get("calibration"),
                       tuple(d.get("float_layers", ())), tuple(d.get("float_ops", ())),
                       tuple(d.get("a16_tensors", ())), d.get("note", ""), dict(d.get("versions", {})))
        except (KeyError, TypeError) as exc:
            raise HarnessError(f"{where}: plan lacks {exc}") from None


def read_plan(path: str | Path) -> Plan:
    """A plan file: a plan object, or a quant_search record (its chosen candidate's plan)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read plan {path}: {exc}") from None
    if isinstance(data, dict) and data.get("kind") == "quant_search":
        chosen = data.get("chosen")
        rows = {c["name"]: c for c in data.get("candidates", [])}
        if chosen not in rows:
            raise HarnessError(f"{path}: the search chose no plan; pass one of its candidates' plans")
        data = rows[chosen]["plan"]
    return Plan.from_dict(data, str(path))


def version_drift(plan: Plan) -> list[str]:
    """The byte-deciding packages whose installed version differs from the plan's."""
    now = byte_versions()
    keys = set(plan.versions) | set(now)
    if plan.mode != "int8+a16":
        keys.discard("ai-edge-quantizer")  # only mixed plans go through it
    return [f"{k} {plan.versions.get(k)} -> {now.get(k)}" for k in sorted(keys) if plan.versions.get(k) != now.get(k)]


def build(plan: Plan, output: str | Path, *, allow_version_drift: bool = False) -> dict:
    """Convert the plan's SavedModel as the plan says and write `output`; the quantize record's body."""
    from harness.common.identity import model_sha256
    from harness.quantize.calibration import Calibration
    from harness.quantize.convert import quantize_saved_model

    src = Path(plan.source["path"])
    if not src.is_dir():
        raise HarnessError(f"the plan's SavedModel {src} is not there: the plan names its source by path")
    if plan.source.get("sha256") and model_sha256(src) != plan.source["sha256"]:
        raise HarnessError(f"{src} is not the SavedModel the plan was made from (sha256 differs)")
    drift = version_drift(plan)
    if drift and not allow_version_drift:
        raise HarnessError(f"the plan was made with other versions ({'; '.join(drift)}): the bytes may differ; "
                           "install those, or pass --allow-version-drift")
    if plan.mode == "int8+a16":
        from harness.quantize.mixed import quantize_mixed

        return quantize_mixed(src, output, plan)
    cal = Calibration.from_dict(plan.calibration) if plan.calibration else None
    body = quantize_saved_model(src, output, plan.mode, cal, float_layers=plan.float_layers)
    body["float_ops"] = list(plan.float_ops)
    return {**body, "plan": plan.to_dict(), "version_drift": drift}


__all__ = ["PLAN_FORMAT", "Plan", "build", "byte_versions", "read_plan", "version_drift"]
