/* LZ4 legacy-frame decompression (see lz4.h). vireo uses it to unpack an LZ4 bzImage
 * payload on the host, which is much faster than the guest's own decompressor when KVM
 * emulates guest kernel code (nested, paravirtual KVM). Block format: sequences of a token
 * (literal length << 4 | match length - 4), extra length bytes (255 = continue), literals,
 * a 16-bit little-endian match offset. */
#include "util/lz4.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* Read an extended length: *len += bytes while they are 255. Returns -1 past the end. */
static int lz4_len(const uint8_t *in, size_t n, size_t *i, size_t *len)
{
	uint8_t b;

	do {
		if (*i >= n)
			return -1;
		b = in[(*i)++];
		*len += b;
	} while (b == 255);
	return 0;
}

/* One block of n bytes into out[*o..cap). */
static int lz4_block(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *o)
{
	size_t i = 0;

	while (i < n) {
		uint8_t tok = in[i++];
		size_t lit = tok >> 4, mlen = tok & 15, off;

		if (lit == 15 && lz4_len(in, n, &i, &lit))
			return -EINVAL;
		if (lit > n - i)
			return -EINVAL;
		if (lit > cap - *o)
			return -ENOSPC;
		if (lit <= 16 && n - i >= 16 && cap - *o >= 16)
			memcpy(out + *o, in + i, 16);   /* fixed size: inlined, slack is rewritten */
		else
			memcpy(out + *o, in + i, lit);
		*o += lit;
		i += lit;
		if (i == n)
			break;          /* the last sequence has literals only */
		if (n - i < 2)
			return -EINVAL;
		off = in[i] | (size_t)in[i + 1] << 8;
		i += 2;
		if (mlen == 15 && lz4_len(in, n, &i, &mlen))
			return -EINVAL;
		mlen += 4;
		if (off == 0 || off > *o)
			return -EINVAL;
		if (mlen > cap - *o)
			return -ENOSPC;
		if (off >= 8 && cap - *o >= mlen + 8) {
			/* 8 bytes at a time: with off >= 8 each chunk reads only bytes already
			 * written, even when source and destination overlap. */
			for (size_t k = 0; k < mlen; k += 8)
				memcpy(out + *o + k, out + *o - off + k, 8);
		} else {
			for (size_t k = 0; k < mlen; k++)   /* short offset or near the end */
				out[*o + k] = out[*o - off + k];
		}
		*o += mlen;
	}
	return 0;
}

ssize_t lz4_legacy_decompress(const void *in, size_t inlen, void *out, size_t outcap)
{
	const uint8_t *p = in;
	size_t i = 4, o = 0;
	uint32_t v;

	if (inlen < 4)
		return -EINVAL;
	memcpy(&v, p, 4);
	if (v != LZ4_LEGACY_MAGIC)
		return -EINVAL;
	while (inlen - i >= 4) {
		int r;

		memcpy(&v, p + i, 4);
		i += 4;
		if (v == LZ4_LEGACY_MAGIC)
			continue;       /* concatenated frames */
		if (v > inlen - i)
			break;          /* trailer (e.g. the kernel's appended size) */
		r = lz4_block(p + i, v, out, outcap, &o);
		if (r)
			return r;
		i += v;
	}
	return (ssize_t)o;
}

ssize_t lz4_legacy_next(const void *in, size_t inlen, size_t *pos, void *out, size_t outcap)
{
	const uint8_t *p = in;
	size_t i = *pos, o = 0;
	uint32_t v;

	if (i == 0) { /* the stream's start: its magic */
		if (inlen < 4)
			return -EINVAL;
		memcpy(&v, p, 4);
		if (v != LZ4_LEGACY_MAGIC)
			return -EINVAL;
		i = 4;
	}
	while (i <= inlen && inlen - i >= 4) {
		int r;

		memcpy(&v, p + i, 4);
		i += 4;
		if (v == LZ4_LEGACY_MAGIC)
			continue;       /* concatenated frames */
		if (v > inlen - i)
			break;          /* trailer (e.g. the kernel's appended size) */
		r = lz4_block(p + i, v, out, outcap, &o);
		if (r)
			return r;
		i += v;
		if (o) {        /* empty blocks are skipped: 0 means the end */
			*pos = i;
			return (ssize_t)o;
		}
	}
	*pos = inlen;
	return 0;
}
