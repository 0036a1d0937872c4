"""One model, ready to measure: card + loaded backend + protocol, from an image to detections.

Every command that runs a model (eval, bench, detect, compare, quantize's calibration) goes through a
`Pipeline`, so the input is prepared and the heads are decoded the same way everywhere. It holds no
clock and knows nothing of COCO: the runner and the profiler time its steps, the evaluator scores them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.models.backends import Backend, BackendOptions, create_backend
from harness.models.decoders import Decoder, Detections, get_decoder
from harness.models.fetch import resolve_model
from harness.models.images import prepare, read_rgb
from harness.models.zoo import ModelCard


@dataclass
class Pipeline:
    card: ModelCard
    backend: Backend
    protocol: str  # a key of card.protocols
    load_s: float = 0.0  # backend creation + load, as measured by open()
    decoder: Decoder = field(init=False)
    decoder_params: dict = field(init=False)

    def __post_init__(self) -> None:
        self.card.protocol(self.protocol)  # an unknown protocol fails with the list of known ones
        self.decoder = get_decoder(self.card.decoder)
        self.decoder_params = self.card.decoder_settings(self.protocol)

    @classmethod
    def open(cls, card: ModelCard, mirror: Path | None = None, options: BackendOptions | None = None,
             protocol: str | None = None, *, model_path: Path | None = None) -> Pipeline:
        """Resolve the card's model (path, mirror or download), create its backend and load it."""
        card.protocol(protocol)  # fail before spending time on resolving or loading
        path = model_path or resolve_model(card, mirror)
        t0 = time.perf_counter()
        backend = create_backend(card.backend, path, card.outputs, options or BackendOptions())
        backend.load()
        return cls(card, backend, protocol or card.default_protocol, time.perf_counter() - t0)

    @property
    def model_path(self) -> Path:
        return self.backend.model_path

    def model_sha256(self) -> str:
        """The model's one identity (harness.common.identity), computed once by the backend."""
        return self.backend.model_sha256()

    def read(self, path: str | Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
        """An image file as an RGB uint8 array, as this pipeline's protocol reads it."""
        return read_rgb(path, expect_size)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """An RGB image to the [1,H,W,3] batch the backend takes (integer quantization is the backend's)."""
        return prepare(image, self.card.input)

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.backend.predict(batch)

    def decode(self, heads: dict[str, np.ndarray]) -> Detections:
        return self.decoder.fn(heads, **self.decoder_params)

    def detect(self, image: np.ndarray) -> Detections:
        """prepare + predict + decode: one RGB image to detections (boxes normalised to the image)."""
        return self.decode(self.predict(self.prepare(image)))

    def describe(self) -> dict:
        """The backend's description, with the model's one identity (whatever the backend's describe says)."""
        return {**self.backend.describe(), "model_sha256": self.model_sha256()}
