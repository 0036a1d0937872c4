"""The bottom layer: plumbing every other layer shares (atomic writes and file hashes, the one model and
image-list identity, plain tables and progress, the lazy TensorFlow import, the usable core count, bulk building).

Runs on boards: the standard library, numpy (lazily, to scan a large JSON text) and tqdm (lazily, for progress
bars), and nothing else of the harness but harness.errors.
"""
