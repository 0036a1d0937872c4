"""Post-training quantization of a float SavedModel to TFLite, with a calibration set that can be replayed.

A quantized model can only be compared with a published one when its calibration images, their order and
their resize filter are known. NXP's eIQ CenterNet recipe draws them with Python's `random` (sorted file
list, `random.seed(1337)`, shuffle, the first 100, PIL's default resize filter) and converts with
optimizations DEFAULT, TFLITE_BUILTINS_INT8, int8 input and float32 outputs; both halves are replayable
here, and every setting lands in the sidecar record written next to the model.

Selective quantization (named layers kept in float) goes through TFLite's QuantizationDebugger, the
documented route for denylisting nodes; such a model takes float input and gives float outputs.
TensorFlow is imported only when a conversion runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.common.fileio import sha256_file, write_bytes_atomic
from harness.errors import HarnessError

# --------------------------------------------------------------------------------------------------
# Calibration sets

# Resize filters by name; "pil-default" calls Image.resize without a filter, as NXP's recipe does.
RESIZE_FILTERS: dict[str, int | None] = {
    "pil-default": None, "nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5,
}


def _shuffle_draw(files: list[str], count: int, seed: int | None) -> list[str]:
    """NXP's draw: the sorted list shuffled by Python's Mersenne Twister seeded with `seed`, then the first `count`."""
    rng = random.Random(seed)  # the same sequence as random.seed(seed) + random.shuffle
    out = list(files)
    rng.shuffle(out)
    return out[:count]


def _sorted_draw(files: list[str], count: int, seed: int | None) -> list[str]:
    """The first `count` files in name order (seed unused)."""
    return list(files)[:count]


# How files are drawn from a directory: name -> fn(sorted names, count, seed) -> names in feeding order.
DRAWS: dict[str, Callable[[list[str], int, int | None], list[str]]] = {
    "shuffle": _shuffle_draw,
    "sorted": _sorted_draw,
}


def list_images(root: str | Path) -> list[str]:
    """The names `sorted(glob(root + '/*'))` gives for one directory: non-hidden regular files, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"calibration directory not found: {root}")
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.is_file())


