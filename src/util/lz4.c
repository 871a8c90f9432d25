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

/* A match with an offset below 8 (runs of zeros or short patterns, frequent in kernels):
 * the output repeats with period off, so after the first adj bytes (adj: the smallest
 * multiple of off that is >= 8) it is copied 8 bytes at a time from adj bytes back, which
 * reads only bytes already written. Writes up to 8 bytes past len (the caller has room; they
 * are rewritten later or lie past the output). */
static void lz4_repeat(uint8_t *d, size_t off, size_t len)
{
	size_t adj = off * ((8 + off - 1) / off), k;

	if (off == 1) {
		memset(d, d[-1], len);
		return;
	}
	for (k = 0; k < adj && k < len; k++)
		d[k] = (d - off)[k];
	for (; k < len; k += 8)
		memcpy(d + k, d + k - adj, 8);
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
		/* The fast copies may write 8 bytes past what they copy: all but the last
		 * bytes of a match that ends at the buffer's end go that way (a kernel's blocks
		 * often end in a long run of zeros), the rest byte by byte. */
		size_t fast = cap - *o < 16 ? 0 : mlen < cap - *o - 8 ? mlen : cap - *o - 8;

		if (off >= 8) {
			/* 8 bytes at a time: with off >= 8 each chunk reads only bytes already
			 * written, even when source and destination overlap. */
			for (size_t k = 0; k < fast; k += 8)
				memcpy(out + *o + k, out + *o - off + k, 8);
		} else if (fast) {
			lz4_repeat(out + *o, off, fast);
		}
		for (size_t k = fast; k < mlen; k++)
			out[*o + k] = out[*o - off + k];
		*o += mlen;
	}
	return 0;
}

/* The legacy format's framing, shared by both decoders: the magic at the start, then
 * blocks, each a 32-bit size and that many bytes. A repeated magic starts a concatenated
 * frame; a size past the end of the input is the trailer (the kernel appends its unpacked
 * size), which ends the stream. */
static int legacy_magic(const uint8_t *p, size_t inlen)
{
	uint32_t v;

	if (inlen < 4)
		return -EINVAL;
	memcpy(&v, p, 4);
	return v == LZ4_LEGACY_MAGIC ? 0 : -EINVAL;
}

/* The block at *i, or NULL at the end of the stream; *i moves past it. */
static const uint8_t *legacy_block(const uint8_t *p, size_t inlen, size_t *i, uint32_t *len)
{
	while (*i <= inlen && inlen - *i >= 4) {
		uint32_t v;

		memcpy(&v, p + *i, 4);
		*i += 4;
		if (v == LZ4_LEGACY_MAGIC)
			continue;       /* concatenated frames */
		if (v > inlen - *i)
			break;          /* trailer */
		*len = v;
		*i += v;
		return p + *i - v;
	}
	return NULL;
}

ssize_t lz4_legacy_decompress(const void *in, size_t inlen, void *out, size_t outcap)
{
	const uint8_t *p = in, *b;
	size_t i = 4, o = 0;
	uint32_t len;
	int r = legacy_magic(p, inlen);

	if (r)
		return r;
	while ((b = legacy_block(p, inlen, &i, &len))) {
		r = lz4_block(b, len, out, outcap, &o);
		if (r)
			return r;
	}
	return (ssize_t)o;
}

ssize_t lz4_legacy_next(const void *in, size_t inlen, size_t *pos, void *out, size_t outcap)
{
	const uint8_t *p = in, *b;
	size_t i = *pos, o = 0;
	uint32_t len;
	int r;

	if (i == 0) { /* the stream's start: its magic */
		r = legacy_magic(p, inlen);
		if (r)
			return r;
		i = 4;
	}
	while ((b = legacy_block(p, inlen, &i, &len))) {
		r = lz4_block(b, len, out, outcap, &o);
		if (r)
			return r;
		if (o) {        /* empty blocks are skipped: 0 means the end */
			*pos = i;
			return (ssize_t)o;
		}
	}
	*pos = inlen;
	return 0;
}
