"""Build the latency reference model (harness/models/reference/reference.tflite) from seeded numpy weights.

The file ships with the package, so a board needs neither TensorFlow nor the internet to bench it; this
module is how it was made, and `python -m harness.quantize.reference_model OUT` makes it again. The
network is a miniature of the layers that dominate mb3-centernet's time (3x3 convolution, depthwise 3x3,
1x1 expansion, hard-swish, a stride-2 pyramid) on a 256x256 input: a few milliseconds on an x86 core, so
benching it beside a candidate costs little, yet it exercises the same kernels the candidate does, which
is what makes candidate / reference a speed ratio that carries over between hosts of different speed.
Weights come from numpy's PCG64 with a fixed seed: the same file on every TensorFlow version that
converts these ops the same way (the test rebuilds it and compares outputs, not bytes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 20261130
INPUT_SIZE = 256
# (kind, filters, stride): the stem, then four inverted-residual-like stages without the residual adds.
LAYERS = (("conv", 24, 2), ("dw", 24, 1), ("pw", 48, 1), ("dw", 48, 2), ("pw", 96, 1), ("dw", 96, 2),
          ("pw", 128, 1), ("dw", 128, 2), ("pw", 192, 1), ("pw", 8, 1))


def build_reference_tflite() -> bytes:
    """The reference model's bytes (float32, one input [1,256,256,3], one output)."""
    from harness.common.tensorflow import import_tensorflow

    tf = import_tensorflow("building the reference model")
    rng = np.random.default_rng(SEED)
    x = inputs = tf.keras.Input((INPUT_SIZE, INPUT_SIZE, 3), batch_size=1, name="image")
    for i, (kind, filters, stride) in enumerate(LAYERS):
        if kind == "dw":
            layer = tf.keras.layers.DepthwiseConv2D(3, stride, padding="same", name=f"l{i}_dw")
        else:
            size = 3 if kind == "conv" else 1
            layer = tf.keras.layers.Conv2D(filters, size, stride, padding="same", name=f"l{i}_{kind}")
        x = layer(x)
        fan_in = int(np.prod(layer.kernel.shape[:-1])) if kind != "dw" else 9
        layer.set_weights([rng.normal(0, (2 / fan_in) ** 0.5, layer.kernel.shape).astype(np.float32),
                           np.zeros(layer.bias.shape, np.float32)])
        if i < len(LAYERS) - 1:
            x = tf.keras.layers.Activation("hard_swish", name=f"l{i}_hswish")(x)  # as in MobileNetV3
    model = tf.keras.Model(inputs, x)
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "models" / "reference" / "reference.tflite"
    data = build_reference_tflite()
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
