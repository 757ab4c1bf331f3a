"""Fine-tuning from trained weights: ``tinyspeech train --init-from pretrained|RUN``.

Why: a custom vocabulary (``--words``) usually comes with a few hundred clips, too few to
learn an MFCC feature extractor from scratch; the shipped models learned one from thousands
of speakers. Every layer whose weights fit is copied from the donor (the shipped bundle of the
same zoo model, or any finished run of it); the classifier, whose width is the number of
labels, starts fresh when the label count differs. The donor must see the same input (its
frontend.json), or its filters would be tuned to other features.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.runs import read_run

PRETRAINED = "pretrained"


def donor_dir(init_from: str, model_name: str) -> Path:
    """The run directory weights come from: the shipped bundle of ``model_name`` for
    ``pretrained``, else ``init_from`` itself."""
    from tinyspeech_tf.zoo import PRETRAINED_DIR, pretrained_names

    if init_from == PRETRAINED:
        if model_name not in pretrained_names():
            raise UserError(f"--init-from pretrained: {model_name} has no shipped weights; "
                            f"models with weights: {', '.join(pretrained_names()) or 'none'} "
                            "(or give a run directory of this model)")
        return PRETRAINED_DIR / model_name
    path = Path(init_from)
    if not path.is_dir():
        raise UserError(f"--init-from {init_from}: neither 'pretrained' nor a run directory")
    return path


def initialise(model, init_from: str, model_name: str, model_kwargs: dict, frontend) -> dict:
    """Copy the donor's weights into ``model`` (built for this run's labels) in place; returns
    what was done, for metrics.json."""
    from tinyspeech_tf import zoo
    from tinyspeech_tf._compat import keras

    source = donor_dir(init_from, model_name)
    donor_run = read_run(source)
    config = donor_run.config or {}
    if config.get("model") != model_name or config.get("spec"):
        what = "an architecture spec" if config.get("spec") else repr(config.get("model"))
        raise UserError(f"--init-from {init_from}: {source} is a run of {what}, not "
                        f"{model_name}; give a run of the same zoo model")
    if (config.get("model_kwargs") or {}) != (model_kwargs or {}):
        raise UserError(f"--init-from {init_from}: {source} was built with "
                        f"{config.get('model_kwargs') or {}}, this run with {model_kwargs or {}}")
    if donor_run.frontend.digest() != frontend.digest():
        raise UserError(f"--init-from {init_from}: {source}/frontend.json is another front-end "
                        "than this run's --frontend; fine-tune on the donor's input")
    weights = source / zoo.WEIGHTS_FILE
    if weights.is_file():
        builder = getattr(zoo, model_name)
        donor = builder(input_shape=model.input_shape[1:], num_classes=len(donor_run.labels),
                        weights=os.fspath(weights), **(model_kwargs or {}))
    elif (source / "model.keras").is_file():
        import tinyspeech_tf.layers  # noqa: F401  (registers the custom layers)

        donor = keras.models.load_model(source / "model.keras", compile=False)
    else:
        raise UserError(f"--init-from {init_from}: {source} has neither {zoo.WEIGHTS_FILE} nor "
                        "model.keras")
    if len(donor.layers) != len(model.layers):
        raise UserError(f"--init-from {init_from}: {source} has {len(donor.layers)} layers, "
                        f"this model {len(model.layers)}; give a run of the same architecture")
    copied, fresh = 0, []
    for ours, theirs in zip(model.layers, donor.layers, strict=True):
        mine, given = ours.get_weights(), theirs.get_weights()
        if not mine:
            continue
        if [w.shape for w in mine] == [w.shape for w in given]:
            ours.set_weights(given)
            copied += 1
        else:
            fresh.append(ours.name)
    if fresh != [model.layers[-1].name] and fresh:  # only the classifier may start fresh
        raise UserError(f"--init-from {init_from}: layers {', '.join(fresh)} of {source} do not "
                        "fit (only the classifier may differ); give a run of the same "
                        "architecture")
    return {"source": init_from if init_from == PRETRAINED else os.fspath(init_from),
            "donor_labels": list(donor_run.labels), "layers_copied": copied,
            "layers_fresh": fresh}
