/* Start-up code and the few system calls newlib needs, for QEMU's mps2-an386 with
 * semihosting: the vector table, a reset handler (FPU on, .data copied, .bss cleared), a
 * bounded _sbrk, console output and exit through semihosting. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
extern char end, __heap_limit;

int main(void);

/* ARM semihosting call (the `bkpt 0xab` convention of Cortex-M). */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void console_write(const char *s) { semihost(0x04 /* SYS_WRITE0 */, s); }

void firmware_exit(int code) {
    /* SYS_EXIT: ADP_Stopped_ApplicationExit ends QEMU with status 0, any other reason with 1. */
    semihost(0x18, (const void *)(uintptr_t)(code == 0 ? 0x20026 : 0x20023));
    for (;;) {
    }
}

void _exit(int code) { firmware_exit(code); }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
int _getpid(void) { return 1; }

void *_sbrk(ptrdiff_t increment) {
    static char *brk = &end;
    if (increment > &__heap_limit - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *old = brk;
    brk += increment;
    return old;
}

size_t heap_arena_bytes(void) { return (size_t)((char *)_sbrk(0) - &end); }

void reset_handler(void) {
    /* Full access to CP10/CP11 (the FPU) before any floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n isb" ::: "memory");
    for (uint32_t *src = &__data_load, *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    firmware_exit(main());
}

static void fault_handler(void) {
    console_write("firmware: fault\n");
    firmware_exit(1);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top,
    reset_handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
};
