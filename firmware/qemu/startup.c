/*
 * Minimal Cortex-M4 startup for QEMU mps2-an386: vector table, .data/.bss set-up, FPU enable,
 * newlib semihosting (rdimon) initialisation, then exit(main()) so main's return value becomes
 * QEMU's exit code. Any fault exits with code 99 instead of hanging until the test's timeout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t __data_start__, __data_end__, __data_load__, __bss_start__, __bss_end__;
extern uint32_t __StackTop;
extern int main(void);
extern void initialise_monitor_handles(void);

void Reset_Handler(void);
void Fault_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
    const uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
    SCB_CPACR |= 0xFu << 20; /* full access to CP10/CP11: the FPU used by -mfloat-abi=hard */
    __asm volatile("dsb\n\tisb" ::: "memory");
    initialise_monitor_handles();
    exit(main());
}

/* -nostartfiles drops crti/crtn; newlib's exit() still calls _fini (and init code _init). */
void _init(void);
void _fini(void);
void _init(void)
{
}
void _fini(void)
{
}

void Fault_Handler(void)
{
    _Exit(99);
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__StackTop, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMon */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
