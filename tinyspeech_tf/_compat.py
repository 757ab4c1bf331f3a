"""One place that imports TensorFlow and Keras 2 the same way for every module.

Modules import ``keras`` from here rather than ``tf.keras``: if a user imported TensorFlow
before this package, ``tf.keras`` may already be Keras 3, while ``tf_keras`` is always Keras 2,
the flavour tensorflow-model-optimization needs.
"""

import os

import tinyspeech_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
