/* libFuzzer target for the LZ4 legacy-frame decoder (src/util/lz4.c), which unpacks the
 * payload of a --kernel bzImage on the host. The input is the stream (magic prepended when
 * absent, so the blocks get exercised). Checked: no crash or access outside the buffers
 * (ASan), and the block-by-block decoder agrees with the whole-stream one: every block it
 * accepts is the next part of what the whole decoder writes, and when all blocks are
 * accepted their total is the whole decoder's length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/lz4.h"

#define CAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t in[1 << 16], whole[CAP], blk[CAP];
	size_t n = size > sizeof(in) - 4 ? sizeof(in) - 4 : size, pos = 0, done = 0;
	uint32_t magic = LZ4_LEGACY_MAGIC;
	ssize_t w, b;

	memcpy(in, &magic, 4);
	memcpy(in + 4, data, n);
	w = lz4_legacy_decompress(in, n + 4, whole, CAP);
	while ((b = lz4_legacy_next(in, n + 4, &pos, blk, CAP)) > 0) {
		if (w >= 0 && ((size_t)b > (size_t)w - done || memcmp(blk, whole + done, b)))
			abort();
		done += b;
	}
	if (b == 0 && w >= 0 && done != (size_t)w)
		abort();
	return 0;
}
