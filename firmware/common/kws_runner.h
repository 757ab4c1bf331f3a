/*
 * kws_runner.h - streaming keyword spotting on TFLM: PCM -> MFCC frames -> int8 model ->
 * posterior smoother -> detections (C++14 or later, no heap, no globals).
 *
 * Why one module: the Arduino sketch and the Zephyr app (and any other board) need the same
 * plumbing between the C front-end (kws_frontend.h), the exported model (model_settings.h,
 * op_resolver.h, model_data.h) and the C smoother (recognize_commands.h). Getting it subtly
 * wrong (frame order, quantization, when to invoke, timestamps) costs accuracy without any
 * error, so it lives here once and is tested on the host against the Python twins
 * (tests/test_firmware_runner.py, with a mock TFLM interpreter).
 *
 * Streaming: kws_runner_push_audio() accepts int16 mono PCM at KWS_FE_SAMPLE_RATE in chunks
 * of any size. Each completed front-end frame (every KWS_FE_FRAME_STEP samples, 20 ms) enters
 * a window of the last KWS_FE_NUM_FRAMES frames. Once the window is full the model runs on it,
 * then again on every invoke_every_frames-th new frame: window j holds frames
 * [j*N, j*N + 49), the same windows `tinyspeech stream --stride-ms 20*N` scores on the host.
 * The window is quantized with the model's input tensor scale and zero point
 * (kws_frontend_quantize), the int8 output goes to the smoother with the window's timestamp,
 * and the callback sees every inference; detections are those with result.is_new_command.
 *
 * Default cadence: the run's detector stride (TINYSPEECH_DETECTOR_STRIDE_FRAMES) or, without
 * one, every 2 frames (40 ms, 25 inferences/s). Why not every frame: one frame of extra latency
 * is inaudible, the smoother's 1 s window still holds 1000 / 40 + 1 results (well above
 * minimum_count), and the Cortex-M4 budget halves. If an inference (plus a frame of front-end)
 * takes longer than N * 20 ms the audio backlog grows without bound: raise invoke_every_frames
 * (time it with the callback's clock).
 *
 * Smoother ring: sized by the model and the stride in use, not for the worst case. It holds
 * TINYSPEECH_SMOOTHER_CLASSES (the label count) classes and KWS_RUNNER_SMOOTHER_RESULTS
 * results: by default
 * TINYSPEECH_SMOOTHER_RESULTS of model_settings.h, what the default config's averaging window
 * holds at its stride (average_window_ms / (invoke_every_frames * 20 ms) + 1, at least
 * minimum_count). kws_runner_init refuses (KWS_RUNNER_ERR_SMOOTHER_RING) a config whose window
 * and stride need more results than that, e.g. a longer window or a shorter stride set at
 * run time: the ring would drop results the window should average, and the board would no
 * longer detect what the same settings detect on the host. To allow such configs, build every
 * file with -DKWS_RUNNER_SMOOTHER_RESULTS=n (n results cost n * (TINYSPEECH_LABEL_COUNT + 4)
 * bytes). A config within the ring never fills it with the stamps of a sample-counting clock;
 * should a jittery clock squeeze more results into the window, the oldest are dropped
 * (recognize_commands.h).
 *
 * Timestamps: now_ms is the caller's clock at the LAST sample of the chunk. A window that
 * completed k samples before the end of the chunk is stamped now_ms - k * 1000 / rate (integer
 * division), and never earlier than the previous stamp (a jittery clock must not make the
 * smoother reject a result). With a sample-counting clock (now_ms = samples * 1000 / rate) the
 * stamp is the moment the window's last sample arrived, as in tinyspeech_tf.stream: exactly,
 * whatever the chunk sizes, since 30 ms frames stepped by 20 ms end on whole milliseconds.
 *
 * Self-test (kws_runner_self_test, unless KWS_RUNNER_NO_SELF_TEST): the golden PCM of
 * golden.h (a few frames of the golden clip, about 3 KB of flash by default) streamed through
 * the front-end must give its rows of g_golden_features within 1 LSB (C vs TensorFlow float
 * rounding), and the model on all of g_golden_features must give g_golden_scores.
 * With TFLM's reference kernels that is exact; optimized kernels (CMSIS-NN, e.g. in the Arduino
 * library or CONFIG_TENSORFLOW_LITE_MICRO_CMSIS_NN_KERNELS) may round some scores differently:
 * the report carries the max difference, and -DKWS_RUNNER_SCORE_TOLERANCE=n accepts up to n.
 *
 * Include order: this header pulls in the exported model_settings.h and op_resolver.h (put the
 * export's folder on the include path) and TFLM's micro_interpreter.h.
 */
