"""Model cards: where a model comes from, how to feed it, how to read its outputs, what it should score.

A card is plain data (frozen dataclasses that serialise to the run record). The published baseline
carries its provenance: value, split, the protocol it was measured under, a link and the source's own
sentence, so the harness can say when a comparison is not like for like instead of printing a bare
difference. A protocol is the whole path from image file to results entry: the preprocessing (the
card's input, or the protocol's own), the decoder settings, the box convention and the score threshold.
The cards themselves are defined in harness.models.zoo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.models.preprocess import Preprocess


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
    """How to find one head among a model's outputs: by name (signature key or tensor name) or shape.

    `position` (index in the model's output list) is a recorded fallback for files without the names,
    e.g. a TFLite file without a signature read the way NXP's example does (output_details[0], [2], [4]);
    it is used only when no name matches, and the run record says so.
    """

    names: tuple[str, ...] = ()
    shape: tuple[int | None, ...] | None = None  # None entries match any size
    position: int | None = None


@dataclass(frozen=True)
class Protocol:
    """How an image file becomes results entries; a baseline names the protocol it was measured under.

    `preprocess` None: the card's input description (`ModelCard.input`) is the protocol's.
    """

    description: str
    decoder_params: dict[str, Any] = field(default_factory=dict)  # overrides of the card's params
    box_convention: str = "float"  # see harness.scoring.coco.BOX_CONVENTIONS
    score_threshold: float = 0.0
    preprocess: Preprocess | None = None


@dataclass(frozen=True)
class Baseline:
    """A published mAP with its provenance."""

    ap: float  # COCO AP@[.5:.95] in percent, as published
    split: str  # e.g. "val2017", "test-dev2017"
    images: int | None  # how many images the number was measured on, when known
    protocol: str  # key into the card's protocols
    source: str  # link to where the number is published
    note: str = ""
    quote: str = ""  # the source's own sentence giving split and protocol (or a note that it has none)


@dataclass(frozen=True)
class ModelCard:
    name: str
    description: str
    backend: str  # key into harness.models.backends.BACKENDS
    source: Source
    input: Preprocess  # how an image becomes the model's input, unless a protocol says otherwise
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

    def preprocess(self, protocol: str | None = None) -> Preprocess:
        """The preprocessing a protocol runs: its own, else the card's input description."""
        return self.protocol(protocol).preprocess or self.input

    def protocol_block(self, protocol: str | None = None, *, preprocess: Preprocess | None = None,
                       decoder_settings: dict[str, Any] | None = None) -> dict:
        """Everything a run under `protocol` did to go from image file to results entry, for the record.

        `preprocess` / `decoder_settings` are a pipeline's effective ones when they differ from the
        protocol's (a doctor's variant); `overridden` then says which.
        """
        name = protocol or self.default_protocol
        proto = self.protocol(name)
        pp = preprocess or self.preprocess(name)
        settings = decoder_settings if decoder_settings is not None else self.decoder_settings(name)
        block = {"name": name, **_jsonable(dataclasses.asdict(proto)), "preprocess": pp.to_dict(),
                 "decoder": self.decoder, "decoder_settings": _jsonable(settings),
                 "detections_per_image": settings.get("top_k")}
        overridden = [k for k, same in (("preprocess", pp == self.preprocess(name)),
                                        ("decoder_settings", settings == self.decoder_settings(name))) if not same]
        if overridden:
            block["overridden"] = overridden
        return block

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input"] = self.input.to_dict()
        for name, proto in self.protocols.items():
            d["protocols"][name]["preprocess"] = proto.preprocess.to_dict() if proto.preprocess else None
        return d


def _jsonable(value: Any) -> Any:
    """Tuples as lists, recursively: a block read back from JSON compares equal to the one written."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
