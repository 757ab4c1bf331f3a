/*
 * recognize_commands.h - posterior smoothing for keyword spotting (C99, no heap, no globals).
 *
 * Why: the model runs every few tens of milliseconds on overlapping one-second windows, so a
 * single spoken "yes" produces a burst of confident (and some unconfident) score vectors. Acting
 * on each one would fire the same command several times and react to one-window flukes. This
 * module, modelled on the micro_speech RecognizeCommands idea, turns that stream of per-window
 * posteriors into discrete detections:
 *
 *   1. The caller pushes the model's int8 softmax output (num_classes values, -128..127) with a
 *      timestamp in ms each time the model runs (kws_recognizer_process).
 *   2. Results older than the averaging window are dropped: a result stays while
 *      result_time >= now - average_window_ms (the one just pushed always stays).
 *   3. Per class, the average of (score + 128) over the results in the window is computed in
 *      integer arithmetic only, so the Python twin (tinyspeech_tf/stream/smoother.py) is bit-identical:
 *          sum = sum over results of (score + 128)          (int32, at most 255 * the ring size)
 *          avg = (sum + n / 2) / n                          (n results, C integer division)
 *      i.e. round half up; avg is in 0..255.
 *   4. The top class is the one with the highest average; ties go to the lowest index.
 *   5. A detection (is_new_command = true) is reported only when all of these hold:
 *        - at least minimum_count results are in the window (too little evidence early in a
 *          stream or after a gap),
 *        - top average >= detection_threshold (0..255 scale of score + 128),
 *        - the top class is not silence_index (-1: no silence class),
 *        - nothing was reported yet, or the top class differs from the last reported command,
 *          or more than suppression_ms have passed since that report (now - last > suppression):
 *          suppression stops one utterance from triggering repeatedly as the window slides.
 *      A top class that is not reported (silence, below threshold, suppressed) leaves the
 *      "last reported command" unchanged.
 *
 * Differences from TFLM micro_speech, on purpose: the threshold test is >= (not >), silence is
 * never reported, there is no "window must span at least a quarter of average_window_ms" rule,
 * and found_command/score are always the current top class and its average (also when the
 * window holds too few results; is_new_command is then false).
 *
 * Capacity: the state is a kws_recognizer_t (counters and config) followed by its ring, one
 * struct declared by KWS_RECOGNIZER_STATE(classes, results): room for up to `classes` classes
 * and `results` results. Size it by what the averaging window holds at the rate the model runs:
 * a model run every S ms puts average_window_ms / S + 1 results in the window (both ends count),
 * so kws_runner sizes it from the exported model's label count and stride (model_settings.h).
 * If more results fall inside the window than the ring holds, the oldest are dropped, so the
 * average covers the most recent `results` results only. kws_recognizer_state_t is a state of
 * the default capacity, KWS_RECOGNIZER_MAX_CLASSES (32) x KWS_RECOGNIZER_MAX_RESULTS (64), for
 * callers that do not know their model and stride at compile time. A state takes
 * KWS_RECOGNIZER_STATE_BYTES(classes, results) =
 *     sizeof(kws_recognizer_t) + 4 * classes + 4 * results + results * classes (rounded up to 4)
 * bytes and lives entirely in the caller's memory: nothing is allocated, nothing is global.
 *
 *     static kws_recognizer_state_t state;          (or KWS_RECOGNIZER_STATE(12, 11) state;)
 *     KWS_RECOGNIZER_INIT(&state, &config, num_classes);
 *     kws_recognizer_process(&state.rc, scores, time_ms, &result);
 *
 * Timestamps are int32 milliseconds (wrap after 24.8 days of uptime: reset or re-init before
 * then); they must never decrease (equal timestamps are accepted).
 */
#ifndef RECOGNIZE_COMMANDS_H
#define RECOGNIZE_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The default capacity (kws_recognizer_state_t); -D overrides apply to that type only. */
#ifndef KWS_RECOGNIZER_MAX_CLASSES
#define KWS_RECOGNIZER_MAX_CLASSES 32
#endif
#ifndef KWS_RECOGNIZER_MAX_RESULTS
#define KWS_RECOGNIZER_MAX_RESULTS 64
#endif
/* micro_speech's averaging window and count, kws_recognizer_default_config's. */
#define KWS_RECOGNIZER_DEFAULT_WINDOW_MS 1000
#define KWS_RECOGNIZER_DEFAULT_MIN_COUNT 3

/* Return codes: 0 on success, negative on error (the state is left unchanged on error). */
#define KWS_RECOGNIZER_OK 0
#define KWS_RECOGNIZER_ERR_NULL (-1)        /* a NULL pointer argument */
#define KWS_RECOGNIZER_ERR_NUM_CLASSES (-2) /* num_classes < 1 or > the state's classes */
#define KWS_RECOGNIZER_ERR_CONFIG (-3)      /* a config field out of its documented range */
#define KWS_RECOGNIZER_ERR_TIME (-4)        /* time_ms earlier than the previous result's */
#define KWS_RECOGNIZER_ERR_NOT_INIT (-5)    /* process() before a successful init() */
#define KWS_RECOGNIZER_ERR_CAPACITY (-6)    /* capacity < 1, or state_bytes not its size */

/* Tuning knobs; see kws_recognizer_default_config for the values and ranges. */
typedef struct {
    int32_t average_window_ms;   /* >= 0: results newer than now - window are averaged */
    int32_t detection_threshold; /* 0..255, compared with the average of (score + 128) */
    int32_t suppression_ms;      /* >= 0: no repeat of the same command within this time */
    int32_t minimum_count;       /* 1..the state's results: results needed in the window */
    int32_t silence_index;       /* class never reported, -1..num_classes-1 (-1: none) */
} kws_recognizer_config_t;

