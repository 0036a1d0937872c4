"""The bottom layer: plumbing every other layer shares (atomic writes and file hashes, the one model and
image-list identity, plain tables and progress, the lazy TensorFlow import).

Runs on boards: the standard library (tqdm lazily, for progress bars), and nothing else of the harness
but harness.errors.
"""
