/*
 * kws_frontend.h - streaming MFCC front-end for keyword spotting (C99, no heap).
 *
 * Reproduces the MLPerf Tiny KWS MFCC (TensorFlow tf.signal pipeline) on a microcontroller:
 *   x/32768 -> periodic Hann(480) -> |rfft 512| -> 40 mel bins (20..4000 Hz)
 *   -> log(mel + 1e-6) -> DCT-II scaled as tf.signal.mfccs_from_log_mel_spectrograms -> first 10.
 * All constants (window, twiddles, sparse mel weights, DCT matrix, sizes) come from the generated
 * kws_frontend_tables.h, so the C can never drift from the Python FrontendConfig.
 *
 * Streaming semantics (identical to whole-clip tf.signal.stft framing, no padding):
 *   frame k covers samples [STEP*k, STEP*k + FRAME_LENGTH) of the stream. kws_frontend_push()
 *   accepts chunks of any size; a frame is emitted the moment its last sample arrives. The first
 *   frame therefore needs FRAME_LENGTH (480) samples, every later one STEP (320) more. Pushing a
 *   16000-sample clip in 320-sample chunks gives no frame for the first chunk and exactly one frame
 *   for each of the 49 following chunks: the 49 frames of the whole clip, bit for bit the same
 *   as processing it in one call.
 */
#ifndef KWS_FRONTEND_H
#define KWS_FRONTEND_H

#include <stdint.h>

#include "kws_frontend_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Streaming state: the samples of the frame being filled, as int16. The FFT's float work
 * buffer (KWS_FE_FFT_LENGTH floats, 2 KB) is a local of the call that completes a frame: it is
 * needed only while a frame is transformed, so it costs stack for that moment, not static RAM
 * for the life of the stream (the model's Invoke, which also needs stack, runs after the
 * front-end call returns). */
/* Samples two consecutive frames share: the next frame's start, kept between pushes. */
#define KWS_FE_OVERLAP (KWS_FE_FRAME_LENGTH - KWS_FE_FRAME_STEP)
#if KWS_FE_OVERLAP < 1
#error "the streaming front-end needs overlapping frames (FRAME_STEP < FRAME_LENGTH)"
#endif

typedef struct {
    int16_t frame[KWS_FE_FRAME_LENGTH]; /* the current frame's samples (positions
                                         * 0..fill-1); its first OVERLAP came from the last */
    int fill;                           /* samples of the current frame in frame */
    int needed;                         /* samples still needed before the next frame */
} kws_frontend_t;

/* A sliding window of the last KWS_FE_NUM_FRAMES feature frames (oldest first), model input. */
typedef struct {
    float data[KWS_FE_NUM_FRAMES * KWS_FE_NUM_MFCC];
    int count; /* frames pushed so far, saturating at KWS_FE_NUM_FRAMES */
} kws_feature_window_t;

/* Reset the stream: the next pushed sample is sample 0 of frame 0. */
void kws_frontend_init(kws_frontend_t *st);

/*
 * Append n int16 samples. For every completed frame, writes KWS_FE_NUM_MFCC floats to
 * out + i * KWS_FE_NUM_MFCC (at most max_frames frames; samples beyond that are still consumed
 * but their frames dropped). Returns the number of frames written.
 */
int kws_frontend_push(kws_frontend_t *st, const int16_t *samples, int n, float *out,
                      int max_frames);

/* One frame from FRAME_LENGTH contiguous samples. Leaves st (and a stream being pushed into
 * it) untouched. */
void kws_frontend_frame(kws_frontend_t *st, const int16_t *frame, float *out);

/*
 * Whole clip: KWS_FE_CLIP_SAMPLES samples -> KWS_FE_NUM_FRAMES x KWS_FE_NUM_MFCC floats
 * (row-major, frame-major). Leaves `st` reset.
 */
void kws_frontend_clip(kws_frontend_t *st, const int16_t *clip, float *out);

/* int8 quantization as TFLite: q = clamp(round_half_away(x / scale) + zero_point, -128, 127). */
void kws_frontend_quantize(const float *in, int n, float scale, int zero_point, int8_t *out);

void kws_window_init(kws_feature_window_t *win);
/* Append one frame (KWS_FE_NUM_MFCC floats), dropping the oldest once full. */
void kws_window_push(kws_feature_window_t *win, const float *frame);
/* Non-zero once KWS_FE_NUM_FRAMES frames have been pushed, i.e. `data` is a full model input. */
int kws_window_ready(const kws_feature_window_t *win);

#ifdef __cplusplus
}
#endif

#endif /* KWS_FRONTEND_H */
