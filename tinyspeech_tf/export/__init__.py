"""Export a trained run to the C/C++ files a TFLM firmware compiles (``tinyspeech export-tflite``).

* :mod:`~tinyspeech_tf.export.c_array`: C literals, and parsers that read arrays back (tests).
* :mod:`~tinyspeech_tf.export.headers`: the text of each generated file (no TensorFlow needed).
* :mod:`~tinyspeech_tf.export.command`: reading the run, measuring arena and golden vectors,
  writing ``build/<run>/`` and the firmware copies; the CLI command.

Submodules are not imported here so ``import tinyspeech_tf.export`` stays cheap.
"""
