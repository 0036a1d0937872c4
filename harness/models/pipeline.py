"""One model, ready to measure: card + loaded backend + protocol, from an image file to detections.

Every command that runs a model (eval, bench, detect, compare, quantize's calibration) goes through a
`Pipeline`, so an image is read, prepared and its heads decoded the same way everywhere: the protocol's
preprocessing (EXIF, resize, aspect policy, channel order, scaling) and decoder settings, with the
geometry of a letterboxed input carried from `prepare` to `decode`. It holds no clock and knows nothing
of COCO: the runner and the profiler time its steps, the evaluator scores them.

`variant` makes a pipeline with other preprocessing or decoder settings on the same loaded backend, so a
doctor can try the input path and the decode several ways without loading the model again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.models.backends import Backend, BackendOptions, create_backend
from harness.models.decoders import Decoder, Detections, get_decoder
from harness.models.fetch import resolve_model
from harness.models.preprocess import Prepared, Preprocess, apply_preprocess, boxes_to_image, read_rgb_oriented
from harness.models.zoo import ModelCard


@dataclass
class Pipeline:
    card: ModelCard
    backend: Backend
    protocol: str  # a key of card.protocols
    load_s: float = 0.0  # backend creation + load, as measured by open()
    # Given as None, both are the protocol's (ModelCard.preprocess, ModelCard.decoder_settings), filled in by
    # __post_init__: so every reader sees them set.
    preprocess: Preprocess = None  # type: ignore[assignment]
    decoder_params: dict[str, Any] = None  # type: ignore[assignment]
    decoder: Decoder = field(init=False)

    def __post_init__(self) -> None:
        self.card.protocol(self.protocol)  # an unknown protocol fails with the list of known ones
        self.decoder = get_decoder(self.card.decoder)
        if self.preprocess is None:
            self.preprocess = self.card.preprocess(self.protocol)
        if self.decoder_params is None:
            self.decoder_params = self.card.decoder_settings(self.protocol)
        given = set(self.decoder_params)
        unknown = sorted((given - set(self.decoder.params)) | (given & {"true_shape"}))
        if unknown:
            raise HarnessError(f"decoder {self.decoder.name} has no setting {', '.join(unknown)} "
                               f"(true_shape comes from the preprocessing); it takes: {', '.join(self.decoder.params)}")

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

    def variant(self, preprocess: Preprocess | None = None, decoder_params: dict[str, Any] | None = None) -> Pipeline:
        """This pipeline with other preprocessing and/or decoder settings, on the same loaded backend.

        `preprocess` replaces this pipeline's; `decoder_params` are merged onto its settings (e.g.
        {"peaks": "nms"}). The protocol name stays: the record's protocol block says what was overridden.
        """
        return Pipeline(self.card, self.backend, self.protocol, self.load_s, preprocess or self.preprocess,
                        {**(self.decoder_params or {}), **(decoder_params or {})})

    @property
    def model_path(self) -> Path:
        return self.backend.model_path

    def model_sha256(self) -> str:
        """The model's one identity (harness.common.identity), computed once by the backend."""
        return self.backend.model_sha256()

    def read(self, path: str | Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
        """An image file as an RGB uint8 array, as this pipeline's protocol reads it (EXIF applied or not).

        `expect_size` (width, height) is checked on the stored pixels, before any EXIF rotation.
        """
        return read_rgb_oriented(path, self.preprocess.exif, expect_size)

    def prepare(self, image: np.ndarray) -> Prepared:
        """An RGB image to the [1,H,W,3] batch the backend takes, with the geometry to read boxes back.

        Integer quantization of the input is the backend's (the tensor's own scale and zero point).
        """
        return apply_preprocess(image, self.preprocess)

    def predict(self, batch: np.ndarray | Prepared) -> dict[str, np.ndarray]:
        return self.backend.predict(batch.batch if isinstance(batch, Prepared) else batch)

    def decode(self, heads: dict[str, np.ndarray], prepared: Prepared | None = None) -> Detections:
        """Heads to detections normalised to the original image.

        With a letterboxed `prepared`, a decoder that takes `true_shape` (tfod_centernet) normalises by
        the content itself, as the TF OD API does; any other decoder's boxes are mapped back by
        `boxes_to_image`. Without `prepared` the input is taken as stretched (boxes need no mapping).
        """
        params = self.decoder_params or {}
        if prepared is None:
            return self.decoder.fn(heads, **params)
        if self.decoder.takes_true_shape:
            return self.decoder.fn(heads, **params, true_shape=prepared.true_shape)
        det = self.decoder.fn(heads, **params)
        if prepared.true_shape == prepared.input_shape:
            return det
        return Detections(boxes_to_image(det.boxes, prepared), det.scores, det.category_ids)

    def detect(self, image: np.ndarray) -> Detections:
        """prepare + predict + decode: one RGB image to detections (boxes normalised to the image)."""
        prepared = self.prepare(image)
        return self.decode(self.predict(prepared.batch), prepared)

    def describe(self) -> dict:
        """The backend's description, with the model's one identity (whatever the backend's describe says)."""
        return {**self.backend.describe(), "model_sha256": self.model_sha256()}

    def protocol_block(self, backend: dict | None = None) -> dict:
        """What this pipeline does from image file to results entry, for the run record's `protocol`.

        The card's protocol block with this pipeline's effective preprocessing and decoder settings, plus
        the input quantization the backend applies (from `backend`, its describe(), when given).
        """
        block = self.card.protocol_block(self.protocol, preprocess=self.preprocess,
                                         decoder_settings=self.decoder_params)
        inp = (backend or {}).get("input") or {}
        block["input_quantization"] = ({"dtype": inp.get("dtype"), "scale_zero_point": inp["quantization"],
                                        "by": "the backend, with the input tensor's own parameters"}
                                       if inp.get("quantization") and inp["quantization"][0] else None)
        return block

