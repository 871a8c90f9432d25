/* isa-debug-exit (S2): a guest writes v to port 0xf4 and vireo exits with status
 * (v << 1) | 1, so a test kernel's result becomes the process exit status (odd, so that it
 * never looks like vireo's own 0 "powered off"). Writes of 1, 2 or 4 bytes (kvm-unit-tests use
 * a 4-byte port window); the status is the low 8 bits a process exit status can carry. Reads
 * return 0. */
#ifndef VIREO_DEVICES_LEGACY_DEBUG_EXIT_H
#define VIREO_DEVICES_LEGACY_DEBUG_EXIT_H

#include <stdbool.h>
#include <stdint.h>

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_LEN  4

struct debug_exit {
	void (*request_exit)(void *ctx, int status);
	void *ctx;
};

/* (v << 1) | 1, truncated to the 8 bits of a process exit status. */
int debug_exit_status(uint32_t v);

/* The port-I/O handler (src/core/bus.h signature); opaque is a struct debug_exit. */
int debug_exit_io(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write);

/* Platform device (src/core/devices.c): port 0xf4 on vm->pio, exit via vm_request_exit. */
struct vm;
int debug_exit_dev_init(struct vm *vm);

#endif
