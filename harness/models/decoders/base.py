"""The decoder registry and what every decoder returns: `Detections` of one image.

A decoder is a function of the named heads plus the card's (and protocol's) params. One that also takes
`true_shape` (the unpadded image content of a letterboxed input) says so in its signature, and the
Pipeline passes it; the other decoders' boxes are mapped back by harness.models.preprocess.boxes_to_image.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError


@dataclass
class Detections:
    """Detections of one image: normalised [ymin, xmin, ymax, xmax], scores, official category ids."""

    boxes: np.ndarray  # float32 [N, 4]
    scores: np.ndarray  # float32 [N]
    category_ids: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))



@dataclass(frozen=True)
class Decoder:
    """A registered decoder: the heads it reads, the function that decodes them, and its parameters."""

    name: str
    heads: tuple[str, ...]
    fn: Callable[..., Detections]
    doc: str
    params: tuple[str, ...] = ()  # keyword parameters fn takes (decoder settings a protocol may override)

    @property
    def takes_true_shape(self) -> bool:
        """Whether fn normalises boxes by the true (unpadded) input shape itself (the TF OD API way)."""
        return "true_shape" in self.params


DECODERS: dict[str, Decoder] = {}


def register_decoder(name: str, heads: Sequence[str]) -> Callable[[Callable[..., Detections]], Callable]:
    """Register a decoder under `name`; it receives the heads by name plus the card's decoder params."""

    def wrap(fn: Callable[..., Detections]) -> Callable[..., Detections]:
        if name in DECODERS:
            raise ValueError(f"decoder {name!r} registered twice")
        params = tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
        DECODERS[name] = Decoder(name, tuple(heads), fn, (fn.__doc__ or "").strip().splitlines()[0], params)
        return fn

    return wrap


def get_decoder(name: str) -> Decoder:
    try:
        return DECODERS[name]
    except KeyError:
        raise HarnessError(f"unknown decoder {name!r}; known: {', '.join(sorted(DECODERS))}") from None



def _class_ids(class_ids: Sequence[int], cs: np.ndarray) -> np.ndarray:
    lut = np.asarray(class_ids, np.int64)
    if cs.size and cs.max() >= lut.size:
        raise HarnessError(f"the model predicts class index {int(cs.max())} but the card maps only "
                           f"{lut.size} classes; fix the card's class_ids")
    return lut[cs]


def _batch1(heads: Mapping[str, np.ndarray], name: str, ndim: int) -> np.ndarray:
    a = np.asarray(heads[name])
    if a.ndim == ndim + 1:
        if a.shape[0] != 1:
            raise HarnessError(f"head {name!r} has batch {a.shape[0]}; the decoders take one image")
        a = a[0]
    if a.ndim != ndim:
        raise HarnessError(f"head {name!r} has shape {a.shape}; expected {ndim} dims (batch 1)")
    return a