#ifndef KWS_RUNNER_H
#define KWS_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "kws_frontend.h"
#include "model_settings.h"
#include "op_resolver.h"
#include "recognize_commands.h"
#include "tensorflow/lite/micro/micro_interpreter.h"

#ifndef KWS_RUNNER_DEFAULT_INVOKE_EVERY
#ifdef TINYSPEECH_DETECTOR_STRIDE_FRAMES /* the run's chosen detector (model_settings.h) */
#define KWS_RUNNER_DEFAULT_INVOKE_EVERY TINYSPEECH_DETECTOR_STRIDE_FRAMES
#else
#define KWS_RUNNER_DEFAULT_INVOKE_EVERY 2 /* frames (x 20 ms) between inferences */
#endif
#endif
#ifndef KWS_RUNNER_SCORE_TOLERANCE
#define KWS_RUNNER_SCORE_TOLERANCE 0 /* LSB the self-test accepts between scores */
#endif

/* Milliseconds between front-end frames (20 ms for the MFCC front-end). */
#define KWS_RUNNER_FRAME_MS (KWS_FE_FRAME_STEP * 1000 / KWS_FE_SAMPLE_RATE)
/* Results an averaging window of window_ms holds when the model runs every every_frames
 * frames (both ends of the window count), or min_count if more: what the ring must hold. */
#define KWS_RUNNER_RESULTS_NEEDED(window_ms, every_frames, min_count)                            \
    ((window_ms) / ((every_frames) * KWS_RUNNER_FRAME_MS) + 1 > (min_count)                      \
         ? (window_ms) / ((every_frames) * KWS_RUNNER_FRAME_MS) + 1                              \
         : (min_count))

#if !defined(TINYSPEECH_SMOOTHER_RESULTS) || !defined(TINYSPEECH_SMOOTHER_CLASSES)
#error "model_settings.h predates TINYSPEECH_SMOOTHER_RESULTS/_CLASSES: re-export the model"
#endif
#ifndef KWS_RUNNER_SMOOTHER_RESULTS /* sized by the export for its labels and stride */
#define KWS_RUNNER_SMOOTHER_RESULTS TINYSPEECH_SMOOTHER_RESULTS
#endif

/* The default config (kws_runner_default_config) must fit its own ring. */
#ifdef TINYSPEECH_DETECTOR_WINDOW_MS
#define KWS_RUNNER_DEFAULT_WINDOW_MS TINYSPEECH_DETECTOR_WINDOW_MS
#define KWS_RUNNER_DEFAULT_MIN_COUNT TINYSPEECH_DETECTOR_MIN_COUNT
#else
#define KWS_RUNNER_DEFAULT_WINDOW_MS KWS_RECOGNIZER_DEFAULT_WINDOW_MS
#define KWS_RUNNER_DEFAULT_MIN_COUNT KWS_RECOGNIZER_DEFAULT_MIN_COUNT
#endif
#if KWS_RUNNER_SMOOTHER_RESULTS < KWS_RUNNER_RESULTS_NEEDED(                                     \
    KWS_RUNNER_DEFAULT_WINDOW_MS, KWS_RUNNER_DEFAULT_INVOKE_EVERY, KWS_RUNNER_DEFAULT_MIN_COUNT)
#error "the smoother ring is too small for the default window and stride: re-export the model or raise KWS_RUNNER_SMOOTHER_RESULTS"
#endif

