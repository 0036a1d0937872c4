"""How far one tensor is from its reference: cosine, MSE, SNR and maximum error, pooled over images.

Generic statistics of a tensor pair, with no opinion on where the pair comes from: the quantization error
(harness.analyse.quant_error: float vs quantized model) and the execution paths (harness.analyse.
execution_paths: one model on two kernels or runtimes) both measure with `ErrorStats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SNR_CAP_DB = 150.0  # reported for a tensor with no error at all (a float32 rounding floor is ~140 dB)
TOP = 10  # how many entries a ranking lists


@dataclass
class ErrorStats:
    """Running sums over float (reference) and quantized tensors, pooled over images."""

    n: int = 0
    sum_f2: float = 0.0
    sum_q2: float = 0.0
    sum_fq: float = 0.0
    sum_e2: float = 0.0
    max_abs: float = 0.0

    def update(self, f: np.ndarray, q: np.ndarray) -> None:
        f = np.asarray(f, np.float64).ravel()
        q = np.asarray(q, np.float64).ravel()
        if f.shape != q.shape:
            raise ValueError(f"shapes differ: {f.shape} vs {q.shape}")
        e = q - f
        self.n += f.size
        self.sum_f2 += float(f @ f)
        self.sum_q2 += float(q @ q)
        self.sum_fq += float(f @ q)
        self.sum_e2 += float(e @ e)
        if e.size:
            self.max_abs = max(self.max_abs, float(np.abs(e).max()))

    @property
    def mse(self) -> float | None:
        return self.sum_e2 / self.n if self.n else None

    @property
    def snr_db(self) -> float | None:
        """10 log10(signal power / error power); None where the float tensor is all zeros but the other is not."""
        if not self.n:
            return None
        if self.sum_e2 == 0.0:
            return SNR_CAP_DB
        if self.sum_f2 == 0.0:
            return None
        return min(SNR_CAP_DB, 10.0 * math.log10(self.sum_f2 / self.sum_e2))

    @property
    def cosine(self) -> float | None:
        if self.sum_f2 == 0.0 or self.sum_q2 == 0.0:
            return 1.0 if self.n and self.sum_f2 == self.sum_q2 == 0.0 else None
        return self.sum_fq / math.sqrt(self.sum_f2 * self.sum_q2)

    def rounding_snr_db(self, scale: float | None) -> float:
        """The SNR rounding alone to steps of `scale` would give this signal (noise scale^2/12); the cap in float."""
        if not scale or not self.n or self.sum_f2 == 0.0:
            return SNR_CAP_DB
        return min(SNR_CAP_DB, 10.0 * math.log10((self.sum_f2 / self.n) / (scale * scale / 12.0)))

    def rmse_over_scale(self, scale: float | None) -> float | None:
        """Root mean square error in quantization steps: about 0.29 (1/sqrt(12)) is ideal rounding."""
        return math.sqrt(self.mse) / scale if scale and self.mse is not None else None

    def to_dict(self) -> dict:
        return {"cosine": rounded(self.cosine), "mse": rounded(self.mse, 9), "snr_db": rounded(self.snr_db, 2),
                "max_abs_err": rounded(self.max_abs, 6)}


def rounded(v: float | None, digits: int = 6) -> float | None:
    return None if v is None else round(v, digits)


__all__ = ["SNR_CAP_DB", "TOP", "ErrorStats", "rounded"]
