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

#endif
