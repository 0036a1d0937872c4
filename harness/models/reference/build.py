"""Build the latency reference model (reference.tflite, beside this file) from seeded numpy weights.

The file ships with the package, so a board needs neither TensorFlow nor the internet to bench it; this
module is how it was made, and `python -m harness.models.reference.build OUT` makes it again. The
network is a miniature of the layers that dominate mb3-centernet's time (3x3 convolution, depthwise 3x3,
1x1 expansion, hard-swish, a stride-2 pyramid) on a 384x384 input: it exercises the same kernels the
candidate does, which is what makes candidate / reference a speed ratio that carries over between hosts
of different speed. It is sized to take a fair share of the candidate's time per invoke: v1, a much
smaller model on 256x256, ran so briefly that other load rarely preempted it while it preempted the
candidate, so on a shared host the ratio moved with the load.
Weights come from numpy's PCG64 with a fixed seed; TensorFlow 2.21 rebuilds the file byte for byte, and
the test rebuilds it and compares outputs (other TF versions may lay the bytes out differently).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 20261130
INPUT_SIZE = 384
# (kind, filters, stride): the stem, then four inverted-residual-like stages without the residual adds.
LAYERS = (("conv", 32, 2), ("dw", 32, 1), ("pw", 64, 1), ("dw", 64, 2), ("pw", 128, 1), ("dw", 128, 2),
          ("pw", 192, 1), ("dw", 192, 2), ("pw", 256, 1), ("pw", 8, 1))


def build_reference_tflite() -> bytes:
    """The reference model's bytes (float32, one input [1,384,384,3], one output)."""
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
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "reference.tflite"
    data = build_reference_tflite()
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
