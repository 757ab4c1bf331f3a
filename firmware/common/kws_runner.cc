/*
 * kws_runner.cc - TFLM glue for streaming keyword spotting; the contract is in kws_runner.h.
 *
 * Written against the public TFLM API only (GetModel, MicroMutableOpResolver,
 * MicroInterpreter(model, resolver, arena, size), AllocateTensors, input(0), Invoke,
 * output(0)), so it builds with the Arduino TFLM library, Zephyr's tflite-micro module, and
 * the mock in tests/fixtures/tflm_mock that the host tests use.
 */
#include "kws_runner.h"

#include <string.h>

#include <new>

#include "model_data.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef KWS_RUNNER_NO_SELF_TEST
#include "golden.h"
#endif

/* TFLM releases define this in different headers (and some in none that the API pulls in);
 * the flatbuffer schema has been version 3 since TFLite 1.x. */
#ifndef TFLITE_SCHEMA_VERSION
#define TFLITE_SCHEMA_VERSION 3
#endif

namespace {

static_assert(sizeof(kws_runner_smoother_t) ==
                  KWS_RECOGNIZER_STATE_BYTES(TINYSPEECH_SMOOTHER_CLASSES,
                                             KWS_RUNNER_SMOOTHER_RESULTS),
              "the smoother's ring must follow its counters without padding");

constexpr uint32_t kReadyMagic = 0x4B575352u; /* "KWSR": init succeeded */
constexpr uint32_t kBuiltMagic = 0x4B575342u; /* "KWSB": TFLM objects constructed */

uint32_t Fnv1a32(const unsigned char* data, unsigned int n)
{
    uint32_t h = 0x811C9DC5u;
    for (unsigned int i = 0; i < n; ++i) {
        h = (h ^ data[i]) * 0x01000193u;
    }
    return h;
}

int Elements(const TfLiteTensor* t)
{
    int n = 1;
    for (int i = 0; i < t->dims->size; ++i) {
        n *= t->dims->data[i];
    }
    return n;
}

bool Ready(const kws_runner_t* r)
{
    return r != nullptr && r->magic == kReadyMagic;
}

/* Destroy what a previous init built; a zeroed (static) runner has nothing to destroy. */
void Destroy(kws_runner_t* r)
{
    if (r->built == kBuiltMagic) {
        if (r->interpreter != nullptr) {
            r->interpreter->~MicroInterpreter();
        }
        r->resolver->~TinySpeechOpResolver();
    }
    r->built = 0;
    r->magic = 0;
    r->resolver = nullptr;
    r->interpreter = nullptr;
    r->input = nullptr;
    r->output = nullptr;
}

/* The model's quantization must be what model_settings.h says: the same export. */
bool SameScale(float a, float b)
{
    const float d = a > b ? a - b : b - a;
    return d <= 1e-6f * (b > 0 ? b : -b);
}

int CheckTensors(kws_runner_t* r)
{
    r->input = r->interpreter->input(0);
    r->output = r->interpreter->output(0);
    if (r->input == nullptr || r->output == nullptr) {
        return KWS_RUNNER_ERR_TENSORS;
    }
    if (r->input->type != kTfLiteInt8 || Elements(r->input) != TINYSPEECH_INPUT_SIZE ||
        r->output->type != kTfLiteInt8 || Elements(r->output) != TINYSPEECH_LABEL_COUNT) {
        return KWS_RUNNER_ERR_TENSORS;
    }
    r->input_scale = r->input->params.scale;
    r->input_zero_point = r->input->params.zero_point;
    if (!SameScale(r->input_scale, TINYSPEECH_INPUT_SCALE) ||
        r->input_zero_point != TINYSPEECH_INPUT_ZERO_POINT) {
        return KWS_RUNNER_ERR_TENSORS;
    }
    return KWS_RUNNER_OK;
}

int Build(kws_runner_t* r, uint8_t* arena, size_t arena_size)
{
    /* A stale model_data.cc next to a fresh model_settings.h would run with the wrong labels
     * and quantization: compare the identity the exporter wrote into both. */
    if (g_model_data_len != TINYSPEECH_MODEL_BYTES ||
        Fnv1a32(g_model_data, g_model_data_len) != TINYSPEECH_MODEL_FNV1A32) {
        return KWS_RUNNER_ERR_MODEL_DATA;
    }
    const tflite::Model* model = tflite::GetModel(g_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return KWS_RUNNER_ERR_SCHEMA;
    }
    r->resolver = new (r->resolver_storage) TinySpeechOpResolver();
    r->built = kBuiltMagic;
    if (RegisterTinySpeechOps(*r->resolver) != kTfLiteOk) {
        return KWS_RUNNER_ERR_OPS;
    }
    r->interpreter = new (r->interpreter_storage)
        tflite::MicroInterpreter(model, *r->resolver, arena, arena_size);
    if (r->interpreter->AllocateTensors() != kTfLiteOk) {
        return KWS_RUNNER_ERR_ALLOCATE;
    }
    return CheckTensors(r);
}

/*
 * Push samples up to and including the end of the next frame, so the caller knows where in
 * the chunk each frame completed (for its timestamp). Returns 1 and fills frame when a frame
 * completed, 0 when the samples ran out first; *consumed says how many were used.
 */
int NextFrame(kws_frontend_t* fe, const int16_t* samples, int n, int* consumed, float* frame)
{
    const int take = n < fe->needed ? n : fe->needed;
    *consumed = take;
    return kws_frontend_push(fe, samples, take, frame, 1);
}

/* Quantize a frame (as the model's input tensor) and append it to the int8 window: each value
 * is quantized once, as it arrives, exactly as quantizing the whole float window would. */
void PushFrame(kws_runner_t* r, const float* frame)
{
    if (r->window_frames == KWS_FE_NUM_FRAMES) {
        memmove(r->window, r->window + KWS_FE_NUM_MFCC,
                (KWS_FE_NUM_FRAMES - 1) * KWS_FE_NUM_MFCC);
        r->window_frames--;
    }
    kws_frontend_quantize(frame, KWS_FE_NUM_MFCC, r->input_scale, r->input_zero_point,
                          r->window + r->window_frames * KWS_FE_NUM_MFCC);
    r->window_frames++;
}

int RunInference(kws_runner_t* r, int32_t time_ms, int32_t frame_index,
                 kws_runner_callback_t callback, void* user)
{
    memcpy(r->input->data.int8, r->window, TINYSPEECH_INPUT_SIZE);
    if (r->interpreter->Invoke() != kTfLiteOk) {
        return KWS_RUNNER_ERR_INVOKE;
    }
    memcpy(r->scores, r->output->data.int8, sizeof(r->scores));
    kws_runner_event_t event;
    if (kws_recognizer_process(&r->smoother.rc, r->scores, time_ms, &event.result) !=
        KWS_RECOGNIZER_OK) {
        return KWS_RUNNER_ERR_SMOOTHER;
    }
    r->has_time = 1;
    r->last_time_ms = time_ms;
    event.time_ms = time_ms;
    event.frame_index = frame_index;
    event.inference_index = r->inferences++;
    event.scores = r->scores;
    event.label = kLabels[event.result.found_command];
    if (callback != nullptr) {
        callback(&event, user);
    }
    return KWS_RUNNER_OK;
}

}  // namespace

