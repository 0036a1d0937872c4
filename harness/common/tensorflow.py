"""TensorFlow, imported only where a code path needs it, quietly, with one clear line when it is missing.

Boards run without TensorFlow: the SavedModel backend, tf.lite and quantization import it through here,
inside the functions that use it, never at module import.
"""

from __future__ import annotations

import os

from harness.errors import HarnessError


def import_tensorflow(needed_for: str):
    """The tensorflow module; `needed_for` ("the savedmodel backend", "quantization") names who asked."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise HarnessError(f"{needed_for} needs TensorFlow: pip install 'centernet-harness[tf]'") from None
    return tf
