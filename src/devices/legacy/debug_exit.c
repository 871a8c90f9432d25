/* isa-debug-exit on port 0xf4: see debug_exit.h. */
#include <errno.h>
#include <string.h>

#include "core/vm.h"
#include "devices/legacy/debug_exit.h"
#include "util/log.h"

int debug_exit_status(uint32_t v)
{
	return (int)((((uint64_t)v << 1) | 1) & 0xff);
}

int debug_exit_io(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write)
{
	struct debug_exit *de = opaque;
	const uint8_t *b = data;
	uint32_t v = 0;

	if (!is_write) {
		memset(data, 0, size);
		return 0;
	}
	if (offset || (size != 1 && size != 2 && size != 4))
		return -EINVAL;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)b[i] << (8 * i);
	pr_info("debug-exit: guest wrote 0x%x, exit status %d", v, debug_exit_status(v));
	de->request_exit(de->ctx, debug_exit_status(v));
	return 0;
}

/* Platform device (src/core/devices.c): port 0xf4 on vm->pio, exits through
 * vm_request_exit(). */
static struct debug_exit debug_exit_dev;

static void debug_exit_request(void *ctx, int status)
{
	vm_request_exit(ctx, status);
}

int debug_exit_dev_init(struct vm *vm)
{
	debug_exit_dev = (struct debug_exit){ .request_exit = debug_exit_request, .ctx = vm };
	return bus_register(&vm->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_LEN, debug_exit_io,
			    &debug_exit_dev, "debug-exit");
}