def read_list(path: str | Path) -> list[str]:
    """A calibration list: a JSON array of file names, or a text file with one name per line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise HarnessError(f"cannot read calibration list {path}: {exc.strerror or exc}") from None
    if path.suffix == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"calibration list {path} is not JSON: {exc}") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HarnessError(f"calibration list {path} must be a JSON array of file names")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise HarnessError(f"calibration list {path} names no files")
    return names


def resolved_filter(name: str) -> str:
    """The filter a resize really uses: for "pil-default", found by comparing with each named filter."""
    from PIL import Image

    if name not in RESIZE_FILTERS:
        raise HarnessError(f"unknown resize filter {name!r}; use one of {', '.join(RESIZE_FILTERS)}")
    if RESIZE_FILTERS[name] is not None:
        return name
    probe = Image.fromarray(np.random.default_rng(0).integers(0, 256, (13, 11, 3), dtype=np.uint8))
    default = np.asarray(probe.resize((7, 5)))
    for other, code in RESIZE_FILTERS.items():
        if code is not None and np.array_equal(default, np.asarray(probe.resize((7, 5), code))):
            return other
    return "unknown"


@dataclass(frozen=True)
class Calibration:
    """Calibration images in feeding order and how each becomes a model input."""

    root: Path
    files: tuple[str, ...]
    draw: str  # "shuffle" | "sorted" | "list"
    seed: int | None
    resize: str  # a RESIZE_FILTERS key
    size: tuple[int, int]  # (height, width)
    dtype: str = "float32"
    list_file: str | None = None

    def batches(self) -> Iterator[np.ndarray]:
        """Each image as [1, H, W, 3]: RGB, resized without keeping the aspect ratio, values 0..255."""
        from PIL import Image, UnidentifiedImageError

        resample = RESIZE_FILTERS[self.resize]
        h, w = self.size
        for name in self.files:
            path = self.root / name
            try:
                with Image.open(path) as im:
                    rgb = im.convert("RGB")
            except FileNotFoundError:
                raise HarnessError(f"calibration image not found: {path}") from None
            except (UnidentifiedImageError, OSError) as exc:
                raise HarnessError(f"not a readable image: {path} ({exc.__class__.__name__})") from None
            rgb = rgb.resize((w, h)) if resample is None else rgb.resize((w, h), resample)
            yield np.asarray(rgb, dtype=self.dtype)[None]

    def to_dict(self) -> dict:
        from PIL import __version__ as pillow

        return {
            "dir": str(self.root), "draw": self.draw, "seed": self.seed, "count": len(self.files),
            "list_file": self.list_file, "resize": self.resize, "resize_resolved": resolved_filter(self.resize),
            "pillow": pillow, "size": list(self.size), "dtype": self.dtype, "files": list(self.files),
            "files_sha256": hashlib.sha256("\n".join(self.files).encode()).hexdigest(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        """The calibration a sidecar record describes (to replay it, e.g. for the QuantizationDebugger)."""
        return cls(Path(d["dir"]), tuple(d["files"]), d["draw"], d.get("seed"), d["resize"], tuple(d["size"]),
                   d.get("dtype", "float32"), d.get("list_file"))


def draw_calibration(root: str | Path, *, size: tuple[int, int], count: int | None = None, draw: str = "shuffle",
                     seed: int | None = 1337, resize: str = "pil-default", list_file: str | Path | None = None,
                     dtype: str = "float32") -> Calibration:
    """Draw a calibration set from a directory, or replay a list of its files in the listed order."""
    root = Path(root)
    if count is not None and count < 1:
        raise HarnessError("the calibration count must be at least 1")
    if resize not in RESIZE_FILTERS:
        raise HarnessError(f"unknown resize filter {resize!r}; use one of {', '.join(RESIZE_FILTERS)}")
    if list_file is not None:
        names = read_list(list_file)
        missing = [n for n in names if not (root / n).is_file()]
        if missing:
            raise HarnessError(f"{len(missing)} file(s) of {list_file} are not in {root}, e.g. {missing[0]}")
        names = names[:count] if count is not None else names
        return Calibration(root, tuple(names), "list", None, resize, size, dtype, str(list_file))
    if draw not in DRAWS:
        raise HarnessError(f"unknown draw {draw!r}; use one of {', '.join(DRAWS)} (or --calib-list FILE)")
    files = list_images(root)
    if not files:
        raise HarnessError(f"no files in calibration directory {root}")
    count = len(files) if count is None else count
    if count > len(files):
        raise HarnessError(f"{root} holds {len(files)} files, fewer than the {count} asked for")
    return Calibration(root, tuple(DRAWS[draw](files, count, seed)), draw, seed if draw == "shuffle" else None,
                       resize, size, dtype)


def calibration_overlap(cal: Calibration, eval_dir: str | Path) -> dict:
    """Calibration images that are also evaluation images, by file name and by content.

    Calibrating on the images that are scored flatters the quantized model (NXP's 17.2 was measured so).
    """
    eval_dir = Path(eval_dir)
    eval_names = set(list_images(eval_dir)) if eval_dir.is_dir() else set()
    by_name = sorted(set(cal.files) & eval_names)
    eval_hashes = {sha256_file(eval_dir / n): n for n in eval_names}
    by_content = sorted(n for n in cal.files if sha256_file(cal.root / n) in eval_hashes)
    return {"eval_dir": str(eval_dir), "eval_count": len(eval_names), "by_name": by_name, "by_content": by_content}


# --------------------------------------------------------------------------------------------------
# Converter modes and recipes


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


# --------------------------------------------------------------------------------------------------
# Conversion


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise HarnessError("quantization needs TensorFlow: pip install 'centernet-harness[tf]'") from None
    return tf


def tf_interpreter(**kwargs: Any) -> Any:
    """tf.lite.Interpreter (it reads the converter's own debug ops) for inspection: no deprecation warning, and
    no default delegate, whose nodes would stand among the model's own ops."""
    tf = _tf()
    kwargs.setdefault("experimental_op_resolver_type",
                      tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        interp = tf.lite.Interpreter(**kwargs)
    interp.allocate_tensors()
    return interp


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def check_saved_model(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise HarnessError(f"not a SavedModel directory (no saved_model.pb): {path}")
    return path


def saved_model_input(path: str | Path) -> tuple[tuple[int | None, ...], str]:
    """Shape and dtype of the serving signature's one input, to size the calibration images."""
    tf = _tf()
    path = check_saved_model(path)
    try:
        model = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many types for a broken SavedModel
        raise HarnessError(f"cannot load SavedModel {path}: {_first_line(exc)}") from None
    sig = getattr(model, "signatures", {}).get("serving_default")
    if sig is None:
        raise HarnessError(f"{path}: no serving_default signature to convert")
    specs = list(sig.structured_input_signature[1].values())
    if len(specs) != 1:
        raise HarnessError(f"{path}: expected one image input, the signature has {len(specs)}")
    return tuple(specs[0].shape.as_list()), specs[0].dtype.name


def converter_for(saved_model: str | Path, mode: Mode, calibration: Calibration | None) -> Any:
    """A TFLiteConverter for the SavedModel, set up for `mode` and fed `calibration` in its order."""
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(check_saved_model(saved_model)))
    mode.configure(converter, tf)
    if mode.calibrated:
        if calibration is None:
            raise HarnessError(f"mode {mode.name} needs calibration images: --calib DIR (and --calib-list FILE)")
        converter.representative_dataset = lambda: ([b] for b in calibration.batches())
    return converter


def _convert(fn: Callable[[], bytes], what: str) -> bytes:
    try:
        return fn()
    except HarnessError:
        raise
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError ...
        raise HarnessError(f"{what} failed: {_first_line(exc)}") from None


def op_outputs(model: bytes) -> list[tuple[str, str]]:
    """(op type, output tensor name) of a .tflite model's ops in execution order; layers are known by the name."""
    interp = tf_interpreter(model_content=model)
    details = interp.get_tensor_details()
    return [(op["op_name"], details[op["outputs"][0]]["name"])
            for op in interp._get_ops_details() if len(op["outputs"])]


def _unknown_layers(names: Sequence[str], known: Sequence[str]) -> str:
    import difflib

    lines = []
    for n in names:
        close = difflib.get_close_matches(n, known, n=1, cutoff=0.5)
        lines.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return "; ".join(lines)


def float_layer_names(saved_model: str | Path, layers: Sequence[str] = (), ops: Sequence[str] = ()) -> list[str]:
    """The layers to keep in float: `layers` checked to exist, plus every layer whose op type is in `ops`.

    Read from the float conversion (seconds), whose op output names are the calibrated model's, so a
    typo fails before the calibration runs.
    """
    if not layers and not ops:
        return []
    known = op_outputs(_convert(converter_for(saved_model, MODES["float32"], None).convert,
                                f"converting {saved_model} (float32)"))
    names = [n for _, n in known]
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise HarnessError(f"no layer named {_unknown_layers(unknown, names)} in {saved_model}; layer names are "
                           "op output tensor names, as `harness compare` lists them")
    types = sorted({t for t, _ in known})
    bad = [t for t in ops if t not in types]
    if bad:
        raise HarnessError(f"no op of type {', '.join(bad)} in {saved_model}; it has {', '.join(types)}")
    kept = list(dict.fromkeys([*layers, *(n for t, n in known if t in ops)]))
    if set(names) <= set(kept):
        raise HarnessError("every layer would stay in float: nothing is left to quantize (use --mode float32)")
    return kept


def convert(saved_model: str | Path, mode_name: str, calibration: Calibration | None = None,
            float_layers: Sequence[str] = ()) -> bytes:
    """Convert the SavedModel; `float_layers` (op output tensor names) stay in float (int8 mode only)."""
    mode = get_mode(mode_name)
    if not float_layers:
        converter = converter_for(saved_model, mode, calibration)
        return _convert(converter.convert, f"converting {saved_model} ({mode.name})")
    if mode.name != "int8":
        raise HarnessError(f"keeping layers in float works in mode int8 only (the QuantizationDebugger), "
                           f"not {mode.name}")
    return _convert(lambda: _selective(saved_model, mode, calibration, list(float_layers)),
                    f"selective quantization of {saved_model}")


def _selective(saved_model: str | Path, mode: Mode, calibration: Calibration | None, float_layers: list[str]) -> bytes:
    tf = _tf()
    converter = converter_for(saved_model, mode, calibration)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers)
    with warnings.catch_warnings():  # the debugger opens a tf.lite.Interpreter, deprecated in favour of LiteRT
        warnings.simplefilter("ignore", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: ([b] for b in calibration.batches()), debug_options=options)
    model = debugger.get_nondebug_quantized_model()
    interp = tf_interpreter(model_content=model)
    details = interp.get_tensor_details()
    out_dtype = {details[op["outputs"][0]]["name"]: details[op["outputs"][0]]["dtype"]
                 for op in interp._get_ops_details() if len(op["outputs"])}
    still = [n for n in float_layers if out_dtype.get(n) is not np.float32]
    if still:
        raise HarnessError(f"the converter did not keep these layers in float: {'; '.join(still)}")
    return model


# --------------------------------------------------------------------------------------------------
# Files and the sidecar record


def tree_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a directory as the sorted list of (relative path, file sha256)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    lines = [f"{p.relative_to(path).as_posix()}\t{sha256_file(p)}" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    """Where `harness quantize` puts the record of how a model was made: MODEL.tflite -> MODEL.tflite.json."""
    return Path(f"{model_path}.json")


def read_sidecar(model_path: str | Path) -> dict | None:
    """The quantize record next to a model, or None when there is none (or it is not one)."""
    path = sidecar_path(model_path)
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and rec.get("kind") == "quantize" else None


def quantize_saved_model(saved_model: str | Path, output: str | Path, mode_name: str,
                         calibration: Calibration | None, *, float_layers: Sequence[str] = (),
                         float_ops: Sequence[str] = (), recipe: str | None = None,
                         overlap: dict | None = None) -> dict:
    """Convert, write the model atomically and return the body of its `quantize` record."""
    import time

    mode = get_mode(mode_name)
    if not mode.calibrated:
        calibration = None
    if (float_layers or float_ops) and mode.name != "int8":
        raise HarnessError(f"keeping layers in float works in mode int8 only, not {mode.name}")
    float_layers = float_layer_names(saved_model, float_layers, float_ops)
    t0 = time.perf_counter()
    model = convert(saved_model, mode.name, calibration, float_layers)
    seconds = time.perf_counter() - t0
    write_bytes_atomic(output, model)
    tf = _tf()
    inp = tf_interpreter(model_content=model).get_input_details()[0]
    return {
        "mode": mode.name,
        "mode_description": mode.description,
        "recipe": recipe,
        "source": {"path": str(saved_model), "sha256": tree_sha256(saved_model)},
        "output": {"path": str(output), "sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model),
                   "input_dtype": np.dtype(inp["dtype"]).name,
                   "input_quantization": [float(inp["quantization"][0]), int(inp["quantization"][1])]},
        "calibration": calibration.to_dict() if calibration else None,
        "float_layers": list(float_layers),
        "float_ops": list(float_ops),
        "selective_route": "tf.lite.experimental.QuantizationDebugger denylisted_nodes" if float_layers else None,
        "calibration_overlap": overlap,
        "tensorflow": tf.__version__,
        "convert_seconds": round(seconds, 2),
    }


__all__ = [
    "DRAWS", "MODES", "RECIPES", "RESIZE_FILTERS", "Calibration", "Mode", "Recipe", "calibration_overlap",
    "convert", "draw_calibration", "float_layer_names", "list_images", "quantize_saved_model", "read_list",
    "read_sidecar", "sidecar_path", "tree_sha256",
]
