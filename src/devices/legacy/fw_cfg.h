/* fw_cfg: QEMU's firmware configuration interface, the traditional port-I/O form that
 * kvm-unit-tests style kernels read for the CPU count and RAM size (S2).
 *
 * Ports: 0x510 selector (16-bit write: the key of the item to read; the offset restarts at 0),
 * 0x511 data (8-bit read: the next byte of the selected item). A read past an item's end, or of
 * a key vireo does not provide, returns 0. Writes to the data port are ignored (no writable
 * items), there is no DMA interface (the ID item says so).
 *
 * Items (little-endian integers, as in QEMU): SIGNATURE "QEMU", ID 1 (traditional interface),
 * UUID (zeros), RAM_SIZE (u64 bytes), NOGRAPHIC (u16 1), NB_CPUS (u16), MAX_CPUS (u16), and
 * an empty FILE_DIR (big-endian count 0).
 *
 * Threads: the selector is shared by all vCPUs (as on real hardware); a mutex keeps each
 * access atomic.
 */
#ifndef VIREO_DEVICES_LEGACY_FW_CFG_H
#define VIREO_DEVICES_LEGACY_FW_CFG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511
#define FW_CFG_PORT_LEN   2

#define FW_CFG_SIGNATURE  0x0000
#define FW_CFG_ID         0x0001
#define FW_CFG_UUID       0x0002
#define FW_CFG_RAM_SIZE   0x0003
#define FW_CFG_NOGRAPHIC  0x0004
#define FW_CFG_NB_CPUS    0x0005
#define FW_CFG_MAX_CPUS   0x000f
#define FW_CFG_FILE_DIR   0x0019
#define FW_CFG_WRITE_CHANNEL 0x4000   /* selector bit: write access (not supported) */

#define FW_CFG_MAX_ITEMS  32
#define FW_CFG_MAX_ITEM_LEN (1u << 20)

struct fw_cfg_item {
	uint16_t key;
	uint32_t len;
	uint8_t *data;
};

struct fw_cfg {
	pthread_mutex_t lock;
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
	unsigned nitems;
	const struct fw_cfg_item *cur; /* selected item, NULL for an unknown key */
	uint32_t offset;               /* next byte of cur */
};

int fw_cfg_init(struct fw_cfg *fc);
void fw_cfg_destroy(struct fw_cfg *fc);

/* Add an item (data copied). Errors: -EEXIST key already present, -ENOSPC table full,
 * -EINVAL longer than FW_CFG_MAX_ITEM_LEN, -ENOMEM. */
int fw_cfg_add(struct fw_cfg *fc, uint16_t key, const void *data, uint32_t len);
int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t v);
int fw_cfg_add_u32(struct fw_cfg *fc, uint16_t key, uint32_t v);
int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t v);

/* The standard items for a VM with ncpus vCPUs (max_cpus possible) and ram_size bytes. */
int fw_cfg_add_standard(struct fw_cfg *fc, unsigned ncpus, unsigned max_cpus,
			uint64_t ram_size);

/* Device model, as the port handlers use it. */
void fw_cfg_select(struct fw_cfg *fc, uint16_t selector);
uint8_t fw_cfg_read_byte(struct fw_cfg *fc);

/* The port-I/O handler (src/core/bus.h signature), offset 0 = selector, 1 = data. */
int fw_cfg_io(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write);

/* Platform device (src/core/devices.c): the standard items for vm (vm->ncpus vCPUs, also the
 * maximum, vm->ram_size bytes) on ports 0x510-0x511 of vm->pio. */
struct vm;
int fw_cfg_dev_init(struct vm *vm);
void fw_cfg_dev_exit(struct vm *vm);

#endif
