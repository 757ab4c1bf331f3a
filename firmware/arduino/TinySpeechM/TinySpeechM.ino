/*
 * TinySpeechM.ino - keyword spotting on the Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F).
 *
 * The on-board PDM microphone delivers 16 kHz mono PCM; the PDM callback (interrupt context)
 * only copies it into a ring buffer. loop() feeds the buffered audio to kws_runner (MFCC
 * front-end -> int8 TFLM model at the exported stride -> posterior smoother, firmware/common) and, on
 * a detection, prints the keyword on Serial and lights the LED (green "yes", red "no", blue
 * any other keyword, plus the orange LED_BUILTIN) for half a second.
 *
 * At boot it runs the golden self-test (the export's golden clip through front-end and model,
 * compared with what the host computed) and prints PASS or FAIL; see README.md.
 *
 * Before compiling: `make export-tflite` then `python3 firmware/arduino/sync.py` (copies the
 * shared sources and the model into this folder), and install the TFLM Arduino library.
 */
#include <TensorFlowLite.h> /* first: lets the Arduino builder find the TFLM library */

#include <PDM.h>

#include <stdio.h>
#include <string.h>

#include "kws_runner.h"
#include "tensorflow/lite/micro/system_setup.h"

/* 16384 samples = 1.02 s of audio: room for an inference plus a slow Serial write. */
#define RING_SAMPLES 16384
#define PUSH_SAMPLES 512 /* at most this much audio per kws_runner_push_audio call */
#define LED_ON_MS 500
#define STATS_EVERY_MS 10000

static int16_t g_ring[RING_SAMPLES];
static volatile uint32_t g_written = 0; /* samples ever written (PDM callback) */
static volatile uint32_t g_read = 0;    /* samples ever consumed (loop) */
static volatile uint32_t g_dropped = 0; /* samples lost because the ring was full */
static int16_t g_pdm_chunk[256];

alignas(16) static uint8_t g_arena[TINYSPEECH_ARENA_SIZE];
static kws_runner_t g_runner; /* zero-initialised: no constructor runs before setup() */
static bool g_running = false;

static uint32_t g_led_off_at = 0;
static int g_led_pin = -1;
static uint32_t g_inferences = 0;
static uint32_t g_max_push_us = 0;
static uint32_t g_next_stats = STATS_EVERY_MS;

/* Interrupt context: copy, never block, never print. Overflow drops the newest samples (a gap
 * in the audio is better than corrupting the buffer the main loop is reading). */
static void OnPdmData()
{
    int bytes = PDM.available();
    while (bytes > 0) {
        const int want = bytes < (int)sizeof(g_pdm_chunk) ? bytes : (int)sizeof(g_pdm_chunk);
        const int got = PDM.read(g_pdm_chunk, want);
        if (got <= 0) {
            break;
        }
        bytes -= got;
        const uint32_t samples = (uint32_t)got / 2;
        const uint32_t written = g_written;
        const uint32_t room = RING_SAMPLES - (written - g_read);
        const uint32_t keep = samples < room ? samples : room;
        for (uint32_t i = 0; i < keep; i++) {
            g_ring[(written + i) % RING_SAMPLES] = g_pdm_chunk[i];
        }
        g_written = written + keep;
        g_dropped += samples - keep;
    }
}

static void LedsOff()
{
    /* LED_BUILTIN is active high, the RGB LED active low */
    digitalWrite(LED_BUILTIN, LOW);
    digitalWrite(LEDR, HIGH);
    digitalWrite(LEDG, HIGH);
    digitalWrite(LEDB, HIGH);
    g_led_pin = -1;
}

static void OnInference(const kws_runner_event_t* event, void* user)
{
    (void)user;
    g_inferences++;
    if (!event->result.is_new_command) {
        return;
    }
    char line[96];
    snprintf(line, sizeof(line), "heard \"%s\" (score %ld/255) at %ld ms", event->label,
             (long)event->result.score, (long)event->time_ms);
    Serial.println(line);
    LedsOff();
    if (strcmp(event->label, "yes") == 0) {
        g_led_pin = LEDG;
    } else if (strcmp(event->label, "no") == 0) {
        g_led_pin = LEDR;
    } else {
        g_led_pin = LEDB;
    }
    digitalWrite(g_led_pin, LOW);
    digitalWrite(LED_BUILTIN, HIGH);
    g_led_off_at = millis() + LED_ON_MS;
}

