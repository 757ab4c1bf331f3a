"""Fine-tuning from trained weights (--init-from): every layer but a resized classifier comes
from the donor; mismatched donors are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fails_one_line

from tinyspeech_tf import zoo
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.features import DEFAULT_CONFIG, frontend_named
from tinyspeech_tf.train.init_from import initialise


def test_pretrained_weights_fill_all_but_the_new_classifier():
    shipped = zoo.tinyspeech_m(weights="speech_commands")
    model = zoo.tinyspeech_m(num_classes=5)
    done = initialise(model, "pretrained", "tinyspeech_m", {}, DEFAULT_CONFIG)
    assert done["layers_fresh"] == ["classifier"] and done["layers_copied"] > 5
    for ours, theirs in zip(model.layers[:-1], shipped.layers[:-1], strict=True):
        for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert model.layers[-1].get_weights()[0].shape[-1] == 5


def test_same_labels_copy_everything():
    model = zoo.tinyspeech_m()
    done = initialise(model, "pretrained", "tinyspeech_m", {}, DEFAULT_CONFIG)
    assert done["layers_fresh"] == []
    shipped = zoo.tinyspeech_m(weights="speech_commands")
    x = np.random.default_rng(0).standard_normal((2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), shipped(x).numpy(), rtol=1e-6, atol=1e-6)


def test_mismatched_donors_are_refused():
    with pytest.raises(UserError, match="not tinyspeech_m"):
        initialise(zoo.tinyspeech_m(), str(zoo.PRETRAINED_DIR / "ds_cnn"), "tinyspeech_m", {},
                   DEFAULT_CONFIG)
    with pytest.raises(UserError, match="front-end"):
        honk = frontend_named("honk_40x98")
        initialise(zoo.tinyspeech_m(input_shape=(*honk.feature_shape, 1)), "pretrained",
                   "tinyspeech_m", {}, honk)


def test_cli_refuses_unknown_donors(tmp_path, capsys):
    fails_one_line(["train", "--model", "tiny_conv", "--init-from", "pretrained", "--out",
                    str(tmp_path / "a")], capsys, "tiny_conv has no shipped weights")
    fails_one_line(["train", "--init-from", str(tmp_path / "nope"), "--out",
                    str(tmp_path / "b")], capsys, "neither 'pretrained' nor a run directory")