const char* kws_runner_status_str(int status)
{
    switch (status) {
    case KWS_RUNNER_OK:
        return "ok";
    case KWS_RUNNER_ERR_ARGUMENT:
        return "bad argument";
    case KWS_RUNNER_ERR_MODEL_DATA:
        return "model_data does not match model_settings.h (copy all files of one export)";
    case KWS_RUNNER_ERR_SCHEMA:
        return "model is not a supported TFLite flatbuffer version";
    case KWS_RUNNER_ERR_OPS:
        return "registering the model's ops failed";
    case KWS_RUNNER_ERR_ALLOCATE:
        return "AllocateTensors failed (arena too small?)";
    case KWS_RUNNER_ERR_TENSORS:
        return "model input/output differ from model_settings.h";
    case KWS_RUNNER_ERR_INVOKE:
        return "Invoke failed";
    case KWS_RUNNER_ERR_SMOOTHER:
        return "smoother rejected its config or a result";
    case KWS_RUNNER_ERR_NOT_INIT:
        return "runner not initialised";
    case KWS_RUNNER_ERR_SMOOTHER_RING:
        return "averaging window / stride need more results than the smoother ring holds "
               "(KWS_RUNNER_SMOOTHER_RESULTS)";
    default:
        return "unknown error";
    }
}

