/*
 * kws_frontend.c - streaming MFCC front-end; see kws_frontend.h for the contract.
 *
 * The real FFT of length N = KWS_FE_FFT_LENGTH is computed as a complex radix-2 FFT of length
 * N/2 over z[n] = x[2n] + i*x[2n+1], followed by the standard even/odd split:
 *   X[k] = E[k] + W_N^k O[k],  E = (Z[k] + conj Z[N/2-k]) / 2,  O = -i (Z[k] - conj Z[N/2-k]) / 2.
 * Everything is single precision and allocation free.
 */
#define KWS_FE_DEFINE_TABLES
#include "kws_frontend.h"

#include <math.h>
#include <string.h>

#if (KWS_FE_FFT_LENGTH & (KWS_FE_FFT_LENGTH - 1)) != 0 || KWS_FE_FFT_LENGTH < 4
#error "KWS_FE_FFT_LENGTH must be a power of two >= 4"
#endif
#if KWS_FE_FRAME_LENGTH > KWS_FE_FFT_LENGTH
#error "KWS_FE_FRAME_LENGTH must not exceed KWS_FE_FFT_LENGTH"
#endif

#define HALF_FFT (KWS_FE_FFT_LENGTH / 2)

void kws_frontend_init(kws_frontend_t *st)
{
    memset(st, 0, sizeof(*st));
    st->fill = 0;
    st->needed = KWS_FE_FRAME_LENGTH;
}

