/* i8042 keyboard controller, only as far as reboot needs: Linux's "kbd" reboot method waits
 * for the input buffer to be empty (status bit 1 clear) and writes 0xfe (pulse the reset
 * line) to the command port 0x64. That request ends `vireo run` with VM_EXIT_REBOOT.
 * Everything else reads as "no data"; there is no keyboard or mouse behind it. */
#include <string.h>

#include "core/vm.h"
#include "devices/legacy/legacy.h"
#include "util/log.h"

#define I8042_DATA   0x60
#define I8042_CMD    0x64
#define I8042_RESET  0xfe

static int i8042_data_io(void *opaque, uint64_t offset, void *data, unsigned size,
			 bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0, size);
	return 0;
}

static int i8042_cmd_io(void *opaque, uint64_t offset, void *data, unsigned size,
			bool is_write)
{
	struct vm *vm = opaque;

	(void)offset;
	if (!is_write) {
		memset(data, 0, size);   /* status: output and input buffers empty */
		return 0;
	}
	if (size == 1 && *(uint8_t *)data == I8042_RESET) {
		pr_info("i8042: guest asked for a reset");
		vm_request_exit(vm, VM_EXIT_REBOOT);
	}
	return 0;
}

int i8042_init(struct vm *vm)
{
	int ret = bus_register(&vm->pio, I8042_DATA, 1, i8042_data_io, vm, "i8042-data");

	return ret ? ret : bus_register(&vm->pio, I8042_CMD, 1, i8042_cmd_io, vm, "i8042-cmd");
}
