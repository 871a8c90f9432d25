/* fw_cfg device model: a small table of keyed byte strings behind a selector port and a data
 * port. See fw_cfg.h for the ports and items. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/vm.h"
#include "devices/legacy/fw_cfg.h"

int fw_cfg_init(struct fw_cfg *fc)
{
	memset(fc, 0, sizeof(*fc));
	return -pthread_mutex_init(&fc->lock, NULL);
}

void fw_cfg_destroy(struct fw_cfg *fc)
{
	for (unsigned i = 0; i < fc->nitems; i++)
		free(fc->items[i].data);
	fc->nitems = 0;
	fc->cur = NULL;
	pthread_mutex_destroy(&fc->lock);
}

static const struct fw_cfg_item *find(const struct fw_cfg *fc, uint16_t key)
{
	for (unsigned i = 0; i < fc->nitems; i++)
		if (fc->items[i].key == key)
			return &fc->items[i];
	return NULL;
}

int fw_cfg_add(struct fw_cfg *fc, uint16_t key, const void *data, uint32_t len)
{
	struct fw_cfg_item *it;

	if (len > FW_CFG_MAX_ITEM_LEN)
		return -EINVAL;
	if (find(fc, key))
		return -EEXIST;
	if (fc->nitems == FW_CFG_MAX_ITEMS)
		return -ENOSPC;
	it = &fc->items[fc->nitems];
	it->data = malloc(len ? len : 1);
	if (!it->data)
		return -ENOMEM;
	memcpy(it->data, data, len);
	it->key = key;
	it->len = len;
	fc->nitems++;
	return 0;
}

/* Integers are stored little-endian whatever the host (QEMU does the same). */
static int add_le(struct fw_cfg *fc, uint16_t key, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fw_cfg_add(fc, key, b, bytes);
}

int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t v)
{
	return add_le(fc, key, v, 2);
}

int fw_cfg_add_u32(struct fw_cfg *fc, uint16_t key, uint32_t v)
{
	return add_le(fc, key, v, 4);
}

int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t v)
{
	return add_le(fc, key, v, 8);
}

int fw_cfg_add_standard(struct fw_cfg *fc, unsigned ncpus, unsigned max_cpus,
			uint64_t ram_size)
{
	static const uint8_t uuid[16], file_dir[4]; /* zero UUID; FILE_DIR: count 0 (BE) */
	int ret;

	if (!ncpus || ncpus > UINT16_MAX || max_cpus < ncpus || max_cpus > UINT16_MAX)
		return -EINVAL;
	ret = fw_cfg_add(fc, FW_CFG_SIGNATURE, "QEMU", 4);
	if (!ret)
		ret = fw_cfg_add_u32(fc, FW_CFG_ID, 1); /* bit 0: traditional interface; no DMA */
	if (!ret)
		ret = fw_cfg_add(fc, FW_CFG_UUID, uuid, sizeof(uuid));
	if (!ret)
		ret = fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, ram_size);
	if (!ret)
		ret = fw_cfg_add_u16(fc, FW_CFG_NOGRAPHIC, 1);
	if (!ret)
		ret = fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, (uint16_t)ncpus);
	if (!ret)
		ret = fw_cfg_add_u16(fc, FW_CFG_MAX_CPUS, (uint16_t)max_cpus);
	if (!ret)
		ret = fw_cfg_add(fc, FW_CFG_FILE_DIR, file_dir, sizeof(file_dir));
	return ret;
}

void fw_cfg_select(struct fw_cfg *fc, uint16_t selector)
{
	pthread_mutex_lock(&fc->lock);
	fc->cur = find(fc, selector & (uint16_t)~FW_CFG_WRITE_CHANNEL);
	fc->offset = 0;
	pthread_mutex_unlock(&fc->lock);
}

uint8_t fw_cfg_read_byte(struct fw_cfg *fc)
{
	uint8_t v = 0;

	pthread_mutex_lock(&fc->lock);
	if (fc->cur && fc->offset < fc->cur->len)
		v = fc->cur->data[fc->offset++];
	pthread_mutex_unlock(&fc->lock);
	return v;
}

int fw_cfg_io(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write)
{
	struct fw_cfg *fc = opaque;
	uint8_t *b = data;

	if (offset == 0) { /* selector: written as 16 bits (an 8-bit write sets the low byte) */
		if (is_write)
			fw_cfg_select(fc, size >= 2 ? (uint16_t)(b[0] | b[1] << 8) : b[0]);
		else
			memset(data, 0, size);
		return 0;
	}
	if (offset == 1) {
		if (!is_write)
			for (unsigned i = 0; i < size; i++)
				b[i] = fw_cfg_read_byte(fc);
		return 0;
	}
	return -EINVAL;
}

/* One VM per process: the device instance lives here. */
static struct fw_cfg fw_cfg_dev;
static bool fw_cfg_dev_ready;

int fw_cfg_dev_init(struct vm *vm)
{
	int ret = fw_cfg_init(&fw_cfg_dev);

	if (ret)
		return ret;
	ret = fw_cfg_add_standard(&fw_cfg_dev, vm->ncpus, vm->ncpus, vm->ram_size);
	if (!ret)
		ret = bus_register(&vm->pio, FW_CFG_PORT_SEL, FW_CFG_PORT_LEN, fw_cfg_io,
				   &fw_cfg_dev, "fw_cfg");
	if (ret) {
		fw_cfg_destroy(&fw_cfg_dev);
		return ret;
	}
	fw_cfg_dev_ready = true;
	return 0;
}

void fw_cfg_dev_exit(struct vm *vm)
{
	if (!fw_cfg_dev_ready)
		return;
	bus_unregister(&vm->pio, FW_CFG_PORT_SEL);
	fw_cfg_destroy(&fw_cfg_dev);
	fw_cfg_dev_ready = false;
}
