/*
 * TinySpeech keyword spotting on Zephyr.
 *
 * Always: the golden self-test (the export's golden clip through the MFCC front-end and the
 * int8 model, compared with the host's results); prints the clip's label, what the board
 * predicted, and "self-test: PASS" or "self-test: FAIL". That is all on boards without a
 * microphone, e.g. `west build -b qemu_cortex_m3 firmware/zephyr -t run`.
 *
 * With CONFIG_AUDIO_DMIC (dmic.conf) and a devicetree node labelled `dmic_dev`: then listens,
 * reading 100 ms blocks of 16 kHz mono PCM from the DMIC driver and feeding them to kws_runner;
 * every detection is printed. Audio and inference share this thread: a block must be processed
 * within 100 ms on average (BLOCK_COUNT blocks of slack), else the driver runs out of buffers.
 *
 * All output is integers (no float printf support needed).
 */
#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>

#include "kws_runner.h"

#if defined(CONFIG_AUDIO_DMIC)
#include <zephyr/audio/dmic.h>
#include <zephyr/device.h>
#define TINYSPEECH_LIVE DT_NODE_EXISTS(DT_NODELABEL(dmic_dev))
#else
#define TINYSPEECH_LIVE 0
#endif

namespace {

alignas(16) uint8_t g_arena[kArenaSize];
kws_runner_t g_runner; /* static and zero-initialised: no constructor runs before main */

#ifndef KWS_RUNNER_NO_SELF_TEST
int SelfTest()
{
    kws_self_test_report_t r;
    const int passed = kws_runner_self_test(&g_runner, &r);
    const int predicted = r.predicted_index;
    printk("golden clip \"%s\": host predicted \"%s\", board \"%s\"\n", kLabels[r.label_index],
           kLabels[r.expected_index], predicted >= 0 ? kLabels[predicted] : "(no inference)");
    printk("front-end: %d frames, %d of %d int8 features differ (max %d LSB, 1 allowed)\n",
           r.frames, r.feature_diff_count, r.features_checked, r.feature_max_diff);
    printk("model: scores differ by up to %d LSB (%d allowed)\n", r.score_max_diff,
           r.score_tolerance);
    if (r.status != KWS_RUNNER_OK) {
        printk("error: %s\n", kws_runner_status_str(r.status));
    }
    printk("self-test: %s\n", passed ? "PASS" : "FAIL");
    return passed;
}
#endif

#if TINYSPEECH_LIVE
constexpr int kBlockMs = 100;
constexpr int kBlockSamples = KWS_FE_SAMPLE_RATE * kBlockMs / 1000;
constexpr int kBlockBytes = kBlockSamples * static_cast<int>(sizeof(int16_t));
constexpr int kBlockCount = 4;
K_MEM_SLAB_DEFINE_STATIC(g_audio_slab, kBlockBytes, kBlockCount, 4);

void OnInference(const kws_runner_event_t* event, void* user)
{
    (void)user;
    if (event->result.is_new_command) {
        printk("heard \"%s\" (score %d/255) at %d ms\n", event->label,
               static_cast<int>(event->result.score), static_cast<int>(event->time_ms));
    }
}

int Listen()
{
    const struct device* const dmic = DEVICE_DT_GET(DT_NODELABEL(dmic_dev));
    if (!device_is_ready(dmic)) {
        printk("DMIC %s is not ready\n", dmic->name);
        return -1;
    }
    struct pcm_stream_cfg stream = {};
    stream.pcm_rate = KWS_FE_SAMPLE_RATE;
    stream.pcm_width = 16;
    stream.block_size = kBlockBytes;
    stream.mem_slab = &g_audio_slab;
    struct dmic_cfg cfg = {};
    cfg.io.min_pdm_clk_freq = 1000000; /* the usual PDM microphone range */
    cfg.io.max_pdm_clk_freq = 3500000;
    cfg.io.min_pdm_clk_dc = 40;
    cfg.io.max_pdm_clk_dc = 60;
    cfg.streams = &stream;
    cfg.channel.req_num_streams = 1;
    cfg.channel.req_num_chan = 1;
    cfg.channel.req_chan_map_lo = dmic_build_channel_map(0, 0, PDM_CHAN_LEFT);
    int ret = dmic_configure(dmic, &cfg);
    if (ret == 0) {
        ret = dmic_trigger(dmic, DMIC_TRIGGER_START);
    }
    if (ret < 0) {
        printk("DMIC start failed: %d\n", ret);
        return ret;
    }
    printk("listening...\n");
    uint64_t samples = 0; /* the audio is the clock: timestamps count samples */
    for (;;) {
        void* buffer = nullptr;
        size_t size = 0;
        ret = dmic_read(dmic, 0, &buffer, &size, 1000);
        if (ret < 0) {
            printk("DMIC read failed: %d\n", ret);
            continue;
        }
        const int n = static_cast<int>(size / sizeof(int16_t));
        samples += static_cast<uint64_t>(n);
        const int32_t now_ms = static_cast<int32_t>(samples * 1000u / KWS_FE_SAMPLE_RATE);
        const int rc = kws_runner_push_audio(&g_runner, static_cast<const int16_t*>(buffer), n,
                                             now_ms, OnInference, nullptr);
        k_mem_slab_free(&g_audio_slab, buffer);
        if (rc < 0) {
            printk("kws_runner_push_audio: %s\n", kws_runner_status_str(rc));
        }
    }
}
#endif /* TINYSPEECH_LIVE */

}  // namespace

int main(void)
{
    const int status = kws_runner_init(&g_runner, g_arena, sizeof(g_arena), nullptr);
    if (status != KWS_RUNNER_OK) {
        printk("kws_runner_init failed: %s\n", kws_runner_status_str(status));
        return 0;
    }
    printk("TinySpeech: %d labels, arena %u of %d bytes used, model every %d frames\n",
           kLabelCount, static_cast<unsigned>(kws_runner_arena_used(&g_runner)), kArenaSize,
           static_cast<int>(g_runner.config.invoke_every_frames));
#ifndef KWS_RUNNER_NO_SELF_TEST
    SelfTest();
#endif
#if TINYSPEECH_LIVE
    Listen();
#else
    printk("no DMIC configured (dmic.conf and a dmic_dev node enable live listening)\n");
#endif
    return 0;
}
