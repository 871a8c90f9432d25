/* vhost-user guest memory: SET_MEM_TABLE and the dirty log.
 *
 * Each region of a memory table is checked (non-empty, page-aligned, no overflow, inside
 * its fd, no overlap with another region in guest-physical or front-end address space)
 * before anything is mapped; then the regions are mmapped and adopted into the device's
 * struct guest_memory with their front-end ("user") addresses, and the old table is
 * unmapped. Rings are stopped around the swap, since the device holds pointers into it.
 *
 * The dirty log (SET_LOG_BASE) is the front-end's bitmap: bit n set = guest page n
 * (4 KiB, by guest-physical address) was written by the device. Device writes land in
 * guest memory's own dirty bitmap (gm_write, vq_push, gm_mark_dirty); vu_log_flush() moves
 * them into the front-end's log, atomically per byte, before each interrupt and whenever a
 * ring stops.
 */
#include "vhost-user/vu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#define VU_LOG_PAGE 4096ull
#define VU_GPA_LIMIT (1ull << 52) /* x86-64 physical address width */

bool vu_mem_table_size_ok(const struct vu_msg *m)
{
	uint32_t n;

	if (m->hdr.size < VU_MEM_HDR_SIZE)
		return false;
	n = m->payload.mem.nregions;
	if (n == 0 || n > VU_MAX_MEM_REGIONS)
		return false;
	return m->hdr.size == VU_MEM_HDR_SIZE + n * sizeof(struct vu_mem_region) ||
	       m->hdr.size == sizeof(struct vu_mem_table); /* some front-ends send all 8 slots */
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Checks one region against its fd and the regions before it; *why names what failed. */
static int check_region(const struct vu_mem_region *r, int fd, const struct vu_mem_region *prev,
			unsigned nprev, const char **why)
{
	struct stat st;
	uint64_t end;

	if (!r->memory_size || (r->memory_size | r->guest_phys_addr) & (GM_PAGE_SIZE - 1)) {
		*why = "memory region empty or not page-aligned";
		return -EINVAL;
	}
	if (__builtin_add_overflow(r->guest_phys_addr, r->memory_size, &end) ||
	    end > VU_GPA_LIMIT ||
	    __builtin_add_overflow(r->userspace_addr, r->memory_size, &end) ||
	    __builtin_add_overflow(r->mmap_offset, r->memory_size, &end)) {
		*why = "memory region range overflows";
		return -EINVAL;
	}
	if (r->mmap_offset & (GM_PAGE_SIZE - 1)) {
		*why = "memory region mmap offset not page-aligned";
		return -EINVAL;
	}
	if (fstat(fd, &st) || (st.st_mode & S_IFMT) == S_IFDIR) {
		*why = "memory region fd cannot be mapped";
		return -EBADF;
	}
	/* Mapping past the end of a file would turn guest accesses into SIGBUS. */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end) {
		*why = "memory region extends past the end of its fd";
		return -EINVAL;
	}
	for (unsigned i = 0; i < nprev; i++) {
		if (overlaps(r->guest_phys_addr, r->memory_size, prev[i].guest_phys_addr,
			     prev[i].memory_size)) {
			*why = "memory regions overlap in guest-physical space";
			return -EINVAL;
		}
		if (overlaps(r->userspace_addr, r->memory_size, prev[i].userspace_addr,
			     prev[i].memory_size)) {
			*why = "memory regions overlap in front-end address space";
			return -EINVAL;
		}
	}
	return 0;
}

static void unmap_one(struct vu_mapping *mp)
{
	if (mp->base)
		munmap(mp->base, mp->len);
	if (mp->fd >= 0)
		close(mp->fd);
	*mp = (struct vu_mapping){ .fd = -1 };
}

void vu_mem_unmap_all(struct vu_server *s)
{
	uint64_t pin_limit = s->gm->pin_limit;

	gm_destroy(s->gm);
	gm_init(s->gm);
	gm_set_pin_limit(s->gm, pin_limit);
	for (unsigned i = 0; i < s->nmaps; i++)
		unmap_one(&s->maps[i]);
	s->nmaps = 0;
}

