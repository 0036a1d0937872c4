"""TF SavedModel backend: local SavedModel directories and TF Hub detectors (the detection dict).

TensorFlow is imported on load, never at module import, so boards without it are unaffected.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from harness.common.tensorflow import import_tensorflow
from harness.errors import HarnessError, first_line
from harness.models.backends.base import Backend, ModelInput, ModelOutput, map_outputs, register_backend

_GRAPH_FILES = ("saved_model.pb", "saved_model.pbtxt")


@register_backend
class SavedModelBackend(Backend):
    name = "savedmodel"
    takes = "a SavedModel directory (with saved_model.pb)"

    @classmethod
    def opens(cls, path: Path) -> bool:
        return path.is_dir() and any((path / f).is_file() for f in _GRAPH_FILES)

    @classmethod
    def model_input(cls, path: Path) -> ModelInput | None:
        """The serving signature's input, read from saved_model.pb without loading the graph's functions."""
        tf = import_tensorflow("the savedmodel backend")
        from google.protobuf import message, text_format
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel()
        pb = path / "saved_model.pb"
        try:
            if pb.is_file():
                saved.ParseFromString(pb.read_bytes())
            else:
                text_format.Parse((path / "saved_model.pbtxt").read_text(), saved)
        except (OSError, message.DecodeError, text_format.ParseError) as exc:
            raise HarnessError(f"cannot load SavedModel {path}: {first_line(exc)}") from None
        sig = next((mg.signature_def["serving_default"] for mg in saved.meta_graphs
                    if "serving_default" in mg.signature_def), None)
        if sig is None or len(sig.inputs) != 1:
            return None
        info = next(iter(sig.inputs.values()))
        dims = [d.size for d in info.tensor_shape.dim]
        h, w = (None, None) if info.tensor_shape.unknown_rank or len(dims) != 4 else (
            d if d > 0 else None for d in dims[1:3])
        return ModelInput(h, w, tf.dtypes.as_dtype(info.dtype).name)

    def load(self) -> None:
        tf = self._tf = import_tensorflow("the savedmodel backend")
        if not self.model_path.is_dir() or not tf.saved_model.contains_saved_model(str(self.model_path)):
            raise HarnessError(f"not a SavedModel directory (no saved_model.pb): {self.model_path}")
        if self.options.threads:
            # Once TF is initialised in this process the setting cannot change any more.
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(self.options.threads)
        try:
            self.model = tf.saved_model.load(str(self.model_path))
        except Exception as exc:  # TF raises many types for a broken SavedModel
            raise HarnessError(f"cannot load SavedModel {self.model_path}: {first_line(exc)}") from None
        sig = self.model.signatures.get("serving_default") if hasattr(self.model, "signatures") else None
        if sig is None:
            raise HarnessError(f"{self.model_path}: no serving_default signature to read the outputs from")
        input_spec = next(iter(sig.structured_input_signature[1].values()))
        self._input_dtype = input_spec.dtype
        if callable(self.model):
            self._call = self.model  # TF Hub convention: m(uint8 [1,H,W,3]) -> dict
        else:
            key = next(iter(sig.structured_input_signature[1]))
            self._call = lambda x: sig(**{key: x})
        available = [ModelOutput(k, (k,), tuple(spec.shape.as_list()))
                     for k, spec in sig.structured_outputs.items()]
        self._mapping = map_outputs(self.model_path.name, available, self.outputs)

    def set_input(self, batch: np.ndarray) -> None:
        if batch.dtype != self._input_dtype.as_numpy_dtype:
            raise HarnessError(f"{self.model_path.name} takes {self._input_dtype.name} input, the card feeds "
                               f"{batch.dtype}; fix the card's input dtype")
        self._staged = self._tf.convert_to_tensor(batch)

    def invoke(self) -> None:
        self._out = self._call(self._staged)

    def read_outputs(self) -> dict[str, np.ndarray]:
        return {head: self._out[key].numpy() for head, key in self._mapping.items()}

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "runtime": "tensorflow",
            "runtime_version": self._tf.__version__,
            "threads": self.options.threads,
            "delegate": None,
            "model": str(self.model_path),
            "model_sha256": self.model_sha256(),
            "output_mapping": dict(self._mapping),
        }
