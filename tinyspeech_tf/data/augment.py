"""The ``tf.data`` input pipeline: batching, shuffling and training-time augmentation.

Why stateless random ops keyed by (seed, epoch, batch): the same seed gives bit-identical
batches on every run, and ``epoch=k`` rebuilds exactly the k-th epoch, so a resumed training
run sees the data it would have seen without the interruption. Augmentation follows the TF
speech_commands example: time shift up to ±100 ms with zero fill, then with probability 0.8 a
random 1 s cut of a background-noise clip mixed in at a volume uniform in [0, 0.1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyspeech_tf.data.protocol import CLIP_SAMPLES, SAMPLE_RATE, SILENCE, UNKNOWN
from tinyspeech_tf.data.sources import Split
from tinyspeech_tf.errors import UserError

# Keeps (seed, epoch, batch) keys distinct for any realistic number of batches per epoch.
_BATCHES_PER_EPOCH_KEY = 1 << 24


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation settings (defaults: the TF speech_commands example / MLPerf Tiny)."""

    time_shift_ms: float = 100.0
    background_frequency: float = 0.8
    background_volume: float = 0.1
    # Fraction of examples replaced by a 1 s window cut at a random offset from the clip
    # joined to another clip of the batch (see stream_windows); 0 = off.
    stream_windows: float = 0.0

    @property
    def time_shift_samples(self) -> int:
        return int(round(self.time_shift_ms * SAMPLE_RATE / 1000.0))


def _noise_table(background_noise: list[np.ndarray] | None):
    """Concatenate the noise clips into one tensor plus start/usable-range per clip."""
    clips = [np.asarray(c, np.float32) for c in (background_noise or [])
             if len(c) >= CLIP_SAMPLES]
    if not clips:
        return None
    starts = np.cumsum([0] + [len(c) for c in clips[:-1]]).astype(np.int64)
    spans = np.array([len(c) - CLIP_SAMPLES + 1 for c in clips], dtype=np.int64)
    return np.concatenate(clips), starts, spans


def augment_batch(waves, key, noise_table, config: AugmentConfig = AugmentConfig()):
    """Augment a batch ``[B, 16000]`` with stateless randomness from ``key`` (int64 ``[2]``).

    ``noise_table`` is ``(flat, starts, spans)`` tensors from the clips, or None for shift only.
    """
    from tinyspeech_tf._compat import tf

    batch = tf.shape(waves)[0]
    k_shift, k_clip, k_off, k_gate, k_vol = tf.unstack(
        tf.random.experimental.stateless_split(key, num=5))
    max_shift = config.time_shift_samples
    if max_shift > 0:
        shift = tf.random.stateless_uniform([batch], k_shift, minval=-max_shift,
                                            maxval=max_shift + 1, dtype=tf.int32)
        padded = tf.pad(waves, [[0, 0], [max_shift, max_shift]])
        # out[t] = in[t - shift]: positive shift delays the word, the gap is zero-filled.
        idx = tf.range(CLIP_SAMPLES)[None, :] + (max_shift - shift)[:, None]
        waves = tf.gather(padded, idx, batch_dims=1)
    if noise_table is not None and config.background_frequency > 0:
        flat, starts, spans = noise_table
        n_clips = tf.shape(starts, out_type=tf.int64)[0]
        clip = tf.random.stateless_uniform([batch], k_clip, minval=0, maxval=n_clips,
                                           dtype=tf.int64)
        frac = tf.random.stateless_uniform([batch], k_off, dtype=tf.float64)
        offset = tf.cast(tf.floor(frac * tf.cast(tf.gather(spans, clip), tf.float64)), tf.int64)
        begin = tf.gather(starts, clip) + offset
        noise = tf.gather(flat, begin[:, None] + tf.range(CLIP_SAMPLES, dtype=tf.int64)[None, :])
        gate = tf.cast(tf.random.stateless_uniform([batch], k_gate)
                       < config.background_frequency, tf.float32)
        volume = tf.random.stateless_uniform([batch], k_vol, maxval=config.background_volume)
        waves = waves + noise * (gate * volume)[:, None]
    return tf.clip_by_value(waves, -1.0, 1.0)


# A window holding at least this share of a clip's energy is that clip's word; one holding at
# least PARTIAL of a word (but no whole one) is a fragment, which must not fire: _unknown_.
WHOLE, PARTIAL = 0.85, 0.2


