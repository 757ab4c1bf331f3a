"""tf.data pipeline: batching, eval pass-through, seeded augmentation, resume by epoch."""

from __future__ import annotations

import numpy as np
import pytest

from tinyspeech_tf.data.augment import AugmentConfig, make_dataset
from tinyspeech_tf.data.protocol import LABELS
from tinyspeech_tf.data.sources import Split
from tinyspeech_tf.errors import UserError


def _split(n: int = 20) -> Split:
    """Each clip is a 0.1 s burst at 0.5 s whose height encodes the example index."""
    waves = np.zeros((n, 16000), np.float32)
    for i in range(n):
        waves[i, 7200:8800] = 0.01 * (i + 1)
    return Split(waves, np.arange(n, dtype=np.int32) % 12, LABELS, name="train")


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_eval_is_ordered_and_untouched() -> None:
    split = _split(21)
    noise = [np.ones(40000, np.float32)]
    ds = make_dataset(split, batch_size=8, training=False, background_noise=noise)
    batches = [x.shape[0] for x, _ in ds]
    assert batches == [8, 8, 5]
    x, y = _collect(ds)
    np.testing.assert_array_equal(x, split.waveforms)
    np.testing.assert_array_equal(y, split.labels)
    assert y.dtype == np.int32 and x.dtype == np.float32


def test_training_shift_is_zero_filled_and_labels_follow_examples() -> None:
    split = _split(40)
    cfg = AugmentConfig(background_frequency=0.0)
    x, y = _collect(make_dataset(split, batch_size=16, training=True, seed=3, augment=cfg))
    assert sorted(y.tolist()) == sorted(split.labels.tolist())
    assert x.shape == (40, 16000)
    shifts = []
    for clip, label_hint in zip(x, y, strict=True):
        nz = np.nonzero(clip)[0]
        assert len(nz) == 1600  # burst kept whole, everything else zero
        height = clip[nz[0]]
        assert np.allclose(clip[nz], height)
        index = int(round(height / 0.01)) - 1
        assert split.labels[index] == label_hint  # the label travelled with its waveform
        shifts.append(int(nz[0]) - 7200)
    assert max(np.abs(shifts)) <= 1600 and len(set(shifts)) > 10
    order = [int(round(c[np.nonzero(c)[0][0]] / 0.01)) - 1 for c in x]
    assert order != list(range(40))  # shuffled


def test_background_noise_probability_and_volume() -> None:
    split = Split(np.zeros((400, 16000), np.float32), np.zeros(400, np.int32), LABELS)
    noise = [np.ones(20000, np.float32), -np.ones(30000, np.float32)]
    cfg = AugmentConfig(time_shift_ms=0.0)
    x, _ = _collect(make_dataset(split, batch_size=100, training=True, background_noise=noise,
                                 seed=1, augment=cfg))
    level = np.abs(x).max(axis=1)
    mixed = np.mean(level > 0)
    assert 0.72 < mixed < 0.88  # probability 0.8
    assert level.max() <= 0.1 + 1e-6 and level.max() > 0.09  # volume uniform up to 0.1
    assert np.all(np.abs(x).max(axis=1) == np.abs(x).min(axis=1))  # constant noise


def test_seeded_determinism_and_resume_by_epoch() -> None:
    split = _split(30)
    noise = [np.random.default_rng(0).standard_normal(32000).astype(np.float32)]

    def run(seed, epoch, epochs):
        return _collect(make_dataset(split, batch_size=7, training=True, background_noise=noise,
                                     seed=seed, epoch=epoch, epochs=epochs))

    x_a, y_a = run(5, 0, 2)
    x_b, y_b = run(5, 0, 2)
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(y_a, y_b)
    x_resumed, y_resumed = run(5, 1, 1)  # a fresh process resuming at epoch 1
    np.testing.assert_array_equal(x_resumed, x_a[30:])
    np.testing.assert_array_equal(y_resumed, y_a[30:])
    assert not np.array_equal(x_a[:30], x_a[30:])  # epochs differ from each other
    x_c, _ = run(6, 0, 1)
    assert not np.array_equal(x_c, x_a[:30])


