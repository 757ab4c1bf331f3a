/*
 * Bare-metal check of the streaming front-end and the smoother on an export's golden clip, for
 * QEMU mps2-an386 (Cortex-M4F) and, unchanged, for the host (the test compares the two and the
 * Python twins).
 *
 *   1. Streams g_golden_samples (golden.h of a `tinyspeech export-tflite` run: the PCM of
 *      TINYSPEECH_GOLDEN_FRAME_COUNT frames of the golden clip) through kws_frontend_push() in
 *      uneven chunks, quantizes its frames with the model's TINYSPEECH_INPUT_SCALE /
 *      TINYSPEECH_INPUT_ZERO_POINT and compares them with their rows of g_golden_features (the
 *      Python front-end on the whole clip): every value must be within 1 LSB.
 *   2. Runs kws_recognizer_process() over the scripted int8 score sequence of kws_test_scores.h
 *      (generated at test time, e.g. TFLM's scores on a stream around the golden clip) in a
 *      ring of KWS_TEST_RESULTS results and prints every result.
 *
 * Output (semihosting stdout):
 *   features frames=<n> max_diff=<lsb> diff_count=<n> int8_fnv1a32=0x<hash> int8_hex=<hex>
 *   result <i> <time_ms> <found_command> <score> <is_new_command>
 *   smoother results=<n> fnv1a32=0x<hash of all result fields>
 * Exit code 0 when the features are within 1 LSB and every smoother call succeeded, else 1.
 *
 * Built by tinyspeech_tf.firmware_build.build_smoother_program; see tests/test_firmware_runner.py.
 */
#include <stdint.h>
#include <stdio.h>

#include "golden.h"
#include "kws_frontend.h"
#include "kws_test_scores.h"
#include "recognize_commands.h"

#if KWS_TEST_CLASSES != TINYSPEECH_LABEL_COUNT
#error "kws_test_scores.h was generated for another label count than golden.h's model"
#endif

static kws_frontend_t frontend;
static kws_feature_window_t window;
/* int8 features the golden PCM gives (its frames x coefficients) */
#define GOLDEN_VALUES (TINYSPEECH_GOLDEN_FRAME_COUNT * KWS_FE_NUM_MFCC)
static int8_t quantized[TINYSPEECH_INPUT_SIZE];
/* the ring the test asks for (KWS_TEST_RESULTS results), as a runner sizes its own */
static KWS_RECOGNIZER_STATE(KWS_TEST_CLASSES, KWS_TEST_RESULTS) recognizer;

/* Uneven chunk sizes, as a microphone driver delivers them: frames must not depend on them. */
static const int chunks[] = {1, 159, 320, 333, 480, 1000, 7, 2047};

static uint32_t fnv1a32_update(uint32_t h, const uint8_t *data, int n)
{
    for (int i = 0; i < n; i++) {
        h ^= data[i];
        h *= 0x01000193u;
    }
    return h;
}

static uint32_t fnv1a32_int32(uint32_t h, int32_t v)
{
    const uint8_t bytes[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                              (uint8_t)(v >> 24)};
    return fnv1a32_update(h, bytes, 4);
}

/* Returns the number of frames the clip produced. */
static int stream_golden_clip(void)
{
    float many[8 * KWS_FE_NUM_MFCC]; /* a 2047-sample chunk completes at most 7 frames */
    int produced = 0;
    int pos = 0;
    kws_frontend_init(&frontend);
    kws_window_init(&window);
    for (int c = 0; pos < TINYSPEECH_GOLDEN_SAMPLE_COUNT; c++) {
        int n = chunks[c % (int)(sizeof(chunks) / sizeof(chunks[0]))];
        if (n > TINYSPEECH_GOLDEN_SAMPLE_COUNT - pos) {
            n = TINYSPEECH_GOLDEN_SAMPLE_COUNT - pos;
        }
        int got = kws_frontend_push(&frontend, &g_golden_samples[pos], n, many, 8);
        for (int f = 0; f < got; f++) {
            kws_window_push(&window, many + f * KWS_FE_NUM_MFCC);
        }
        produced += got;
        pos += n;
    }
    return produced;
}

static int check_features(void)
{
    int frames = stream_golden_clip();
    int max_diff = 0;
    int diff_count = 0;
    /* the window fills from its first row: the golden PCM's frames are rows 0.. of it and
     * rows TINYSPEECH_GOLDEN_FIRST_FRAME.. of g_golden_features */
    kws_frontend_quantize(window.data, GOLDEN_VALUES, TINYSPEECH_INPUT_SCALE,
                          TINYSPEECH_INPUT_ZERO_POINT, quantized);
    for (int i = 0; i < GOLDEN_VALUES; i++) {
        int d = (int)quantized[i] -
                (int)g_golden_features[TINYSPEECH_GOLDEN_FIRST_FRAME * KWS_FE_NUM_MFCC + i];
        d = d < 0 ? -d : d;
        diff_count += d != 0;
        max_diff = d > max_diff ? d : max_diff;
    }
    printf("features frames=%d max_diff=%d diff_count=%d int8_fnv1a32=0x%08lx int8_hex=", frames,
           max_diff, diff_count,
           (unsigned long)fnv1a32_update(0x811C9DC5u, (const uint8_t *)quantized,
                                         GOLDEN_VALUES));
    for (int i = 0; i < GOLDEN_VALUES; i++) {
        printf("%02x", (unsigned)(uint8_t)quantized[i]);
    }
    printf("\n");
    return frames == TINYSPEECH_GOLDEN_FRAME_COUNT && max_diff <= 1;
}

static int run_smoother(void)
{
    kws_recognizer_config_t config;
    kws_recognizer_result_t result;
    uint32_t h = 0x811C9DC5u;
    kws_recognizer_default_config(&config);
    config.average_window_ms = KWS_TEST_WINDOW_MS;
    config.detection_threshold = KWS_TEST_THRESHOLD;
    config.suppression_ms = KWS_TEST_SUPPRESSION_MS;
    config.minimum_count = KWS_TEST_MIN_COUNT;
    config.silence_index = KWS_TEST_SILENCE_INDEX;
    if (KWS_RECOGNIZER_INIT(&recognizer, &config, KWS_TEST_CLASSES) != KWS_RECOGNIZER_OK) {
        printf("error: smoother init\n");
        return 0;
    }
    for (int i = 0; i < KWS_TEST_SCORE_ROWS; i++) {
        int rc = kws_recognizer_process(&recognizer.rc, kws_test_scores[i], kws_test_times[i],
                                        &result);
        if (rc != KWS_RECOGNIZER_OK) {
            printf("error: smoother row %d returned %d\n", i, rc);
            return 0;
        }
        printf("result %d %ld %ld %ld %d\n", i, (long)result.time_ms, (long)result.found_command,
               (long)result.score, result.is_new_command ? 1 : 0);
        h = fnv1a32_int32(h, result.time_ms);
        h = fnv1a32_int32(h, result.found_command);
        h = fnv1a32_int32(h, result.score);
        h = fnv1a32_int32(h, result.is_new_command ? 1 : 0);
    }
    printf("smoother results=%d fnv1a32=0x%08lx\n", KWS_TEST_SCORE_ROWS, (unsigned long)h);
    return 1;
}

int main(void)
{
    int ok = check_features();
    ok = run_smoother() && ok;
    return ok ? 0 : 1;
}
