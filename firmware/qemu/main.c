/*
 * Bare-metal front-end check for QEMU mps2-an386 (Cortex-M4F).
 *
 * Streams the int16 clip of kws_test_samples.h (a header generated into the build directory at
 * test time, see tinyspeech_tf.frontend_c.build_qemu_program) through kws_frontend_push() in
 * 320-sample chunks, keeps the 49-frame window, quantizes it with KWS_QSCALE / KWS_QZERO and
 * prints an FNV-1a 32 hash plus the hex of the 490 int8 features over semihosting. The host test
 * compares them with the same C built for the host. Returns 0 on success (QEMU's exit code).
 *
 * Built and run by tinyspeech_tf.frontend_c (build_qemu_program, run_qemu), e.g. through
 * `make firmware-check`: arm-none-eabi-gcc --specs=rdimon.specs -nostartfiles -T mps2_an386.ld
 * startup.c main.c kws_frontend.c, then qemu-system-arm -M mps2-an386 -nographic
 * -semihosting-config enable=on,target=native -kernel X.elf
 */
#include <stdint.h>
#include <stdio.h>

#include "kws_frontend.h"
#include "kws_test_samples.h"

#ifndef KWS_QSCALE
#define KWS_QSCALE 0.5847029f
#endif
#ifndef KWS_QZERO
#define KWS_QZERO 83
#endif

#define N_FEATURES (KWS_FE_NUM_FRAMES * KWS_FE_NUM_MFCC)

static kws_frontend_t frontend;
static kws_feature_window_t window;
static int8_t quantized[N_FEATURES];

static uint32_t fnv1a32(const uint8_t *data, int n)
{
    uint32_t h = 0x811C9DC5u;
    for (int i = 0; i < n; i++) {
        h ^= data[i];
        h *= 0x01000193u;
    }
    return h;
}

int main(void)
{
    float frame[KWS_FE_NUM_MFCC];
    int frames = 0;
    kws_frontend_init(&frontend);
    kws_window_init(&window);
    for (int i = 0; i + KWS_FE_FRAME_STEP <= KWS_TEST_SAMPLES_COUNT; i += KWS_FE_FRAME_STEP) {
        int n = kws_frontend_push(&frontend, &kws_test_samples[i], KWS_FE_FRAME_STEP, frame, 1);
        if (n == 1) {
            kws_window_push(&window, frame);
            frames++;
        }
    }
    if (frames != KWS_FE_NUM_FRAMES || !kws_window_ready(&window)) {
        printf("error: %d frames, expected %d\n", frames, KWS_FE_NUM_FRAMES);
        return 1;
    }
    kws_frontend_quantize(window.data, N_FEATURES, KWS_QSCALE, KWS_QZERO, quantized);
    printf("frames=%d int8_fnv1a32=0x%08lx\n", frames,
           (unsigned long)fnv1a32((const uint8_t *)quantized, N_FEATURES));
    printf("int8_hex=");
    for (int i = 0; i < N_FEATURES; i++) {
        printf("%02x", (unsigned)(uint8_t)quantized[i]);
    }
    printf("\n");
    return 0;
}
