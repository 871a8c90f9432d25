/* LZ4 "legacy" frames (magic 0x184c2102), the format of LZ4-compressed Linux kernels. */
#ifndef VIREO_UTIL_LZ4_H
#define VIREO_UTIL_LZ4_H

#include <stddef.h>
#include <sys/types.h>

#define LZ4_LEGACY_MAGIC 0x184c2102u

/* Decompress a legacy-frame stream of inlen bytes into out (outcap bytes). Blocks follow the
 * magic until the input ends (trailing bytes shorter than a block header, such as the
 * kernel's appended size, are ignored). Returns the bytes written, or -EINVAL on a corrupt
 * stream, -ENOSPC when out is too small. Every offset and length is checked. */
ssize_t lz4_legacy_decompress(const void *in, size_t inlen, void *out, size_t outcap);

/* The same stream one block at a time, each into out from its start: legacy blocks are
 * independent (no match reaches into an earlier block), at most LZ4_LEGACY_BLOCK_MAX bytes
 * unpacked. *pos is 0 at the start and is advanced past the block. Returns the block's
 * bytes, 0 at the end of the stream, -EINVAL (corrupt, or a match into an earlier block) or
 * -ENOSPC (out too small). */
#define LZ4_LEGACY_BLOCK_MAX (8u << 20)
ssize_t lz4_legacy_next(const void *in, size_t inlen, size_t *pos, void *out, size_t outcap);

#endif