/* In-place complex FFT of HALF_FFT points (interleaved), forward (exp(-2 pi i ...)). */
static void complex_fft(float *buf)
{
    /* bit-reversal permutation */
    unsigned j = 0;
    for (unsigned i = 0; i < HALF_FFT - 1u; i++) {
        if (i < j) {
            float tr = buf[2 * i], ti = buf[2 * i + 1];
            buf[2 * i] = buf[2 * j];
            buf[2 * i + 1] = buf[2 * j + 1];
            buf[2 * j] = tr;
            buf[2 * j + 1] = ti;
        }
        unsigned bit = HALF_FFT >> 1;
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
    /* butterflies; W_size^m = W_N^(m * N / size) read from the length-N twiddle tables */
    for (unsigned size = 2; size <= HALF_FFT; size <<= 1) {
        unsigned half = size >> 1;
        unsigned stride = KWS_FE_FFT_LENGTH / size;
        for (unsigned start = 0; start < HALF_FFT; start += size) {
            for (unsigned m = 0; m < half; m++) {
                float wr = kws_fe_twiddle_cos[m * stride];
                float wi = -kws_fe_twiddle_sin[m * stride];
                float *a = &buf[2 * (start + m)];
                float *b = &buf[2 * (start + m + half)];
                float tr = wr * b[0] - wi * b[1];
                float ti = wr * b[1] + wi * b[0];
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
        }
    }
}

/* |rfft(x)| at bin k from Z[k] = (zr, zi) and Z[N/2-k] = (cr, -ci) of the N/2-point FFT. */
static float split_bin(unsigned k, float zr, float zi, float cr, float ci)
{
    float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
    /* O = -i (Z - C) / 2 */
    float or_ = 0.5f * (zi - ci), oi = -0.5f * (zr - cr);
    float wr = kws_fe_twiddle_cos[k], wi = -kws_fe_twiddle_sin[k];
    float xr = er + wr * or_ - wi * oi;
    float xi = ei + wr * oi + wi * or_;
    return sqrtf(xr * xr + xi * xi);
}

/*
 * |rfft(x)| for k = 0..N/2 from the N/2-point complex FFT held in work, in place: bins k
 * and N/2-k need exactly Z[k] and Z[N/2-k], so each pair is computed, then written over the
 * real parts it consumed (|X[k]| at work[2k], |X[N/2]| at work[1]; see MAG). No second
 * buffer: the magnitudes cost no state. Same operations in the same order as before, so the
 * values are bit-identical.
 */
#define MAG(work, k) ((k) == HALF_FFT ? (work)[1] : (work)[2 * (k)])

static void real_split_magnitude(float *z)
{
    const float dc = fabsf(z[0] + z[1]);
    const float nyquist = fabsf(z[0] - z[1]);
    for (unsigned k = 1; k <= HALF_FFT / 2; k++) {
        unsigned c = HALF_FFT - k;
        float zr = z[2 * k], zi = z[2 * k + 1];
        float cr = z[2 * c], ci = -z[2 * c + 1]; /* conj Z[N/2-k] */
        float mk = split_bin(k, zr, zi, cr, ci);
        float mc = c != k ? split_bin(c, cr, -ci, zr, -zi) : mk;
        z[2 * k] = mk;
        z[2 * c] = mc;
    }
    z[0] = dc;
    z[1] = nyquist;
}

/* Mel, log and DCT of the magnitudes in work (see MAG) into out[KWS_FE_NUM_MFCC]. */
static void mel_log_dct(const float *work, float *out)
{
    float logmel[KWS_FE_NUM_MEL_BINS];
    for (int m = 0; m < KWS_FE_NUM_MEL_BINS; m++) {
        const float *w = &kws_fe_mel_weights[kws_fe_mel_offset[m]];
        const unsigned start = kws_fe_mel_start[m];
        float acc = 0.0f;
        for (int i = 0; i < (int)kws_fe_mel_count[m]; i++) {
            acc += MAG(work, start + (unsigned)i) * w[i];
        }
        /* mel >= 0, so the offset keeps the log finite even for digital silence */
        logmel[m] = logf(acc + KWS_FE_LOG_OFFSET);
    }
    for (int k = 0; k < KWS_FE_NUM_MFCC; k++) {
        const float *d = &kws_fe_dct[k * KWS_FE_NUM_MEL_BINS];
        float acc = 0.0f;
        for (int m = 0; m < KWS_FE_NUM_MEL_BINS; m++) {
            acc += d[m] * logmel[m];
        }
        out[k] = acc;
    }
}

static const float kInt16Scale = 1.0f / 32768.0f; /* as tf.audio.decode_wav */

/* Window, zero-pad, FFT, magnitude, mel, log and DCT of FRAME_LENGTH samples. The work buffer
 * lives on the stack for this call only (see kws_frontend_t). */
static void transform_frame(const int16_t *frame, float *out)
{
    float work[KWS_FE_FFT_LENGTH];
    for (int i = 0; i < KWS_FE_FRAME_LENGTH; i++) {
        work[i] = ((float)frame[i] * kInt16Scale) * kws_fe_window[i];
    }
    for (int i = KWS_FE_FRAME_LENGTH; i < KWS_FE_FFT_LENGTH; i++) {
        work[i] = 0.0f;
    }
    complex_fft(work);
    real_split_magnitude(work);
    mel_log_dct(work, out);
}

void kws_frontend_frame(kws_frontend_t *st, const int16_t *frame, float *out)
{
    (void)st;
    transform_frame(frame, out);
}

int kws_frontend_push(kws_frontend_t *st, const int16_t *samples, int n, float *out,
                      int max_frames)
{
    int frames = 0;
    for (int i = 0; i < n; i++) {
        st->frame[st->fill++] = samples[i];
        if (--st->needed == 0) {
            st->needed = KWS_FE_FRAME_STEP;
            if (frames < max_frames) {
                transform_frame(st->frame, out + frames * KWS_FE_NUM_MFCC);
                frames++;
            }
            /* the next frame starts with this one's samples from FRAME_STEP on */
            memmove(st->frame, st->frame + KWS_FE_FRAME_STEP,
                    sizeof(int16_t) * (size_t)KWS_FE_OVERLAP);
            st->fill = KWS_FE_OVERLAP;
        }
    }
    return frames;
}

void kws_frontend_clip(kws_frontend_t *st, const int16_t *clip, float *out)
{
    for (int f = 0; f < KWS_FE_NUM_FRAMES; f++) {
        kws_frontend_frame(st, clip + f * KWS_FE_FRAME_STEP, out + f * KWS_FE_NUM_MFCC);
    }
    kws_frontend_init(st);
}

void kws_frontend_quantize(const float *in, int n, float scale, int zero_point, int8_t *out)
{
    for (int i = 0; i < n; i++) {
        float v = roundf(in[i] / scale); /* half away from zero, as features.quantize */
        long q;
        if (v != v) { /* NaN: zero_point rather than undefined behaviour */
            q = zero_point;
        } else if (v > 1000.0f) { /* far out of range: avoid overflow in the cast */
            q = 127;
        } else if (v < -1000.0f) {
            q = -128;
        } else {
            q = (long)v + zero_point;
        }
        if (q > 127) {
            q = 127;
        } else if (q < -128) {
            q = -128;
        }
        out[i] = (int8_t)q;
    }
}

void kws_window_init(kws_feature_window_t *win)
{
    memset(win, 0, sizeof(*win));
}

void kws_window_push(kws_feature_window_t *win, const float *frame)
{
    if (win->count == KWS_FE_NUM_FRAMES) {
        memmove(win->data, win->data + KWS_FE_NUM_MFCC,
                sizeof(float) * (KWS_FE_NUM_FRAMES - 1) * KWS_FE_NUM_MFCC);
        win->count--;
    }
    memcpy(win->data + win->count * KWS_FE_NUM_MFCC, frame, sizeof(float) * KWS_FE_NUM_MFCC);
    win->count++;
}

int kws_window_ready(const kws_feature_window_t *win)
{
    return win->count == KWS_FE_NUM_FRAMES;
}
