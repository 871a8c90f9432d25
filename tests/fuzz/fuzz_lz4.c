/* libFuzzer target for the LZ4 legacy-frame decoder (src/util/lz4.c), which unpacks the
 * payload of a --kernel bzImage on the host. The input's first two bytes choose the output
 * capacity (1 byte to 1 MiB), the rest is the stream (magic prepended, so the blocks get
 * exercised). The output buffers are heap blocks of exactly that capacity, so the decoder's
 * 8-byte fast copies run up against a buffer's end, where ASan sees a one-byte overrun (with
 * one large buffer the output rarely gets near its end). Checked: no crash or access outside
 * the buffers, and the block-by-block decoder agrees with the whole-stream one: every block it
 * accepts is the next part of what the whole decoder writes, and when all blocks are accepted
 * their total is the whole decoder's length; and the whole decoder accepts exactly the
 * streams a plain byte-by-byte decoder here accepts, with the same output (its fast copies
 * change nothing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/lz4.h"

#define CAP_MAX (1u << 20)

/* The reference: one byte at a time, no shortcuts. -1 on any error. */
static ssize_t plain_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t i = 4, o = 0;

	while (n - i >= 4) {
		uint32_t v;
		size_t end;

		memcpy(&v, in + i, 4);
		i += 4;
		if (v == LZ4_LEGACY_MAGIC)
			continue;
		if (v > n - i)
			break;
		for (end = i + v; i < end;) {
			size_t lit = in[i] >> 4, ml = in[i] & 15, off;
			uint8_t b;

			i++;
			if (lit == 15)
				do { if (i >= end) return -1; b = in[i++]; lit += b; } while (b == 255);
			if (lit > end - i || lit > cap - o)
				return -1;
			for (size_t k = 0; k < lit; k++)
				out[o++] = in[i++];
			if (i == end)
				break;
			if (end - i < 2)
				return -1;
			off = in[i] | (size_t)in[i + 1] << 8;
			i += 2;
			if (ml == 15)
				do { if (i >= end) return -1; b = in[i++]; ml += b; } while (b == 255);
			ml += 4;
			if (!off || off > o || ml > cap - o)
				return -1;
			for (size_t k = 0; k < ml; k++, o++)
				out[o] = out[o - off];
		}
	}
	return (ssize_t)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t in[1 << 16], ref[CAP_MAX];
	size_t n, pos = 0, done = 0, cap;
	uint32_t magic = LZ4_LEGACY_MAGIC;
	uint8_t *whole, *blk;
	ssize_t w, b, p;

	if (size < 2)
		return 0;
	cap = 1 + ((size_t)data[0] | (size_t)data[1] << 8) * (CAP_MAX / 65536);
	data += 2;
	size -= 2;
	n = size > sizeof(in) - 4 ? sizeof(in) - 4 : size;
	memcpy(in, &magic, 4);
	memcpy(in + 4, data, n);
	whole = malloc(cap);
	blk = malloc(cap);
	if (!whole || !blk)
		abort();
	w = lz4_legacy_decompress(in, n + 4, whole, cap);
	p = plain_decode(in, n + 4, ref, cap);
	if ((w < 0) != (p < 0) || (w >= 0 && (p != w || memcmp(ref, whole, w))))
		abort();
	while ((b = lz4_legacy_next(in, n + 4, &pos, blk, cap)) > 0) {
		if (w >= 0 && ((size_t)b > (size_t)w - done || memcmp(blk, whole + done, b)))
			abort();
		done += b;
	}
	if (b == 0 && w >= 0 && done != (size_t)w)
		abort();
	free(whole);
	free(blk);
	return 0;
}