void kws_runner_default_config(kws_runner_config_t* config)
{
    if (config == nullptr) {
        return;
    }
    config->invoke_every_frames = KWS_RUNNER_DEFAULT_INVOKE_EVERY;
    kws_recognizer_default_config(&config->smoother);
#ifdef TINYSPEECH_DETECTOR_THRESHOLD
    config->smoother.detection_threshold = TINYSPEECH_DETECTOR_THRESHOLD;
    config->smoother.average_window_ms = TINYSPEECH_DETECTOR_WINDOW_MS;
    config->smoother.minimum_count = TINYSPEECH_DETECTOR_MIN_COUNT;
    config->smoother.suppression_ms = TINYSPEECH_DETECTOR_SUPPRESSION_MS;
#endif
    config->smoother.silence_index = TINYSPEECH_SILENCE_INDEX;
}

int kws_runner_init(kws_runner_t* runner, uint8_t* arena, size_t arena_size,
                    const kws_runner_config_t* config)
{
    if (runner == nullptr || arena == nullptr) {
        return KWS_RUNNER_ERR_ARGUMENT;
    }
    kws_runner_config_t cfg;
    kws_runner_default_config(&cfg);
    if (config != nullptr) {
        cfg = *config;
    }
    if (cfg.invoke_every_frames < 1) {
        return KWS_RUNNER_ERR_ARGUMENT;
    }
    /* Validate the smoother config before touching the runner: a bad config leaves a working
     * runner working (checked without a second recognizer: it would cost its size in stack). */
    if (kws_recognizer_check(&cfg.smoother, TINYSPEECH_LABEL_COUNT, TINYSPEECH_SMOOTHER_CLASSES,
                             KWS_RUNNER_SMOOTHER_RESULTS) != KWS_RECOGNIZER_OK) {
        return KWS_RUNNER_ERR_SMOOTHER;
    }
    /* int64: a huge window or stride must not overflow the check */
    const int64_t stride_ms = (int64_t)cfg.invoke_every_frames * KWS_RUNNER_FRAME_MS;
    if ((int64_t)cfg.smoother.average_window_ms / stride_ms + 1 > KWS_RUNNER_SMOOTHER_RESULTS) {
        return KWS_RUNNER_ERR_SMOOTHER_RING;
    }
    Destroy(runner);
    const int status = Build(runner, arena, arena_size);
    if (status != KWS_RUNNER_OK) {
        runner->magic = 0;
        return status;
    }
    runner->config = cfg;
    KWS_RECOGNIZER_INIT(&runner->smoother, &cfg.smoother, TINYSPEECH_LABEL_COUNT);
    runner->magic = kReadyMagic;
    kws_runner_reset(runner);
    return KWS_RUNNER_OK;
}

void kws_runner_reset(kws_runner_t* runner)
{
    if (!Ready(runner)) {
        return;
    }
    kws_frontend_init(&runner->frontend);
    memset(runner->window, 0, sizeof(runner->window));
    runner->window_frames = 0;
    kws_recognizer_reset(&runner->smoother.rc);
    runner->frames = 0;
    runner->until_invoke = 0;
    runner->inferences = 0;
    runner->has_time = 0;
    runner->last_time_ms = 0;
}

int kws_runner_push_audio(kws_runner_t* runner, const int16_t* samples, int n, int32_t now_ms,
                          kws_runner_callback_t callback, void* user)
{
    if (!Ready(runner)) {
        return KWS_RUNNER_ERR_NOT_INIT;
    }
    if (n < 0 || (n > 0 && samples == nullptr)) {
        return KWS_RUNNER_ERR_ARGUMENT;
    }
    float frame[KWS_FE_NUM_MFCC];
    int inferences = 0;
    int done = 0;
    while (done < n) {
        int used = 0;
        const int got = NextFrame(&runner->frontend, samples + done, n - done, &used, frame);
        done += used;
        if (got == 0) {
            continue; /* chunk ended mid-frame */
        }
        PushFrame(runner, frame);
        const int32_t frame_index = runner->frames++;
        if (runner->window_frames < KWS_FE_NUM_FRAMES) {
            continue;
        }
        if (runner->until_invoke > 0) {
            runner->until_invoke--;
            continue;
        }
        runner->until_invoke = runner->config.invoke_every_frames - 1;
        /* The window completed (n - done) samples before the chunk's last sample. */
        int64_t t = (int64_t)now_ms - ((int64_t)(n - done) * 1000) / KWS_FE_SAMPLE_RATE;
        if (runner->has_time && t < runner->last_time_ms) {
            t = runner->last_time_ms;
        }
        const int status = RunInference(runner, (int32_t)t, frame_index, callback, user);
        if (status != KWS_RUNNER_OK) {
            return status;
        }
        inferences++;
    }
    return inferences;
}

