"""Per-tensor error between two execution paths of one .tflite model: every op output, matched by index.

Both paths load the same file with every tensor preserved (the TFLite backend's keep_tensors), each on
its own kernels; one file means one graph, so tensor indices match without names. With XNNPACK and
every tensor preserved, the delegate makes one partition per op: its kernels then run op by op, which
is what makes each op's output readable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from harness.analyse.tensor_error import SNR_CAP_DB, TOP, ErrorStats
from harness.models.backends import BackendOptions
from harness.models.backends.tflite import DELEGATE_OP, open_tflite


def tensor_errors(model: str | Path, options_a: BackendOptions, options_b: BackendOptions,
                  batches: Sequence[np.ndarray], progress: Callable[[int], None] | None = None) -> dict:
    """Every op output of path B against path A over `batches`: rows in execution order and the worst."""
    a, b = (open_tflite(model, replace(o, keep_tensors=True)) for o in (options_a, options_b))
    ops = [op for op in a.ops() if op.op != DELEGATE_OP]
    names = a.tensors()
    stats = {t: ErrorStats() for op in ops for t in op.outputs}
    producer = {t: op for op in ops for t in op.outputs}
    for n, batch in enumerate(batches, 1):
        a.set_input(batch)
        a.invoke()
        b.set_input(batch)
        b.invoke()
        for t, s in stats.items():
            va, vb = a.tensor(t), b.tensor(t)
            if va is not None and vb is not None and va.shape == vb.shape:
                s.update(va, vb)
        if progress:
            progress(n)
    rows = [{"index": t, "name": names[t].name, "op_index": producer[t].index, "op": producer[t].op,
             "dtype": names[t].dtype, **error_dict(s)} for t, s in stats.items() if s.n]
    unread = [f"{producer[t].index}:{producer[t].op}:{names[t].name}" for t, s in stats.items() if not s.n]
    ranked = sorted(rows, key=lambda r: SNR_CAP_DB + 1 if r["snr_db"] is None else r["snr_db"])
    return {
        "paths": [a.describe().get("keep_tensors"), b.describe().get("keep_tensors")],
        "compared": len(rows),
        "identical": sum(1 for s in stats.values() if s.n and s.sum_e2 == 0.0),
        "unreadable": unread,
        "worst": [r["index"] for r in ranked[:TOP]],
        "first_below_60db": next((r["index"] for r in rows if r["snr_db"] is not None and r["snr_db"] < 60), None),
        "rows": rows,
    }


def error_dict(stats: ErrorStats) -> dict:
    """ErrorStats.to_dict with the small errors of two float paths kept (4 significant digits, not 6 decimals)."""
    return {**stats.to_dict(), "mse": _sig(stats.mse), "max_abs_err": _sig(stats.max_abs)}


def _sig(v: float | None) -> float | None:
    return None if v is None else float(f"{v:.4g}")


__all__ = ["error_dict", "tensor_errors"]
