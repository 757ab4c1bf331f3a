"""tf.distribute: MirroredStrategy over two logical CPU devices trains what one device trains.

Each run is its own process: logical devices must be configured before TensorFlow starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_export import write_tone_set

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.train.distribute import is_chief, make_strategy, tf_config

SCRIPT = """
import json, sys
import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
from tinyspeech_tf.train import TrainConfig, train
config = TrainConfig(data=sys.argv[2], out=sys.argv[3], strategy=sys.argv[1], epochs=2,
                     batch_size=8, max_steps_per_epoch=3, calibration_examples=16, qat_epochs=1,
                     lr_schedule="cosine")
metrics = train(config, verbose=0)
print(json.dumps({"strategy": metrics["strategy"], "int8": metrics["int8_tflm"]["accuracy"]}))
"""


def _train(strategy: str, data: Path, out: Path) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SCRIPT, strategy, str(data), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _weights(run: Path) -> list[np.ndarray]:
    import tinyspeech_tf.layers  # noqa: F401  (registers the custom layers)
    from tinyspeech_tf._compat import keras

    return keras.models.load_model(run / "model.keras", compile=False).get_weights()


def test_mirrored_on_two_cpus_matches_one_device(tmp_path):
    data = write_tone_set(tmp_path / "tones", train_per_label=6)
    one = _train("default", data, tmp_path / "one")
    two = _train("mirrored", data, tmp_path / "two")
    assert one["strategy"] == {"name": "default", "replicas": 1}
    assert two["strategy"] == {"name": "mirrored", "replicas": 2}
    # The global batch of 8 is split 4 + 4 and the gradients summed: the same steps, up to
    # the order of float additions.
    first, second = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    assert abs(one["int8"] - two["int8"]) <= 0.05


def test_multiworker_roles_and_bad_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG: not JSON"):
        tf_config()
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    for task, chief in (({"type": "worker", "index": 0}, True),
                        ({"type": "worker", "index": 1}, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        assert is_chief("multiworker") is chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {**cluster, "chief": ["h:3"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not is_chief("multiworker") and is_chief("mirrored")
