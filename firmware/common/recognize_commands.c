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
/* sums must fit in int32: 255 * MAX_RESULTS + MAX_RESULTS / 2 < 2^31 */
#if KWS_RECOGNIZER_MAX_RESULTS > 8000000
#error "KWS_RECOGNIZER_MAX_RESULTS too large for int32 sums"
#endif

#define SCORE_OFFSET 128     /* int8 -128..127 -> 0..255 */
#define INIT_MAGIC 0x4B575352 /* "KWSR": distinguishes an initialised state from zeroed memory */

void kws_recognizer_default_config(kws_recognizer_config_t *config)
{
    if (config == NULL) {
        return;
    }
    config->average_window_ms = 1000;
    config->detection_threshold = 200;
    config->suppression_ms = 1500;
    config->minimum_count = 3;
    config->silence_index = -1;
}

static int config_valid(const kws_recognizer_config_t *c, int num_classes)
{
    return c->average_window_ms >= 0 && c->detection_threshold >= 0 &&
           c->detection_threshold <= 255 && c->suppression_ms >= 0 && c->minimum_count >= 1 &&
           c->minimum_count <= KWS_RECOGNIZER_MAX_RESULTS && c->silence_index >= -1 &&
           c->silence_index < num_classes;
}

int kws_recognizer_check(const kws_recognizer_config_t *config, int num_classes)
{
    if (config == NULL) {
        return KWS_RECOGNIZER_ERR_NULL;
    }
    if (num_classes < 1 || num_classes > KWS_RECOGNIZER_MAX_CLASSES) {
        return KWS_RECOGNIZER_ERR_NUM_CLASSES;
    }
    return config_valid(config, num_classes) ? KWS_RECOGNIZER_OK : KWS_RECOGNIZER_ERR_CONFIG;
}

int kws_recognizer_init(kws_recognizer_t *rc, const kws_recognizer_config_t *config,
                        int num_classes)
{
    if (rc == NULL || config == NULL) {
        return KWS_RECOGNIZER_ERR_NULL;
    }
    if (num_classes < 1 || num_classes > KWS_RECOGNIZER_MAX_CLASSES) {
        return KWS_RECOGNIZER_ERR_NUM_CLASSES;
    }
    if (!config_valid(config, num_classes)) {
        return KWS_RECOGNIZER_ERR_CONFIG;
    }
    memset(rc, 0, sizeof(*rc));
    rc->config = *config;
    rc->num_classes = (int32_t)num_classes;
    rc->initialized = INIT_MAGIC;
    kws_recognizer_reset(rc);
    return KWS_RECOGNIZER_OK;
}

void kws_recognizer_reset(kws_recognizer_t *rc)
{
    if (rc == NULL) {
        return;
    }
    rc->head = 0;
    rc->count = 0;
    rc->has_last_time = 0;
    rc->last_time_ms = 0;
    rc->last_command = -1;
    rc->last_command_time_ms = 0;
    for (int i = 0; i < KWS_RECOGNIZER_MAX_CLASSES; i++) {
        rc->sums[i] = 0;
    }
}

/* Remove the oldest result from the ring and from the running sums. */
static void drop_oldest(kws_recognizer_t *rc)
{
    const int8_t *old = rc->scores[rc->head];
    for (int i = 0; i < rc->num_classes; i++) {
        rc->sums[i] -= (int32_t)old[i] + SCORE_OFFSET;
    }
    rc->head = (rc->head + 1) % KWS_RECOGNIZER_MAX_RESULTS;
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
    while (rc->count > 0 && (int64_t)rc->times_ms[rc->head] < oldest_allowed) {
        drop_oldest(rc);
    }
    /* 2. ring full: the oldest result in the window gives way to the new one */
    if (rc->count == KWS_RECOGNIZER_MAX_RESULTS) {
        drop_oldest(rc);
    }
    /* 3. append */
    const int32_t slot = (rc->head + rc->count) % KWS_RECOGNIZER_MAX_RESULTS;
    for (int i = 0; i < rc->num_classes; i++) {
        rc->scores[slot][i] = scores[i];
        rc->sums[i] += (int32_t)scores[i] + SCORE_OFFSET;
    }
    rc->times_ms[slot] = time_ms;
    rc->count++;
    rc->has_last_time = 1;
    rc->last_time_ms = time_ms;

    /* 4. top class of the rounded averages; strict > keeps the lowest index on ties */
    const int32_t n = rc->count;
    int32_t top = 0;
    int32_t top_score = -1;
    for (int i = 0; i < rc->num_classes; i++) {
        const int32_t avg = (rc->sums[i] + n / 2) / n; /* sums >= 0: round half up */
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

size_t kws_recognizer_state_size(void)
{
    return sizeof(kws_recognizer_t);
}