#ifndef KWS_RUNNER_NO_SELF_TEST
static void PrintSelfTest(const kws_self_test_report_t* r, int passed)
{
    char line[128];
    const int predicted = r->predicted_index;
    snprintf(line, sizeof(line), "golden clip \"%s\": host predicted \"%s\", board \"%s\"",
             kLabels[r->label_index], kLabels[r->expected_index],
             predicted >= 0 ? kLabels[predicted] : "(no inference)");
    Serial.println(line);
    snprintf(line, sizeof(line), "front-end: %d frames, %d of %d int8 features differ "
             "(max %d LSB, 1 allowed)", r->frames, r->feature_diff_count, r->features_checked,
             r->feature_max_diff);
    Serial.println(line);
    snprintf(line, sizeof(line), "model: scores differ by up to %d LSB (%d allowed)",
             r->score_max_diff, r->score_tolerance);
    Serial.println(line);
    if (r->status != KWS_RUNNER_OK) {
        Serial.println(kws_runner_status_str(r->status));
    }
    Serial.println(passed ? "self-test: PASS" : "self-test: FAIL");
    if (!passed && r->feature_max_diff <= 1 && predicted == r->expected_index) {
        Serial.println("(scores only: optimized kernels such as CMSIS-NN may round differently; "
                       "build with -DKWS_RUNNER_SCORE_TOLERANCE=2 to accept that)");
    }
}
#endif

void setup()
{
    Serial.begin(115200);
    const uint32_t start = millis();
    while (!Serial && millis() - start < 3000) {
        /* wait up to 3 s for the Serial Monitor, then run without it */
    }
    pinMode(LED_BUILTIN, OUTPUT);
    pinMode(LEDR, OUTPUT);
    pinMode(LEDG, OUTPUT);
    pinMode(LEDB, OUTPUT);
    LedsOff();
    tflite::InitializeTarget();

    const int status = kws_runner_init(&g_runner, g_arena, sizeof(g_arena), nullptr);
    if (status != KWS_RUNNER_OK) {
        Serial.print("kws_runner_init failed: ");
        Serial.println(kws_runner_status_str(status));
        return; /* g_running stays false: loop() only blinks */
    }
    char line[96];
    snprintf(line, sizeof(line), "TinySpeech: %d labels, arena %u of %d bytes used",
             kLabelCount, (unsigned)kws_runner_arena_used(&g_runner), kArenaSize);
    Serial.println(line);

#ifndef KWS_RUNNER_NO_SELF_TEST
    kws_self_test_report_t report;
    const int passed = kws_runner_self_test(&g_runner, &report);
    PrintSelfTest(&report, passed);
#endif

    PDM.onReceive(OnPdmData);
    PDM.setGain(20); /* 0..80 on the Nano 33 BLE Sense; 20 is the library default */
    if (!PDM.begin(1, KWS_FE_SAMPLE_RATE)) {
        Serial.println("PDM.begin failed: no microphone?");
        return;
    }
    g_running = true;
    Serial.println("listening...");
}

void loop()
{
    const uint32_t now = millis();
    if (g_led_pin >= 0 && (int32_t)(now - g_led_off_at) >= 0) {
        LedsOff();
    }
    if (!g_running) {
        digitalWrite(LED_BUILTIN, (now / 250) % 2 ? HIGH : LOW); /* blink: setup failed */
        return;
    }
    const uint32_t available = g_written - g_read;
    if (available == 0) {
        return;
    }
    const uint32_t start = g_read % RING_SAMPLES;
    uint32_t n = available < PUSH_SAMPLES ? available : PUSH_SAMPLES;
    if (n > RING_SAMPLES - start) {
        n = RING_SAMPLES - start; /* contiguous piece; the rest comes next loop */
    }
    /* The audio is the clock: time of the chunk's last sample, counting dropped samples. */
    const uint64_t samples = (uint64_t)g_read + n + g_dropped;
    const int32_t audio_ms = (int32_t)(samples * 1000u / KWS_FE_SAMPLE_RATE);
    const uint32_t t0 = micros();
    const int rc = kws_runner_push_audio(&g_runner, &g_ring[start], (int)n, audio_ms,
                                         OnInference, nullptr);
    const uint32_t took = micros() - t0;
    g_read = g_read + n;
    if (rc < 0) {
        Serial.print("kws_runner_push_audio: ");
        Serial.println(kws_runner_status_str(rc));
    } else if (rc > 0 && took > g_max_push_us) {
        g_max_push_us = took;
    }
    if ((int32_t)(now - g_next_stats) >= 0) {
        char line[112];
        snprintf(line, sizeof(line), "stats: %lu inferences, slowest push %lu us, %lu samples "
                 "dropped", (unsigned long)g_inferences, (unsigned long)g_max_push_us,
                 (unsigned long)g_dropped);
        Serial.println(line);
        g_next_stats = now + STATS_EVERY_MS;
    }
}
