"""The precision search of `harness quantize --max-drop`: the cheapest precision plan whose AP drop stays
within a budget.

run: the search as one application (calibration hygiene, held-out images, the quant_search record);
search: the budgeted loop, knowing nothing of TensorFlow or COCO; space: which plans it proposes, in
which order; trials: building, timing, pricing and scoring a plan for real.
"""
