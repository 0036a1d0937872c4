"""Evaluate and benchmark CenterNet object detectors on COCO, on workstations and boards.

Importing the package is cheap on purpose: TensorFlow, pandas and matplotlib are imported only by
the code paths that need them, so a board with numpy and a TFLite runtime can run `harness bench`.
"""

__version__ = "0.1.0"