/* The smoother's state: a ring of TINYSPEECH_SMOOTHER_CLASSES (the label count) x
 * KWS_RUNNER_SMOOTHER_RESULTS. */
typedef KWS_RECOGNIZER_STATE(TINYSPEECH_SMOOTHER_CLASSES, KWS_RUNNER_SMOOTHER_RESULTS)
    kws_runner_smoother_t;

/* Return codes (negative) of the kws_runner_* functions. */
enum {
    KWS_RUNNER_OK = 0,
    KWS_RUNNER_ERR_ARGUMENT = -1,   /* NULL pointer, n < 0 or a config value out of range */
    KWS_RUNNER_ERR_MODEL_DATA = -2, /* model_data.cc is not the model of model_settings.h */
    KWS_RUNNER_ERR_SCHEMA = -3,     /* flatbuffer schema version is not TFLite's */
    KWS_RUNNER_ERR_OPS = -4,        /* registering the model's ops failed */
    KWS_RUNNER_ERR_ALLOCATE = -5,   /* AllocateTensors failed: arena too small? */
    KWS_RUNNER_ERR_TENSORS = -6,    /* input/output type, shape or quantization unexpected */
    KWS_RUNNER_ERR_INVOKE = -7,     /* Invoke failed */
    KWS_RUNNER_ERR_SMOOTHER = -8,   /* kws_recognizer_* rejected a config or a result */
    KWS_RUNNER_ERR_NOT_INIT = -9,   /* used before a successful kws_runner_init */
    KWS_RUNNER_ERR_SMOOTHER_RING = -10 /* window / stride need more results than the ring
                                        * holds (KWS_RUNNER_SMOOTHER_RESULTS) */
};

/* Short English text for a return code, for logs. */
const char* kws_runner_status_str(int status);

typedef struct {
    int32_t invoke_every_frames;      /* >= 1: run the model on every Nth new frame */
    kws_recognizer_config_t smoother; /* see recognize_commands.h */
} kws_runner_config_t;

/* One inference, passed to the callback (pointers valid during the call only). */
typedef struct {
    int32_t time_ms;         /* timestamp given to the smoother */
    int32_t frame_index;     /* index of the window's newest frame since init/reset (from 0) */
    int32_t inference_index; /* inferences since init/reset (from 0) */
    const int8_t* scores;    /* TINYSPEECH_LABEL_COUNT int8 model outputs */
    kws_recognizer_result_t result; /* smoother output; act on result.is_new_command */
    const char* label;       /* label of result.found_command */
} kws_runner_event_t;

typedef void (*kws_runner_callback_t)(const kws_runner_event_t* event, void* user);

/*
 * All state. Treat as opaque; it has no constructor (the TFLM objects are built in place by
 * kws_runner_init), so a static kws_runner_t needs no C++ start-up code. Its size is that of
 * its parts (the front-end's current frame of samples, the int8 feature window, the smoother's
 * ring, TFLM's interpreter and op resolver objects), besides the caller's tensor arena; take
 * sizeof(kws_runner_t) on your target rather than a figure typed here (`python -m
 * tinyspeech_tf.firmware_state` prints each part for Cortex-M4). The feature window is kept as
 * int8 (each frame quantized as it arrives), a quarter of a float window.
 */
typedef struct {
    uint32_t magic; /* set by a successful init */
    uint32_t built; /* set while the TFLM objects below exist (destroyed by re-init) */
    kws_runner_config_t config;
    kws_frontend_t frontend;
    int8_t window[TINYSPEECH_INPUT_SIZE]; /* last KWS_FE_NUM_FRAMES frames, quantized, oldest
                                           * first: the next model input */
    int32_t window_frames;                /* frames in it, saturating at KWS_FE_NUM_FRAMES */
    kws_runner_smoother_t smoother;
    int32_t frames;       /* frames since reset */
    int32_t until_invoke; /* new frames to skip before the next inference */
    int32_t inferences;   /* since reset */
    int32_t has_time;
    int32_t last_time_ms;
    float input_scale;
    int32_t input_zero_point;
    int8_t scores[TINYSPEECH_LABEL_COUNT];
    TinySpeechOpResolver* resolver;
    tflite::MicroInterpreter* interpreter;
    TfLiteTensor* input;
    TfLiteTensor* output;
    alignas(TinySpeechOpResolver) unsigned char resolver_storage[sizeof(TinySpeechOpResolver)];
    alignas(tflite::MicroInterpreter) unsigned char
        interpreter_storage[sizeof(tflite::MicroInterpreter)];
} kws_runner_t;

