/*
 * recognize_commands.c - posterior smoothing; see recognize_commands.h for the contract.
 *
 * The per-class sums of (score + 128) are kept up to date as results enter and leave the ring,
 * so one call costs O(num_classes) plus O(num_classes) per evicted result, whatever the window
 * holds. All arithmetic is integer (int32 sums, int64 time differences), which is what makes
 * the Python twin bit-identical.
 */
#include "recognize_commands.h"

#include <string.h>

#if KWS_RECOGNIZER_MAX_CLASSES < 1 || KWS_RECOGNIZER_MAX_RESULTS < 1
#error "KWS_RECOGNIZER_MAX_CLASSES and KWS_RECOGNIZER_MAX_RESULTS must be >= 1"
#endif
/* sums must fit in int32: 255 * results + results / 2 < 2^31 */
#define MAX_RING_RESULTS 8000000
/* The ring follows the counters without padding (everything is 4-byte aligned), which is where
 * ring_sums() looks for it; the array is of negative size, a compile error, if a compiler differs. */
typedef char kws_recognizer_layout_check[(sizeof(kws_recognizer_state_t) ==
                                          KWS_RECOGNIZER_STATE_BYTES(KWS_RECOGNIZER_MAX_CLASSES,
                                                                     KWS_RECOGNIZER_MAX_RESULTS) &&
                                          sizeof(kws_recognizer_t) % 4 == 0)
                                             ? 1
                                             : -1];

#define SCORE_OFFSET 128     /* int8 -128..127 -> 0..255 */
#define INIT_MAGIC 0x4B575352 /* "KWSR": distinguishes an initialised state from zeroed memory */

void kws_recognizer_default_config(kws_recognizer_config_t *config)
{
    if (config == NULL) {
        return;
    }
    config->average_window_ms = KWS_RECOGNIZER_DEFAULT_WINDOW_MS;
    config->detection_threshold = 200;
    config->suppression_ms = 1500;
    config->minimum_count = KWS_RECOGNIZER_DEFAULT_MIN_COUNT;
    config->silence_index = -1;
}

static int config_valid(const kws_recognizer_config_t *c, int num_classes, int max_results)
{
    return c->average_window_ms >= 0 && c->detection_threshold >= 0 &&
           c->detection_threshold <= 255 && c->suppression_ms >= 0 && c->minimum_count >= 1 &&
           c->minimum_count <= max_results && c->silence_index >= -1 &&
           c->silence_index < num_classes;
}

static int capacity_valid(int max_classes, int max_results)
{
    return max_classes >= 1 && max_results >= 1 && max_results <= MAX_RING_RESULTS;
}

size_t kws_recognizer_state_size(int max_classes, int max_results)
{
    return capacity_valid(max_classes, max_results)
               ? KWS_RECOGNIZER_STATE_BYTES(max_classes, max_results)
               : 0;
}

int kws_recognizer_check(const kws_recognizer_config_t *config, int num_classes, int max_classes,
                         int max_results)
{
    if (config == NULL) {
        return KWS_RECOGNIZER_ERR_NULL;
    }
    if (!capacity_valid(max_classes, max_results)) {
        return KWS_RECOGNIZER_ERR_CAPACITY;
    }
    if (num_classes < 1 || num_classes > max_classes) {
        return KWS_RECOGNIZER_ERR_NUM_CLASSES;
    }
    return config_valid(config, num_classes, max_results) ? KWS_RECOGNIZER_OK
                                                          : KWS_RECOGNIZER_ERR_CONFIG;
}

int kws_recognizer_init(kws_recognizer_t *rc, size_t state_bytes, int max_classes,
                        int max_results, const kws_recognizer_config_t *config, int num_classes)
{
    if (rc == NULL || config == NULL) {
        return KWS_RECOGNIZER_ERR_NULL;
    }
    const int status = kws_recognizer_check(config, num_classes, max_classes, max_results);
    if (status == KWS_RECOGNIZER_ERR_CAPACITY ||
        (status == KWS_RECOGNIZER_OK &&
         state_bytes != KWS_RECOGNIZER_STATE_BYTES(max_classes, max_results))) {
        return KWS_RECOGNIZER_ERR_CAPACITY;
    }
    if (status != KWS_RECOGNIZER_OK) {
        return status;
    }
    memset(rc, 0, state_bytes);
    rc->config = *config;
    rc->num_classes = (int32_t)num_classes;
    rc->max_classes = (int32_t)max_classes;
    rc->max_results = (int32_t)max_results;
    rc->initialized = INIT_MAGIC;
    kws_recognizer_reset(rc);
    return KWS_RECOGNIZER_OK;
}

