/*
 * tinycompress runtime: file I/O and exit through Arm semihosting.
 *
 * M-profile cores trap to the debugger (here QEMU with
 * -semihosting-config enable=on,target=native) with BKPT 0xAB; r0 holds the
 * operation, r1 a pointer to its argument block.
 */
#include <string.h>

#include "tc_platform.h"

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20,
};

#define ADP_STOPPED_APPLICATION_EXIT 0x20026 /* "the application exited", with a status */
#define OPEN_MODE_RB 1                       /* ISO C fopen modes as semihosting numbers them */
#define OPEN_MODE_WB 5

static int32_t semihost_call(int32_t operation, void *argument)
{
    register int32_t r0 __asm__("r0") = operation;
    register void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int32_t tc_platform_open(const char *name, const char *mode)
{
    uint32_t block[3] = {(uint32_t)name, mode[0] == 'w' ? OPEN_MODE_WB : OPEN_MODE_RB, strlen(name)};
    return semihost_call(SYS_OPEN, block);
}

int32_t tc_platform_read(int32_t handle, void *buffer, uint32_t size)
{
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, size};
    const int32_t not_read = semihost_call(SYS_READ, block); /* returns the bytes NOT read */
    return not_read < 0 ? -1 : (int32_t)size - not_read;
}

int32_t tc_platform_write(int32_t handle, const void *buffer, uint32_t size)
{
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, size};
    const int32_t not_written = semihost_call(SYS_WRITE, block);
    return not_written == 0 ? (int32_t)size : -1;
}

int32_t tc_platform_file_length(int32_t handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    return semihost_call(SYS_FLEN, block);
}

void tc_platform_close(int32_t handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    semihost_call(SYS_CLOSE, block);
}

void tc_console_write(const char *text, uint32_t length)
{
    char chunk[65]; /* SYS_WRITE0 takes a terminated string: send the text in pieces */
    while (length) {
        const uint32_t n = length < sizeof chunk - 1 ? length : sizeof chunk - 1;
        memcpy(chunk, text, n);
        chunk[n] = '\0';
        semihost_call(SYS_WRITE0, chunk);
        text += n;
        length -= n;
    }
}

void tc_platform_print(const char *text)
{
    semihost_call(SYS_WRITE0, (void *)text);
    semihost_call(SYS_WRITE0, (void *)"\n");
}

void tc_platform_exit(int32_t status)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
        /* not reached: QEMU has exited */
    }
}
