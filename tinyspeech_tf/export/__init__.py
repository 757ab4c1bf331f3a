"""Export a trained run to the C/C++ files a TFLM firmware compiles (``tinyspeech export-tflite``).

* :mod:`~tinyspeech_tf.export.c_array`: C literals, and parsers that read arrays back (tests).
* :mod:`~tinyspeech_tf.export.headers`: the text of each generated file (no TensorFlow needed).
* :mod:`~tinyspeech_tf.export.bundle`: measuring arena and golden vectors of a run (read by
  :mod:`tinyspeech_tf.runs`), writing ``build/<run>/`` and the firmware copies. The command
  itself is :mod:`tinyspeech_tf.apps.export_tflite`.

Submodules are not imported here so ``import tinyspeech_tf.export`` stays cheap.
"""
