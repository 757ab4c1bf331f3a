// The RAM of kws_runner_t by member, as the compiler lays it out for the target: run on QEMU
// mps2-an386 (Cortex-M4F, arm-none-eabi-g++) so that what a board needs is measured, not typed.
//
// Built against an export's model_settings.h / op_resolver.h (the smoother ring and the
// feature window follow the model's labels and stride) and a TFLM include tree: the real
// tflite-micro, or the mock of tests/fixtures/tflm_mock, whose objects are not TFLM's size
// (the program says which one it was built with; only sizeof is taken, nothing of TFLM runs).
//
// Output (semihosting stdout), read by tinyspeech_tf.firmware_state:
//   tflm <real|mock>
//   sizeof kws_runner_t <bytes>
//   member <name> <offset> <bytes>        every member of kws_runner_t, in declaration order
//   smoother_ring <classes> <results>
//   arena_size <bytes>                    TINYSPEECH_ARENA_SIZE as this 32-bit target sees it
// Returns 0.
#include <cstddef>
#include <cstdio>

#include "kws_runner.h"

#define MEMBER(name)                                                                         \
    std::printf("member %s %lu %lu\n", #name,                                                \
                static_cast<unsigned long>(offsetof(kws_runner_t, name)),                   \
                static_cast<unsigned long>(sizeof(kws_runner_t::name)))

int main()
{
#ifdef TINYSPEECH_TFLM_MOCK_MICRO_INTERPRETER_H_
    std::printf("tflm mock\n");
#else
    std::printf("tflm real\n");
#endif
    std::printf("sizeof kws_runner_t %lu\n", static_cast<unsigned long>(sizeof(kws_runner_t)));
    MEMBER(magic);
    MEMBER(built);
    MEMBER(config);
    MEMBER(frontend);
    MEMBER(window);
    MEMBER(window_frames);
    MEMBER(smoother);
    MEMBER(frames);
    MEMBER(until_invoke);
    MEMBER(inferences);
    MEMBER(has_time);
    MEMBER(last_time_ms);
    MEMBER(input_scale);
    MEMBER(input_zero_point);
    MEMBER(scores);
    MEMBER(resolver);
    MEMBER(interpreter);
    MEMBER(input);
    MEMBER(output);
    MEMBER(resolver_storage);
    MEMBER(interpreter_storage);
    std::printf("smoother_ring %d %d\n", TINYSPEECH_SMOOTHER_CLASSES,
                KWS_RUNNER_SMOOTHER_RESULTS);
    std::printf("arena_size %d\n", TINYSPEECH_ARENA_SIZE);
    return 0;
}
