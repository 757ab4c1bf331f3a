"""tinyspeech-tf: TinySpeech attention-condenser keyword spotting for Keras, TFLite and TFLM."""

import os

# tensorflow-model-optimization's QAT only supports Keras 2, so TensorFlow must pick tf_keras
# as tf.keras; the switch is read when TensorFlow is first imported, hence before any TF import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"