def stream_windows(waves, labels, key, fraction: float, silence: int, unknown: int):
    """Replace ``fraction`` of a batch by what a streaming model sees between words.

    Why: a board runs the model on every stride of continuous audio, so most windows hold a
    word off-centre, a fragment of one, or the end of one word and the start of the next;
    a model trained on centred clips fires on those. Each chosen clip is joined to its
    neighbour in the batch (in random order) and a 1 s window is cut at a random offset. Its
    label follows the clips' energy inside the window: a clip with at least ``WHOLE`` of its
    energy there gives its own label (keyword or unknown); else a word with at least
    ``PARTIAL`` there makes it ``_unknown_`` (a fragment); else ``_silence_``. Silence clips
    count as no word. Stateless in ``key``, like :func:`augment_batch`.
    """
    from tinyspeech_tf._compat import tf

    batch = tf.shape(waves)[0]
    k_pick, k_order, k_off = tf.unstack(tf.random.experimental.stateless_split(key, num=3))
    other, other_labels = tf.roll(waves, 1, axis=0), tf.roll(labels, 1, axis=0)
    first = tf.random.stateless_uniform([batch], k_order) < 0.5  # the clip before its partner
    pair = tf.where(first[:, None], tf.concat([waves, other], 1), tf.concat([other, waves], 1))
    offset = tf.random.stateless_uniform([batch], k_off, minval=0, maxval=CLIP_SAMPLES + 1,
                                         dtype=tf.int32)
    window = tf.gather(pair, offset[:, None] + tf.range(CLIP_SAMPLES)[None, :], batch_dims=1)

    def share(clip, start):
        """The share of ``clip``'s energy inside the window, the clip placed at ``start``."""
        energy = tf.concat([tf.zeros([batch, 1]), tf.cumsum(tf.square(clip), axis=1)], 1)
        lo = tf.clip_by_value(offset - start, 0, CLIP_SAMPLES)
        hi = tf.clip_by_value(offset - start + CLIP_SAMPLES, 0, CLIP_SAMPLES)
        inside = (tf.gather(energy, hi, batch_dims=1) - tf.gather(energy, lo, batch_dims=1))
        return inside / (energy[:, -1] + 1e-9)

    start = tf.where(first, 0, CLIP_SAMPLES)
    own, theirs = share(waves, start), share(other, CLIP_SAMPLES - start)
    is_word, other_word = labels != silence, other_labels != silence
    fragment = tf.fill([batch], tf.constant(unknown if unknown >= 0 else silence, tf.int32))
    label = tf.where(is_word & (own >= WHOLE), labels, tf.where(
        other_word & (theirs >= WHOLE), other_labels, tf.where(
            (is_word & (own >= PARTIAL)) | (other_word & (theirs >= PARTIAL)), fragment,
            tf.fill([batch], tf.constant(silence, tf.int32)))))
    chosen = tf.random.stateless_uniform([batch], k_pick) < fraction
    return tf.where(chosen[:, None], window, waves), tf.where(chosen, label, labels)


@dataclass(frozen=True)
class SpecAugment:
    """SpecAugment-style masking of the features (Park et al., 2019): per example,
    ``time_masks`` spans of 0..``time_mask_frames`` frames and ``freq_masks`` spans of
    0..``freq_mask_coeffs`` coefficients set to zero. All zeros: off."""

    time_masks: int = 0
    time_mask_frames: int = 0
    freq_masks: int = 0
    freq_mask_coeffs: int = 0

    def __post_init__(self) -> None:
        if min(self.time_masks, self.time_mask_frames, self.freq_masks,
               self.freq_mask_coeffs) < 0:
            raise UserError(f"SpecAugment counts and widths must be >= 0, got {self}")

    @property
    def active(self) -> bool:
        return bool(self.time_masks * self.time_mask_frames
                    or self.freq_masks * self.freq_mask_coeffs)


# Keeps the masks' random stream apart from the waveform augmentation's (same seed and epoch).
_MASK_STREAM = 0x5EC


def _spans(key, batch, count: int, width: int, size):
    """[B, size] float mask, 0 inside ``count`` random spans of up to ``width`` per row."""
    from tinyspeech_tf._compat import tf

    keep = tf.ones([batch, size], tf.float32)
    positions = tf.range(size)[None, :]
    for k in tf.unstack(tf.random.experimental.stateless_split(key, num=max(count, 1)))[:count]:
        k_w, k_s = tf.unstack(tf.random.experimental.stateless_split(k, num=2))
        w = tf.random.stateless_uniform([batch, 1], k_w, minval=0, maxval=width + 1,
                                        dtype=tf.int32)
        start = tf.random.stateless_uniform([batch, 1], k_s, minval=0, maxval=size,
                                            dtype=tf.int32)
        inside = (positions >= start) & (positions < start + w)
        keep = keep * tf.cast(~inside, tf.float32)
    return keep


