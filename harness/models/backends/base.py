"""The backend contract and the output-to-head mapping every backend shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness.common.identity import model_sha256
from harness.errors import HarnessError
from harness.models.cards import Output


@dataclass(frozen=True)
class BackendOptions:
    """Runtime settings a user controls; every one is recorded in the run record."""

    threads: int | None = None
    runtime: str | None = None  # TFLite: ai-edge-litert | tflite-runtime | tf.lite (default: first available)
    delegate: str | None = None  # path of an external delegate (libvx_delegate.so, libethosu_delegate.so)
    delegate_options: dict[str, str] = field(default_factory=dict)
    # TFLite: keep every intermediate tensor readable after invoke (built-in kernels only, no delegate),
    # for per-layer comparisons; slower, so never for eval or bench.
    keep_tensors: bool = False
    # TFLite: which kernels run the ops (harness.models.backends.tflite_runtimes.KERNELS: xnnpack, builtin,
    # reference); None: the runtime's default (XNNPACK on ai-edge-litert). An execution path.
    kernels: str | None = None


@dataclass(frozen=True)
class ModelInput:
    """What a model file says of its image input: size (None: any) and the dtype it must be fed.

    `dtype` None means the backend converts a float32 0..255 batch itself (TFLite quantizes integer inputs).
    """

    height: int | None
    width: int | None
    dtype: str | None


class Backend(ABC):
    """Load a model once, then map a prepared [1,H,W,3] batch to named heads."""

    name: ClassVar[str]
    takes: ClassVar[str]  # the models it opens, in words, for the error that no backend opens a path

    def __init__(self, model_path: str | Path, outputs: Mapping[str, Output], options: BackendOptions) -> None:
        self.model_path = Path(model_path)
        self.outputs = dict(outputs)
        self.options = options
        self._sha256: str | None = None

    @classmethod
    @abstractmethod
    def opens(cls, path: Path) -> bool:
        """Whether `path` is a model of this backend's kind; by its name alone when it does not exist (yet)."""

    @classmethod
    @abstractmethod
    def model_input(cls, path: Path) -> ModelInput | None:
        """The model's own input contract, read without loading it for inference (None: it does not say).

        A card borrowed for a model path (`--like`) may be for another format or size; this is the truth.
        """

    def model_sha256(self) -> str:
        """The model's one identity (harness.common.identity.model_sha256), computed once."""
        if self._sha256 is None:
            self._sha256 = model_sha256(self.model_path)
        return self._sha256

    @abstractmethod
    def load(self) -> None:
        """Open the model and check its outputs against the card; raise HarnessError if they differ."""

    @abstractmethod
    def set_input(self, batch: np.ndarray) -> None:
        """Stage a prepared [1,H,W,3] batch (quantized here for integer inputs)."""

    @abstractmethod
    def invoke(self) -> None:
        """Run the model on the staged input: the span that "model-only latency" times."""

    @abstractmethod
    def read_outputs(self) -> dict[str, np.ndarray]:
        """The last invoke's outputs as float arrays keyed by the card's head names."""

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """set_input + invoke + read_outputs: one image through the model."""
        self.set_input(batch)
        self.invoke()
        return self.read_outputs()

    @abstractmethod
    def describe(self) -> dict:
        """Runtime, versions and settings, for the run record."""


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    if cls.name in BACKENDS:
        raise ValueError(f"backend {cls.name!r} registered twice")
    BACKENDS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class ModelOutput:
    """One output as the model shows it: every name it answers to, and its shape (None: unknown)."""

    key: object  # what the backend uses to read it (a tensor index, a dict key)
    names: tuple[str, ...]
    shape: tuple[int | None, ...]


def _shape_ok(want: Sequence[int | None] | None, got: Sequence[int | None]) -> bool:
    if want is None:
        return True
    return len(want) == len(got) and all(w is None or g is None or w == g for w, g in zip(want, got, strict=True))


def map_outputs(model: str, available: Sequence[ModelOutput], wanted: Mapping[str, Output], *,
                by_position: bool = False, rules: dict[str, str] | None = None) -> dict[str, object]:
    """Map each head to one model output: by name first, then by position, then by unique shape.

    Position (the head's `Output.position`, an index into `available`) is tried only with `by_position`
    (a runtime whose output order is the model file's, as NXP's example reads it), only for heads no name
    matched, and only where the output there has the head's shape. `rules`, when given, is filled with
    how each head was found ("name", "position", "shape"), for the run record.
    Raises HarnessError listing the model's outputs when a head is missing, ambiguous or has the
    wrong shape, so a card/model mismatch is caught at load time, not as nonsense mAP.
    """
    listing = ", ".join(f"{'/'.join(o.names)}{list(o.shape)}" for o in available)
    mapping: dict[str, object] = {}
    taken: set[int] = set()
    # Heads with a name match are settled first, so that position and shape only see what is left.
    for rule in ("name", "position", "shape"):
        for head, spec in wanted.items():
            if head in mapping:
                continue
            if rule == "name":
                hits = [i for i, o in enumerate(available) if set(o.names) & set(spec.names)]
                if not hits:
                    continue
            elif rule == "position":
                p = spec.position
                if not by_position or p is None or not 0 <= p < len(available) or p in taken \
                        or not _shape_ok(spec.shape, available[p].shape):
                    continue
                hits = [p]
            else:
                if spec.shape is None:
                    raise HarnessError(f"{model}: no output named {'/'.join(spec.names) or head!r} for head "
                                       f"{head!r}; the model has: {listing}")
                hits = [i for i, o in enumerate(available) if i not in taken and _shape_ok(spec.shape, o.shape)]
                if len(hits) != 1:
                    why = "none has" if not hits else f"{len(hits)} outputs have"
                    raise HarnessError(f"{model}: outputs do not match the card: head {head!r} is found by shape "
                                       f"{list(spec.shape)} and {why} it; the model has: {listing}")
            if len(hits) > 1:
                raise HarnessError(f"{model}: head {head!r} matches several outputs by name; the model has: {listing}")
            out = available[hits[0]]
            if not _shape_ok(spec.shape, out.shape):
                raise HarnessError(f"{model}: outputs do not match the card: {head!r} ({out.names[0]}) has shape "
                                   f"{list(out.shape)}, the card expects {list(spec.shape or [])}")
            mapping[head] = out.key
            taken.add(hits[0])
            if rules is not None:
                rules[head] = rule
    return mapping


def dequantize(a: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer tensor to float32: (q - zero_point) * scale; float tensors pass through."""
    if np.issubdtype(a.dtype, np.integer) and scale:
        return ((a.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
    return a


def quantize(x: np.ndarray, dtype: type, scale: float, zero_point: int) -> np.ndarray:
    """Float input to an integer tensor: q = round(x / scale) + zero_point, clipped to the type's range."""
    if not scale:
        raise HarnessError(f"the model's {np.dtype(dtype).name} input has no quantization scale; "
                           "cannot quantize the image for it")
    info = np.iinfo(dtype)
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)
