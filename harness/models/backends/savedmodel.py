"""TF SavedModel backend: local SavedModel directories and TF Hub detectors (the detection dict).

TensorFlow is imported on load, never at module import, so boards without it are unaffected.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from harness.errors import HarnessError
from harness.models.backends.base import Backend, ModelOutput, map_outputs, register_backend


@register_backend
class SavedModelBackend(Backend):
    name = "savedmodel"

    def load(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError:
            raise HarnessError("the savedmodel backend needs TensorFlow: pip install 'centernet-harness[tf]'") from None
        self._tf = tf
        if not self.model_path.is_dir() or not tf.saved_model.contains_saved_model(str(self.model_path)):
            raise HarnessError(f"not a SavedModel directory (no saved_model.pb): {self.model_path}")
        if self.options.threads:
            # Once TF is initialised in this process the setting cannot change any more.
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(self.options.threads)
        try:
            self.model = tf.saved_model.load(str(self.model_path))
        except Exception as exc:  # TF raises many types for a broken SavedModel
            raise HarnessError(f"cannot load SavedModel {self.model_path}: {str(exc).splitlines()[0]}") from None
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
            "output_mapping": dict(self._mapping),
        }
