"""What a model is and how to feed it: the model cards and zoo, fetching and unpacking, the runtimes behind one
backend registry, preprocessing, the decoders of each head layout, the pipeline that joins them, and the
shipped latency reference model.

Runs on boards (numpy, Pillow, a TFLite runtime; TensorFlow only lazily, for a SavedModel). Imports only
harness.common and harness.errors.
"""