const int8_t* kws_runner_last_scores(const kws_runner_t* runner)
{
    return Ready(runner) && runner->inferences > 0 ? runner->scores : nullptr;
}

size_t kws_runner_arena_used(const kws_runner_t* runner)
{
    return Ready(runner) ? runner->interpreter->arena_used_bytes() : 0;
}

#ifndef KWS_RUNNER_NO_SELF_TEST
/* Uneven chunk sizes, as a microphone driver delivers them: frames must not depend on them. */
static const int kSelfTestChunks[] = {1, 159, 320, 333, 480, 1000, 7, 2047};

int kws_runner_self_test(kws_runner_t* runner, kws_self_test_report_t* report)
{
    kws_self_test_report_t local;
    kws_self_test_report_t* rep = report != nullptr ? report : &local;
    memset(rep, 0, sizeof(*rep));
    rep->score_tolerance = KWS_RUNNER_SCORE_TOLERANCE;
    rep->predicted_index = -1;
    rep->expected_index = TINYSPEECH_GOLDEN_PREDICTED_INDEX;
    rep->label_index = TINYSPEECH_GOLDEN_LABEL_INDEX;
    if (!Ready(runner)) {
        rep->status = KWS_RUNNER_ERR_NOT_INIT;
        return 0;
    }
    kws_runner_reset(runner);

    /* 1. front-end: stream the golden PCM (TINYSPEECH_GOLDEN_FRAME_COUNT frames of the clip,
     * from TINYSPEECH_GOLDEN_FIRST_FRAME on), quantize each frame like an inference would and
     * compare it with its row of g_golden_features */
    float frame[KWS_FE_NUM_MFCC];
    int8_t q[KWS_FE_NUM_MFCC];
    int pos = 0;
    for (int c = 0; pos < TINYSPEECH_GOLDEN_SAMPLE_COUNT; ++c) {
        const int chunk_count = (int)(sizeof(kSelfTestChunks) / sizeof(kSelfTestChunks[0]));
        int left = kSelfTestChunks[c % chunk_count];
        if (left > TINYSPEECH_GOLDEN_SAMPLE_COUNT - pos) {
            left = TINYSPEECH_GOLDEN_SAMPLE_COUNT - pos;
        }
        while (left > 0) {
            int used = 0;
            if (NextFrame(&runner->frontend, &g_golden_samples[pos], left, &used, frame)) {
                const int row = TINYSPEECH_GOLDEN_FIRST_FRAME + rep->frames;
                kws_frontend_quantize(frame, KWS_FE_NUM_MFCC, runner->input_scale,
                                      runner->input_zero_point, q);
                for (int i = 0; i < KWS_FE_NUM_MFCC && row < KWS_FE_NUM_FRAMES; ++i) {
                    int d = (int)q[i] - (int)g_golden_features[row * KWS_FE_NUM_MFCC + i];
                    d = d < 0 ? -d : d;
                    rep->feature_diff_count += d != 0;
                    rep->feature_max_diff = d > rep->feature_max_diff ? d : rep->feature_max_diff;
                    rep->features_checked++;
                }
                rep->frames++;
            }
            pos += used;
            left -= used;
        }
    }
    int8_t* input = runner->input->data.int8;

    /* 2. model: on the golden features themselves, so the scores can be held to exactness
     * independently of the front-end's 1-LSB freedom */
    memcpy(input, g_golden_features, TINYSPEECH_INPUT_SIZE);
    if (runner->interpreter->Invoke() != kTfLiteOk) {
        rep->status = KWS_RUNNER_ERR_INVOKE;
        kws_runner_reset(runner);
        return 0;
    }
    const int8_t* scores = runner->output->data.int8;
    rep->predicted_index = 0;
    for (int i = 0; i < TINYSPEECH_LABEL_COUNT; ++i) {
        int d = (int)scores[i] - (int)g_golden_scores[i];
        d = d < 0 ? -d : d;
        rep->score_max_diff = d > rep->score_max_diff ? d : rep->score_max_diff;
        if (scores[i] > scores[rep->predicted_index]) {
            rep->predicted_index = i;
        }
    }
    rep->passed = rep->frames == TINYSPEECH_GOLDEN_FRAME_COUNT && rep->feature_max_diff <= 1 &&
                  rep->score_max_diff <= KWS_RUNNER_SCORE_TOLERANCE &&
                  rep->predicted_index == TINYSPEECH_GOLDEN_PREDICTED_INDEX;
    kws_runner_reset(runner);
    return rep->passed;
}
#endif /* KWS_RUNNER_NO_SELF_TEST */
