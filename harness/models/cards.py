"""Model cards: where a model comes from, how to feed it, how to read its outputs, what it should score.

A card is plain data (frozen dataclasses that serialise to the run record). The published baseline
carries its provenance: value, split, the protocol it was measured under and a link, so the harness
can say when a comparison is not like for like instead of printing a bare difference. The cards
themselves are defined in harness.models.zoo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.models.images import InputSpec


@dataclass(frozen=True)
class Source:
    """Where the model's file comes from: an official address, its place in a mirror, its hash."""

    url: str | None  # a file, an archive, or a TF Hub / Kaggle Models handle
    mirror_path: str | None  # relative to a mirror root laid out like ../shared/mirror
    sha256: str | None = None  # of the file, or of the compressed archive a handle serves
    kind: str = "file"  # "file" | "savedmodel" (directory) | "hub" (handle serving a compressed SavedModel)
    note: str = ""


@dataclass(frozen=True)
class Output:
    """How to find one head among a model's outputs: by name (signature key or tensor name) or shape."""

    names: tuple[str, ...] = ()
    shape: tuple[int | None, ...] | None = None  # None entries match any size


@dataclass(frozen=True)
class Protocol:
    """How detections are decoded and written for scoring; a baseline names the protocol it used."""

    description: str
    decoder_params: dict[str, Any] = field(default_factory=dict)  # overrides of the card's params
    box_convention: str = "float"  # see harness.scoring.coco.BOX_CONVENTIONS
    score_threshold: float = 0.0


@dataclass(frozen=True)
class Baseline:
    """A published mAP with its provenance."""

    ap: float  # COCO AP@[.5:.95] in percent, as published
    split: str  # e.g. "val2017", "test-dev2017"
    images: int | None  # how many images the number was measured on, when known
    protocol: str  # key into the card's protocols
    source: str  # link to where the number is published
    note: str = ""


@dataclass(frozen=True)
class ModelCard:
    name: str
    description: str
    backend: str  # key into harness.models.backends.BACKENDS
    source: Source
    input: InputSpec
    outputs: dict[str, Output]  # head name -> how to find it
    decoder: str  # key into harness.models.decoders.DECODERS
    decoder_params: dict[str, Any]
    protocols: dict[str, Protocol]
    default_protocol: str
    baseline: Baseline | None = None
    family: str | None = None  # cards of one network in different precisions share it (float/quantized siblings)
    precision: str = "float32"  # "float32", "int8", "16x8", "dynamic": what `harness check` compares against float

    def protocol(self, name: str | None = None) -> Protocol:
        key = name or self.default_protocol
        try:
            return self.protocols[key]
        except KeyError:
            raise HarnessError(f"model {self.name} has no protocol {key!r}; "
                               f"known: {', '.join(self.protocols)}") from None

    def decoder_settings(self, protocol: str | None = None) -> dict[str, Any]:
        return {**self.decoder_params, **self.protocol(protocol).decoder_params}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input"] = self.input.to_dict()
        return d
