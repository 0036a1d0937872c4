"""Converter modes (what each does to the TFLiteConverter) and published recipes (a mode plus a calibration draw)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError


@dataclass(frozen=True)
class Mode:
    """One way to convert: what it does to the TFLiteConverter, and whether it needs calibration images."""

    name: str
    description: str
    calibrated: bool
    configure: Callable[[Any, Any], None]  # (converter, tf)


def _float32(converter: Any, tf: Any) -> None:
    """No optimization: the float baseline the quantized models are compared with."""


def _int8(converter: Any, tf: Any) -> None:
    """Full integer as NXP's recipe.sh sets it: int8 ops only, int8 input, float32 outputs."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.float32
    converter.target_spec.supported_types = [tf.int8]


def _int16x8(converter: Any, tf: Any) -> None:
    """int16 activations, int8 weights; float input and outputs."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


def _dynamic(converter: Any, tf: Any) -> None:
    """Dynamic range: int8 weights, float activations, no calibration."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("int8", "full integer: int8 input, int8 ops, float32 outputs (NXP's recipe)", True, _int8),
    Mode("16x8", "int16 activations, int8 weights, float input and outputs", True, _int16x8),
    Mode("dynamic", "dynamic range: int8 weights, float activations", False, _dynamic),
    Mode("float32", "no quantization", False, _float32),
)}


@dataclass(frozen=True)
class Recipe:
    """A published quantization recipe: converter mode plus calibration draw."""

    mode: str
    draw: str
    seed: int | None
    count: int
    resize: str
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)


RECIPES: dict[str, Recipe] = {
    "nxp": Recipe("int8", "shuffle", 1337, 100, "pil-default",
                  "github.com/NXP/eiq-model-zoo tasks/vision/object-detection/centernet/recipe.sh",
                  ("calibration drawn from val2017 itself, the split NXP evaluates on",)),
}


def get_mode(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise HarnessError(f"unknown quantization mode {name!r}; use one of {', '.join(MODES)}") from None


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise HarnessError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


__all__ = ["MODES", "RECIPES", "Mode", "Recipe", "get_mode", "get_recipe"]