/* A region whose file the front-end can still shrink would turn this process's accesses into
 * SIGBUS. QEMU's memfd backend seals its memfds (F_SEAL_SHRINK); files cannot be sealed, so
 * this is a warning, once, not a refusal. */
static void warn_unsealed(int fd)
{
	static bool warned;
	int seals = fcntl(fd, F_GET_SEALS);

	if (warned || (seals >= 0 && (seals & F_SEAL_SHRINK)))
		return;
	warned = true;
	pr_warn("vhost-user: guest memory fd not sealed against shrinking: a front-end that "
		"truncates it can crash this backend");
}

static int map_one(const struct vu_mem_region *r, int fd, struct vu_mapping *mp)
{
	size_t len = r->mmap_offset + r->memory_size;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	mp->base = p;
	mp->len = len;
	mp->fd = fd;
	warn_unsealed(fd);
	return 0;
}

/* Scratch space for vu_log_flush: one bit per page of the largest region. */
static int alloc_dirty_buf(struct vu_server *s, const struct vu_mem_table *t)
{
	uint64_t words = 0;
	unsigned long *buf;

	for (unsigned i = 0; i < t->nregions; i++) {
		uint64_t w = (t->regions[i].memory_size / GM_PAGE_SIZE + 63) / 64;

		if (w > words)
			words = w;
	}
	if (words <= s->dirty_words)
		return 0;
	buf = calloc(words, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&s->log_lock);
	free(s->dirty_buf);
	s->dirty_buf = buf;
	s->dirty_words = words;
	pthread_mutex_unlock(&s->log_lock);
	return 0;
}

int vu_h_mem_table(struct vu_server *s, struct vu_msg *m)
{
	const struct vu_mem_table *t = &m->payload.mem;
	struct vu_mapping maps[VU_MAX_MEM_REGIONS];
	const char *why = NULL;
	unsigned n = t->nregions, i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++)
		rc = check_region(&t->regions[i], m->fds[i], t->regions, i, &why);
	if (rc) {
		vu_fail(s, why);
		return rc;
	}
	for (i = 0; i < n; i++) {
		maps[i] = (struct vu_mapping){ .fd = -1 };
		rc = map_one(&t->regions[i], m->fds[i], &maps[i]);
		if (rc) {
			vu_fail(s, "mmap of a memory region failed");
			break;
		}
		m->fds[i] = -1; /* owned by maps[i] now */
	}
	if (rc) {
		while (i--)
			unmap_one(&maps[i]);
		return rc;
	}
	rc = alloc_dirty_buf(s, t);
	if (rc) {
		vu_fail(s, "out of memory");
		for (i = 0; i < n; i++)
			unmap_one(&maps[i]);
		return rc;
	}
	vu_dev_stop(s); /* the device holds pointers into the old table */
	vu_mem_unmap_all(s);
	for (i = 0; i < n; i++) {
		const struct vu_mem_region *r = &t->regions[i];

		rc = gm_add_mapping(s->gm, r->guest_phys_addr, r->memory_size,
				    (uint8_t *)maps[i].base + r->mmap_offset, maps[i].fd,
				    r->mmap_offset, r->userspace_addr, 0, false);
		s->maps[i] = maps[i];
		s->nmaps = i + 1;
		if (rc < 0) {
			vu_fail(s, "guest memory refused a region");
			for (unsigned j = i + 1; j < n; j++)
				unmap_one(&maps[j]);
			return rc;
		}
		pr_debug("%s: region %u: gpa 0x%llx size 0x%llx uaddr 0x%llx", s->name, i,
			 (unsigned long long)r->guest_phys_addr,
			 (unsigned long long)r->memory_size,
			 (unsigned long long)r->userspace_addr);
	}
	return vu_dev_sync(s, false);
}

/* ---- dirty log ------------------------------------------------------------------------------ */

void vu_log_unmap(struct vu_server *s)
{
	pthread_mutex_lock(&s->log_lock);
	if (s->log_base)
		munmap(s->log_base, s->log_map_len);
	s->log_base = NULL;
	s->log = NULL;
	s->log_size = 0;
	pthread_mutex_unlock(&s->log_lock);
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = -1;
}