def mask_features(features, masks: SpecAugment, seed: int, epoch: int, batch):
    """Apply ``masks`` to features ``[B, frames, coeffs, 1]`` with stateless randomness keyed
    by (seed, epoch, batch index), so a resumed run masks exactly as an uninterrupted one."""
    from tinyspeech_tf._compat import tf

    key = tf.stack([tf.constant(int(seed) * 4099 + _MASK_STREAM, tf.int64),
                    int(epoch) * _BATCHES_PER_EPOCH_KEY + tf.cast(batch, tf.int64)])
    k_time, k_freq = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
    shape = tf.shape(features)
    out = features
    if masks.time_masks and masks.time_mask_frames:
        keep = _spans(k_time, shape[0], masks.time_masks, masks.time_mask_frames, shape[1])
        out = out * keep[:, :, None, None]
    if masks.freq_masks and masks.freq_mask_coeffs:
        keep = _spans(k_freq, shape[0], masks.freq_masks, masks.freq_mask_coeffs, shape[2])
        out = out * keep[:, None, :, None]
    return out


def make_dataset(split: Split, *, batch_size: int, training: bool,
                 background_noise: list[np.ndarray] | None = None, seed: int = 0,
                 epoch: int = 0, epochs: int | None = 1, shuffle: bool | None = None,
                 augment: AugmentConfig | None = None, drop_remainder: bool = False):
    """Batched ``(waveform [B, 16000] float32, label [B] int32)`` dataset over a split.

    ``training`` turns on shuffling and augmentation (``augment`` overrides the defaults);
    validation/test data pass through untouched and in order. ``epoch`` is the first epoch
    number (for resuming) and ``epochs`` how many to yield (None: repeat forever). Features
    are not computed here: callers ``.map`` their front-end over the result. Clips are read
    per batch (:class:`~tinyspeech_tf.data.clips.Clips`), so the pipeline's memory does not
    grow with the split.
    """
    from tinyspeech_tf._compat import tf

    n = len(split)
    if n == 0:
        raise UserError(f"the {split.name or 'requested'} split is empty; nothing to batch")
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1 (got {batch_size})")
    shuffle = training if shuffle is None else shuffle
    config = (augment or AugmentConfig()) if training else None
    clips = split.waveforms
    labels = tf.constant(split.labels, dtype=tf.int32)
    table = _noise_table(background_noise) if config is not None else None
    if table is not None:
        table = tuple(tf.constant(t) for t in table)
    seed64 = tf.constant(int(seed), tf.int64)
    names = list(split.label_names)
    silence = names.index(SILENCE) if SILENCE in names else -1
    unknown = names.index(UNKNOWN) if UNKNOWN in names else -1
    if config is not None and config.stream_windows > 0 and silence < 0:
        raise UserError(f"--stream-windows needs a {SILENCE} label for windows between words; "
                        f"the labels are {', '.join(names)}")

    def epoch_batches(e):
        idx = tf.range(n, dtype=tf.int64)
        if shuffle:
            idx = tf.random.experimental.stateless_shuffle(idx, seed=tf.stack([seed64, e]))
        batches = tf.data.Dataset.from_tensor_slices(idx).batch(batch_size, drop_remainder)
        return batches.enumerate().map(lambda b, i: (e, b, i))

    def read(idx):
        """The batch's clips, read now: memory holds batches in flight, not the split."""
        return clips.read(idx)

    def load(e, b, idx):
        x = tf.numpy_function(read, [idx], tf.float32, stateful=False)
        x.set_shape([None, CLIP_SAMPLES])
        y = tf.gather(labels, idx)
        if config is not None:
            key = tf.stack([seed64, e * _BATCHES_PER_EPOCH_KEY + b])
            if config.stream_windows > 0:
                x, y = stream_windows(x, y, tf.stack([seed64 + 1, key[1]]),
                                      config.stream_windows, silence, unknown)
            x = augment_batch(x, key, table, config)
        return x, y

    stop = np.iinfo(np.int64).max if epochs is None else epoch + epochs
    ds = tf.data.Dataset.range(epoch, stop).flat_map(epoch_batches)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
