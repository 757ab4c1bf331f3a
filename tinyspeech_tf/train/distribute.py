"""Training on several devices or machines with ``tf.distribute``.

Why: the full Speech Commands set and the paper's 50 epochs take hours on one CPU; a user with
GPUs, or several machines, should get the same run faster without another code path. The
recipe is unchanged: ``--batch-size`` stays the *global* batch, split evenly across replicas,
so the optimizer sees the same steps as on one device; QAT and the int8 conversion run after
training as before.

- ``default``: one device (TensorFlow's default strategy).
- ``mirrored``: every local GPU (``MirroredStrategy``); without GPUs, every logical CPU device
  (one unless configured, so only useful in tests).
- ``multiworker``: ``MultiWorkerMirroredStrategy`` over the machines of ``TF_CONFIG``. Each
  worker runs the same command; the chief (``chief`` task, else ``worker`` 0) writes the run
  directory, the others write theirs to a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import json
import os

from tinyspeech_tf.errors import UserError

STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multiworker")


def make_strategy(name: str):
    """The ``tf.distribute`` strategy named ``name`` (see the module docstring)."""
    from tinyspeech_tf._compat import tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        # NCCL is GPU-only: CPU replicas reduce through one device.
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multiworker":
        cluster = tf_config()
        if not cluster:
            raise UserError("--strategy multiworker needs TF_CONFIG (the cluster and this "
                            "machine's task); see the README's multi-worker example")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"--strategy {name}: choose one of {', '.join(STRATEGIES)}")


def tf_config() -> dict:
    """``TF_CONFIG`` as a dict ({} when unset); a one-line error when it is not JSON."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise UserError("TF_CONFIG: not JSON; set it to {\"cluster\": {\"worker\": [\"host:port\", "
                        "...]}, \"task\": {\"type\": \"worker\", \"index\": N}}") from None
    if not isinstance(value, dict) or "cluster" not in value or "task" not in value:
        raise UserError("TF_CONFIG: needs \"cluster\" and \"task\" entries")
    return value


def is_chief(name: str) -> bool:
    """Whether this process writes the run directory: always, except for the non-chief
    workers of ``multiworker``."""
    if name != "multiworker":
        return True
    config = tf_config()
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if "chief" in config.get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and index == 0


def shard_by_data(dataset):
    """``dataset`` with its batches split across workers by element: its source is a range of
    indices, not files, which the default file-based sharding cannot split."""
    from tinyspeech_tf._compat import tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