int vu_h_log_base(struct vu_server *s, struct vu_msg *m)
{
	const struct vu_log_area *a = &m->payload.log;
	struct stat st;
	uint64_t len;
	void *p;

	if (!a->mmap_size || __builtin_add_overflow(a->mmap_size, a->mmap_offset, &len) ||
	    len > (1ull << 40)) {
		vu_fail(s, "dirty log area empty or too large");
		return -EINVAL;
	}
	/* A log past the end of its file would turn the first flush into SIGBUS. */
	if (fstat(m->fds[0], &st) || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)) {
		vu_fail(s, "dirty log area extends past the end of its fd");
		return -EINVAL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0], 0);
	if (p == MAP_FAILED) {
		vu_fail(s, "mmap of the dirty log failed");
		return -errno;
	}
	vu_log_flush(s); /* what was dirty belongs to the old log */
	pthread_mutex_lock(&s->log_lock);
	if (s->log_base)
		munmap(s->log_base, s->log_map_len);
	s->log_base = p;
	s->log_map_len = len;
	s->log = (uint8_t *)p + a->mmap_offset;
	s->log_size = a->mmap_size;
	s->log_bases++;
	pthread_mutex_unlock(&s->log_lock);
	m->payload.u64 = 0; /* the reply: no error */
	m->hdr.size = sizeof(uint64_t);
	return 0;
}

int vu_h_log_fd(struct vu_server *s, struct vu_msg *m)
{
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = vu_msg_take_fd(m, 0);
	return 0;
}

static void log_page(struct vu_server *s, uint64_t gpa)
{
	uint64_t page = gpa / VU_LOG_PAGE;

	if (page / 8 < s->log_size)
		__atomic_fetch_or(&s->log[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
}

/* By page number, clipped to the log: an address range at the top of the address space
 * must not wrap into a walk over every page. */
static void log_range(struct vu_server *s, uint64_t gpa, uint64_t len)
{
	uint64_t first = gpa / VU_LOG_PAGE, last, end;

	if (!len)
		return;
	last = __builtin_add_overflow(gpa, len - 1, &end) ? UINT64_MAX / VU_LOG_PAGE
							  : end / VU_LOG_PAGE;
	if (last >= (uint64_t)s->log_size * 8)
		last = (uint64_t)s->log_size * 8 - 1;
	for (uint64_t page = first; page <= last && s->log_size; page++)
		log_page(s, page * VU_LOG_PAGE);
}

/* Used rings the front-end asked to have logged (VHOST_VRING_F_LOG). */
static void log_used_rings(struct vu_server *s)
{
	for (unsigned i = 0; i < s->nrings; i++) {
		struct vu_vring *r = &s->rings[i];

		if (r->running && (r->addr.flags & (1u << VHOST_VRING_F_LOG)))
			log_range(s, r->addr.log_guest_addr, 6 + 8ull * r->num);
	}
}

void vu_log_flush(struct vu_server *s)
{
	pthread_mutex_lock(&s->log_lock);
	if (!s->log || !vu_has_feature(s, VU_F_LOG_ALL)) {
		pthread_mutex_unlock(&s->log_lock);
		return;
	}
	for (unsigned i = 0; i < s->gm->nregions; i++) {
		const struct gm_region *rg = &s->gm->regions[i];
		unsigned long *buf = s->dirty_buf;
		uint64_t pages = rg->size / GM_PAGE_SIZE;

		if ((pages + 63) / 64 > s->dirty_words)
			continue;
		if (gm_dirty_fetch_and_clear(s->gm, i, buf) <= 0)
			continue;
		for (uint64_t w = 0; w < (pages + 63) / 64; w++)
			for (unsigned long b = buf[w]; b; b &= b - 1) {
				log_page(s, rg->gpa + (w * 64 + __builtin_ctzl(b)) * GM_PAGE_SIZE);
				s->log_pages++;
			}
	}
	log_used_rings(s);
	s->log_flushes++;
	pthread_mutex_unlock(&s->log_lock);
}
