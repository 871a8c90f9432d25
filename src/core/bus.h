/* I/O buses: port I/O (16-bit addresses) and MMIO (64-bit guest-physical addresses).
 *
 * A device registers a range [base, base+len) with a handler; the vCPU loop dispatches each
 * KVM_EXIT_IO / KVM_EXIT_MMIO access to the handler owning the address, with the offset
 * inside the range. Ranges never overlap (bus_register refuses with -EEXIST).
 *
 * Accesses are 1, 2, 4 (port I/O) or 1, 2, 4, 8 bytes (MMIO); data points to size bytes in
 * little-endian guest order. On a read the handler fills data; a read of an unclaimed
 * address returns all ones (bus_access fills 0xff and returns -ENOENT).
 *
 * Threads: lookups take a read lock, so vCPU threads dispatch in parallel; a handler may be
 * called from several vCPU threads at once and must do its own locking. Registration may
 * happen while vCPUs run (a BAR move), but never from inside a handler of the same bus.
 */
#ifndef VIREO_CORE_BUS_H
#define VIREO_CORE_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Returns 0, or -errno (logged by the caller; the access is then treated as ignored). */
typedef int (*io_handler_fn)(void *opaque, uint64_t offset, void *data, unsigned size,
			     bool is_write);

struct io_range {
	uint64_t base;
	uint64_t len;
	io_handler_fn fn;
	void *opaque;
	const char *name;
};

struct io_bus {
	const char *name;          /* "pio" or "mmio", for logs */
	struct io_range *ranges;   /* sorted by base, non-overlapping */
	unsigned nranges;
	unsigned cap;
	pthread_rwlock_t lock;
};

int bus_init(struct io_bus *bus, const char *name);
void bus_destroy(struct io_bus *bus);

/* Claim [base, base+len) for fn. name must outlive the registration (a string literal).
 * Errors: -EINVAL (len 0, overflow, no fn), -EEXIST (overlaps a range), -ENOMEM. */
int bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn fn,
		 void *opaque, const char *name);
/* Release the range starting exactly at base. -ENOENT when none. */
int bus_unregister(struct io_bus *bus, uint64_t base);

/* Dispatch one access. An access that straddles the end of a range is refused (-EINVAL,
 * read data all ones); no handler -> -ENOENT (read data all ones). */
int bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned size, bool is_write);

#endif