def test_repeat_forever_and_empty_split() -> None:
    ds = make_dataset(_split(5), batch_size=4, training=True, epochs=None, drop_remainder=True)
    assert len(list(ds.take(6))) == 6
    empty = Split(np.zeros((0, 16000), np.float32), np.zeros(0, np.int32), LABELS, name="val")
    with pytest.raises(UserError, match="val split is empty"):
        make_dataset(empty, batch_size=4, training=False)


def test_spec_augment_masks_are_seeded_spans_of_bounded_width():
    from tinyspeech_tf._compat import tf
    from tinyspeech_tf.data import SpecAugment, mask_features

    masks = SpecAugment(time_masks=2, time_mask_frames=5, freq_masks=1, freq_mask_coeffs=2)
    x = tf.ones([64, 49, 10, 1])
    a = mask_features(x, masks, seed=3, epoch=4, batch=5).numpy()[..., 0]
    again = mask_features(x, masks, seed=3, epoch=4, batch=5).numpy()[..., 0]
    other = mask_features(x, masks, seed=3, epoch=4, batch=6).numpy()[..., 0]
    np.testing.assert_array_equal(a, again)  # a resumed run masks the same batch the same way
    assert not np.array_equal(a, other)
    assert set(np.unique(a)) <= {0.0, 1.0}
    for row in a:
        masked_frames = np.flatnonzero((row == 0).all(axis=1))
        masked_coeffs = np.flatnonzero((row == 0).all(axis=0))
        assert len(masked_frames) <= 2 * 5 or len(masked_coeffs) == 10
        assert len(masked_coeffs) <= 2 or len(masked_frames) == 49
        # Outside the masked frames and coefficients nothing is touched.
        keep = np.ones_like(row, bool)
        keep[masked_frames, :] = False
        keep[:, masked_coeffs] = False
        assert (row[keep] == 1).all()
    assert (a == 0).any(axis=(1, 2)).mean() > 0.5  # most examples get some mask
    off = mask_features(x, SpecAugment(), seed=3, epoch=4, batch=5).numpy()
    np.testing.assert_array_equal(off, x.numpy())
    assert not SpecAugment().active and masks.active


def test_stream_windows_are_labelled_by_what_they_hold() -> None:
    """With every example a stream window (no shift, no noise), each window's label follows
    the energy of the word burst it holds: whole -> the word, a fragment -> _unknown_,
    nothing -> _silence_; the same seed gives the same batch."""
    from tinyspeech_tf._compat import tf
    from tinyspeech_tf.data.augment import PARTIAL, WHOLE, stream_windows

    rate = 16000
    burst = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4000) / rate)).astype(np.float32)
    yes, silence, unknown = LABELS.index("yes"), LABELS.index("_silence_"), \
        LABELS.index("_unknown_")
    word = np.zeros(rate, np.float32)
    word[6000:10000] = burst
    waves = np.stack([word, np.zeros(rate, np.float32)] * 8)
    labels = np.array([yes, silence] * 8, np.int32)
    seen = set()
    for k in range(12):
        key = tf.constant([k, 3], tf.int64)
        x, y = stream_windows(tf.constant(waves), tf.constant(labels), key, 1.0, silence,
                              unknown)
        x2, _ = stream_windows(tf.constant(waves), tf.constant(labels), key, 1.0, silence,
                               unknown)
        np.testing.assert_array_equal(x.numpy(), x2.numpy())
        for window, label in zip(x.numpy(), y.numpy(), strict=True):
            share = float(np.sum(window ** 2) / np.sum(burst ** 2))
            expected = yes if share >= WHOLE else unknown if share >= PARTIAL else silence
            assert label == expected, (share, label)
            seen.add(int(label))
    assert seen == {yes, unknown, silence}
