"""One place that imports TensorFlow and Keras 2 the same way for every module.

Modules import ``keras`` from here rather than ``tf.keras``: if a user imported TensorFlow
before this package, ``tf.keras`` may already be Keras 3, while ``tf_keras`` is always Keras 2,
the flavour tensorflow-model-optimization needs.
"""

import contextlib
import os
import sys

import tinyspeech_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_stderr_muted():
    """Mute the C++ side's stderr (absl's pre-init warning, oneDNN and CUDA notes, which
    TF_CPP_MIN_LOG_LEVEL does not reach) so a command's first line is its own; the
    environment variable TINYSPEECH_VERBOSE=1 (``tinyspeech --verbose``) keeps them."""
    if os.environ.get("TINYSPEECH_VERBOSE") or not hasattr(sys.stderr, "fileno"):
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError):  # a captured stream without a descriptor
        yield
        return
    sys.stderr.flush()
    saved, null = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)


with native_stderr_muted():
    import tensorflow as tf
    import tf_keras as keras

__all__ = ["keras", "native_stderr_muted", "tf"]