/* Outcome of one kws_recognizer_process call. */
typedef struct {
    int32_t found_command; /* top class of the smoothed scores (0..num_classes-1) */
    int32_t score;         /* its average of (score + 128), 0..255 */
    bool is_new_command;   /* true only when this call reports a detection */
    int32_t time_ms;       /* timestamp of the result just processed */
} kws_recognizer_result_t;

/* Counters and config: what every function takes. Its ring follows it in memory, in the struct
 * KWS_RECOGNIZER_STATE declares; never declare a kws_recognizer_t on its own. */
typedef struct {
    kws_recognizer_config_t config;
    int32_t num_classes;
    int32_t max_classes;   /* capacity: classes the ring has room for */
    int32_t max_results;   /* capacity: results the ring holds */
    int32_t initialized;   /* set by kws_recognizer_init */
    int32_t head;          /* ring index of the oldest result */
    int32_t count;         /* results in the ring */
    int32_t has_last_time; /* a result has been processed since init/reset */
    int32_t last_time_ms;  /* timestamp of the newest result */
    int32_t last_command;  /* last reported command, -1 if none yet */
    int32_t last_command_time_ms;
} kws_recognizer_t;

/* A recognizer with its ring for up to `classes` classes and `results` results: a struct type,
 * e.g. `static KWS_RECOGNIZER_STATE(12, 11) state;` or a typedef. Pass &state.rc to the
 * functions, after KWS_RECOGNIZER_INIT(&state, ...). */
#define KWS_RECOGNIZER_STATE(classes, results)                                                   \
    struct {                                                                                     \
        kws_recognizer_t rc;                                                                     \
        int32_t sums[classes];     /* per class sum of (score + 128) in the ring */              \
        int32_t times_ms[results]; /* ring of timestamps */                                      \
        int8_t scores[(results) * (classes)]; /* ring of score vectors (num_classes each) */     \
    }

/* sizeof(KWS_RECOGNIZER_STATE(classes, results)), as a constant expression. */
#define KWS_RECOGNIZER_STATE_BYTES(classes, results)                                             \
    (sizeof(kws_recognizer_t) + 4u * (size_t)(classes) + 4u * (size_t)(results) +                \
     ((size_t)(results) * (size_t)(classes) + 3u) / 4u * 4u)

/* A state of the default capacity (KWS_RECOGNIZER_MAX_CLASSES x KWS_RECOGNIZER_MAX_RESULTS). */
typedef KWS_RECOGNIZER_STATE(KWS_RECOGNIZER_MAX_CLASSES, KWS_RECOGNIZER_MAX_RESULTS)
    kws_recognizer_state_t;

/* kws_recognizer_init on a KWS_RECOGNIZER_STATE, its capacity read from its type. */
#define KWS_RECOGNIZER_INIT(state, config, num_classes)                                          \
    kws_recognizer_init(&(state)->rc, sizeof(*(state)),                                          \
                        (int)(sizeof((state)->sums) / sizeof((state)->sums[0])),                 \
                        (int)(sizeof((state)->times_ms) / sizeof((state)->times_ms[0])),         \
                        (config), (num_classes))

/*
 * micro_speech defaults: average_window_ms 1000, detection_threshold 200, suppression_ms 1500,
 * minimum_count 3, silence_index -1 (set it to the model's silence class, e.g. 0 or 10).
 */
void kws_recognizer_default_config(kws_recognizer_config_t *config);

/*
 * What kws_recognizer_init would return for config and num_classes in a state of capacity
 * max_classes x max_results, without any state (so a caller can validate before changing
 * anything, and without a recognizer on its stack).
 */
int kws_recognizer_check(const kws_recognizer_config_t *config, int num_classes, int max_classes,
                         int max_results);

/*
 * Validate and set up the KWS_RECOGNIZER_STATE(max_classes, max_results) whose rc member is rc
 * and whose sizeof is state_bytes (KWS_RECOGNIZER_INIT passes all three from the type): copy
 * the config and clear the history. Returns KWS_RECOGNIZER_OK, ERR_NULL, ERR_CAPACITY (a
 * capacity < 1, or state_bytes is not KWS_RECOGNIZER_STATE_BYTES of it), ERR_NUM_CLASSES or
 * ERR_CONFIG; on error *rc is not modified.
 */
int kws_recognizer_init(kws_recognizer_t *rc, size_t state_bytes, int max_classes,
                        int max_results, const kws_recognizer_config_t *config, int num_classes);

/* Forget all results and the last reported command; keeps config and num_classes. */
void kws_recognizer_reset(kws_recognizer_t *rc);

/*
 * Push one score vector (num_classes int8 values) observed at time_ms and smooth. On success
 * fills *result and returns KWS_RECOGNIZER_OK. Returns ERR_TIME if time_ms is earlier than the
 * previous result's (the result is rejected and the state unchanged), ERR_NULL or ERR_NOT_INIT.
 */
int kws_recognizer_process(kws_recognizer_t *rc, const int8_t *scores, int32_t time_ms,
                           kws_recognizer_result_t *result);

/* KWS_RECOGNIZER_STATE_BYTES(max_classes, max_results) (0 if either is < 1), for FFI bindings
 * (the host tests allocate states with it). */
size_t kws_recognizer_state_size(int max_classes, int max_results);

#ifdef __cplusplus
}
#endif

#endif /* RECOGNIZE_COMMANDS_H */