/* invoke_every_frames = KWS_RUNNER_DEFAULT_INVOKE_EVERY; the smoother's micro_speech defaults
 * (recognize_commands.h), or the run's chosen detector when model_settings.h defines
 * TINYSPEECH_DETECTOR_* (`tinyspeech stream-tune`), with silence_index =
 * TINYSPEECH_SILENCE_INDEX. */
void kws_runner_default_config(kws_runner_config_t* config);

/*
 * Check the config (KWS_RUNNER_ERR_ARGUMENT, _SMOOTHER, _SMOOTHER_RING; a working runner stays
 * working when it is refused), check that model_data matches model_settings.h (size and
 * FNV-1a hash, catches a stale copy),
 * build the op resolver and interpreter in place, allocate tensors in arena (16-byte aligned,
 * TINYSPEECH_ARENA_SIZE bytes is enough), check the input/output tensors against
 * model_settings.h and reset the stream. config may be NULL (defaults). Returns KWS_RUNNER_OK
 * or a negative code; on error the runner is unusable until a successful init. May be called
 * again (e.g. with another config); the previous interpreter is destroyed first.
 */
int kws_runner_init(kws_runner_t* runner, uint8_t* arena, size_t arena_size,
                    const kws_runner_config_t* config);

/* Forget audio, frames, window and smoother history; the model stays allocated. */
void kws_runner_reset(kws_runner_t* runner);

/*
 * Stream n samples (see the header comment). For every inference, calls callback (may be
 * NULL) with the scores and the smoother result. Returns the number of inferences run, or a
 * negative code; on error the rest of the chunk is dropped (the stream stays consistent).
 */
int kws_runner_push_audio(kws_runner_t* runner, const int16_t* samples, int n, int32_t now_ms,
                          kws_runner_callback_t callback, void* user);

/* Scores of the latest inference (TINYSPEECH_LABEL_COUNT values), or NULL before the first. */
const int8_t* kws_runner_last_scores(const kws_runner_t* runner);

/* Bytes of the arena TFLM actually uses (after init), to trim TINYSPEECH_ARENA_SIZE. */
size_t kws_runner_arena_used(const kws_runner_t* runner);

#ifndef KWS_RUNNER_NO_SELF_TEST
typedef struct {
    int status;             /* KWS_RUNNER_OK, or the error that stopped the test */
    int passed;             /* 1 when every check below holds */
    int frames;             /* front-end frames from the golden PCM (TINYSPEECH_GOLDEN_FRAME_COUNT) */
    int features_checked;   /* int8 features compared (frames x KWS_FE_NUM_MFCC) */
    int feature_max_diff;   /* max |C - golden| over those int8 features, must be <= 1 */
    int feature_diff_count; /* how many of them differ */
    int score_max_diff;     /* max |model - golden| over the int8 scores */
    int score_tolerance;    /* KWS_RUNNER_SCORE_TOLERANCE the scores were held to */
    int predicted_index;    /* argmax of the board's scores (first on ties) */
    int expected_index;     /* TINYSPEECH_GOLDEN_PREDICTED_INDEX: argmax on the host */
    int label_index;        /* TINYSPEECH_GOLDEN_LABEL_INDEX: the clip's label (for people;
                             * an imperfect model may predict another, that is no failure) */
} kws_self_test_report_t;

/*
 * The golden-clip self-test (see the header comment); fills *report and returns 1 if it
 * passed, 0 if not. Resets the stream (call it before streaming, e.g. at boot).
 */
int kws_runner_self_test(kws_runner_t* runner, kws_self_test_report_t* report);
#endif

#endif /* KWS_RUNNER_H */
