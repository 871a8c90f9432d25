/* I/O buses: a sorted array of non-overlapping ranges, looked up by binary search under a
 * read lock so that vCPU threads dispatch in parallel. See bus.h. */
#include "core/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bus_init(struct io_bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct io_bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nranges = bus->cap = 0;
	pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first range whose end is above addr (lock held). */
static unsigned bus_lower_bound(const struct io_bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nranges;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct io_range *r = &bus->ranges[mid];

		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn fn,
		 void *opaque, const char *name)
{
	unsigned i;
	int ret = 0;

	if (!len || !fn || base + len < base || base + len == 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = bus_lower_bound(bus, base);
	if (i < bus->nranges && bus->ranges[i].base < base + len) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->nranges == bus->cap) {
		unsigned ncap = bus->cap ? bus->cap * 2 : 16;
		struct io_range *n = realloc(bus->ranges, ncap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		bus->ranges = n;
		bus->cap = ncap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nranges - i) * sizeof(*bus->ranges));
	bus->ranges[i] = (struct io_range){ base, len, fn, opaque, name };
	bus->nranges++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct io_bus *bus, uint64_t base)
{
	unsigned i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_lower_bound(bus, base);
	if (i < bus->nranges && bus->ranges[i].base == base) {
		memmove(&bus->ranges[i], &bus->ranges[i + 1],
			(bus->nranges - i - 1) * sizeof(*bus->ranges));
		bus->nranges--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned size, bool is_write)
{
	const struct io_range *r;
	unsigned i;
	int ret;

	if (!size || size > 8 || addr + size < addr) {
		if (!is_write && size && size <= 8)
			memset(data, 0xff, size);
		return -EINVAL;
	}
	pthread_rwlock_rdlock(&bus->lock);
	i = bus_lower_bound(bus, addr);
	r = i < bus->nranges ? &bus->ranges[i] : NULL;
	if (!r || r->base > addr) {
		ret = -ENOENT;
	} else if (addr + size > r->base + r->len) {
		ret = -EINVAL;
	} else {
		ret = r->fn(r->opaque, addr - r->base, data, size, is_write);
		pthread_rwlock_unlock(&bus->lock);
		return ret;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!is_write)
		memset(data, 0xff, size);
	return ret;
}
