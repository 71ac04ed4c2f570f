/* What startup.c gives main.c. */
#ifndef FIRMWARE_H
#define FIRMWARE_H
#include <stddef.h>

/* Writes a NUL-terminated string to the host's console (semihosting). */
void console_write(const char *s);
/* Ends the program: QEMU exits with status 0 if code is 0, else 1. */
void firmware_exit(int code) __attribute__((noreturn));
/* Bytes the heap has taken from RAM so far (the program break minus the end of .bss). */
size_t heap_arena_bytes(void);

#endif