/* The ring behind the counters, in the KWS_RECOGNIZER_STATE that init was given: sums
 * [max_classes], then times [max_results], then scores [max_results][num_classes]. */
static int32_t *ring_sums(kws_recognizer_t *rc)
{
    return (int32_t *)(void *)((unsigned char *)rc + sizeof(*rc));
}

static int32_t *ring_times(kws_recognizer_t *rc)
{
    return ring_sums(rc) + rc->max_classes;
}

static int8_t *ring_scores(kws_recognizer_t *rc, int32_t slot)
{
    return (int8_t *)(void *)(ring_times(rc) + rc->max_results) + slot * rc->num_classes;
}

void kws_recognizer_reset(kws_recognizer_t *rc)
{
    if (rc == NULL || rc->initialized != INIT_MAGIC) {
        return;
    }
    rc->head = 0;
    rc->count = 0;
    rc->has_last_time = 0;
    rc->last_time_ms = 0;
    rc->last_command = -1;
    rc->last_command_time_ms = 0;
    int32_t *sums = ring_sums(rc);
    for (int i = 0; i < rc->max_classes; i++) {
        sums[i] = 0;
    }
}

/* Remove the oldest result from the ring and from the running sums. */
static void drop_oldest(kws_recognizer_t *rc)
{
    const int8_t *old = ring_scores(rc, rc->head);
    int32_t *sums = ring_sums(rc);
    for (int i = 0; i < rc->num_classes; i++) {
        sums[i] -= (int32_t)old[i] + SCORE_OFFSET;
    }
    rc->head = (rc->head + 1) % rc->max_results;
    rc->count--;
}

int kws_recognizer_process(kws_recognizer_t *rc, const int8_t *scores, int32_t time_ms,
                           kws_recognizer_result_t *result)
{
    if (rc == NULL || scores == NULL || result == NULL) {
        return KWS_RECOGNIZER_ERR_NULL;
    }
    if (rc->initialized != INIT_MAGIC) {
        return KWS_RECOGNIZER_ERR_NOT_INIT;
    }
    if (rc->has_last_time && time_ms < rc->last_time_ms) {
        return KWS_RECOGNIZER_ERR_TIME;
    }
    const kws_recognizer_config_t *cfg = &rc->config;

    /* 1. evict results that left the window (int64: no overflow near INT32_MIN) */
    const int64_t oldest_allowed = (int64_t)time_ms - (int64_t)cfg->average_window_ms;
    int32_t *times = ring_times(rc);
    while (rc->count > 0 && (int64_t)times[rc->head] < oldest_allowed) {
        drop_oldest(rc);
    }
    /* 2. ring full: the oldest result in the window gives way to the new one */
    if (rc->count == rc->max_results) {
        drop_oldest(rc);
    }
    /* 3. append */
    const int32_t slot = (rc->head + rc->count) % rc->max_results;
    int8_t *row = ring_scores(rc, slot);
    int32_t *sums = ring_sums(rc);
    for (int i = 0; i < rc->num_classes; i++) {
        row[i] = scores[i];
        sums[i] += (int32_t)scores[i] + SCORE_OFFSET;
    }
    times[slot] = time_ms;
    rc->count++;
    rc->has_last_time = 1;
    rc->last_time_ms = time_ms;

    /* 4. top class of the rounded averages; strict > keeps the lowest index on ties */
    const int32_t n = rc->count;
    int32_t top = 0;
    int32_t top_score = -1;
    for (int i = 0; i < rc->num_classes; i++) {
        const int32_t avg = (sums[i] + n / 2) / n; /* sums >= 0: round half up */
        if (avg > top_score) {
            top_score = avg;
            top = (int32_t)i;
        }
    }

    /* 5. decide whether this is a new detection */
    bool is_new = false;
    if (n >= cfg->minimum_count && top_score >= cfg->detection_threshold &&
        top != cfg->silence_index) {
        if (rc->last_command < 0 || top != rc->last_command) {
            is_new = true;
        } else {
            const int64_t since = (int64_t)time_ms - (int64_t)rc->last_command_time_ms;
            is_new = since > (int64_t)cfg->suppression_ms;
        }
    }
    if (is_new) {
        rc->last_command = top;
        rc->last_command_time_ms = time_ms;
    }

    result->found_command = top;
    result->score = top_score;
    result->is_new_command = is_new;
    result->time_ms = time_ms;
    return KWS_RECOGNIZER_OK;
}
