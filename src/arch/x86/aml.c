/* AML byte writer for the DSDT (see aml.h). Encodings follow ACPI 6.4 chapter 20 (AML
 * grammar) and 6.4 (resource descriptors). Errors are sticky in a->err so that callers can
 * emit a whole table and check once. */
#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

#define AML_NAME_OP	0x08
#define AML_SCOPE_OP	0x10
#define AML_BUFFER_OP	0x11
#define AML_PACKAGE_OP	0x12
#define AML_METHOD_OP	0x14
#define AML_RETURN_OP	0xa4
#define AML_EXT_PREFIX	0x5b
#define AML_DEVICE_OP	0x82
#define AML_DUAL_NAME	0x2e
#define AML_MULTI_NAME	0x2f

/* Buffers need their byte count inserted at close: the handle carries this flag. */
#define AML_HANDLE_BUFFER (1ULL << 62)

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_le(struct aml *a, uint64_t v, unsigned int n)
{
	uint8_t b[8];

	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

static int seg_char_ok(char c, int first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* One NameSeg of up to four characters, padded with '_'. */
static void aml_nameseg(struct aml *a, const char *s, size_t n)
{
	char seg[4] = { '_', '_', '_', '_' };

	if (n == 0 || n > 4) {
		a->err = a->err ? a->err : -EINVAL;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!seg_char_ok(s[i], i == 0)) {
			a->err = a->err ? a->err : -EINVAL;
			return;
		}
		seg[i] = s[i];
	}
	aml_bytes(a, seg, 4);
}

void aml_namestring(struct aml *a, const char *path)
{
	const char *p = path, *dot;
	unsigned int nsegs = 1;

	while (*p == '\\' || *p == '^')
		aml_byte(a, (uint8_t)*p++);
	for (const char *q = p; *q; q++)
		nsegs += *q == '.';
	if (!*p) {
		aml_byte(a, 0); /* NullName */
		return;
	}
	if (nsegs == 2)
		aml_byte(a, AML_DUAL_NAME);
	else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)nsegs);
	}
	while ((dot = strchr(p, '.'))) {
		aml_nameseg(a, p, (size_t)(dot - p));
		p = dot + 1;
	}
	aml_nameseg(a, p, strlen(p));
}

void aml_int(struct aml *a, uint64_t v)
{
	if (v == 0 || v == 1) {
		aml_byte(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		aml_byte(a, 0x0a);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, 0x0b);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, 0x0c);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, 0x0e);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, 0x0d);
	aml_bytes(a, s, strlen(s) + 1);
}

static unsigned int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned int)(c - '0');
	if (c >= 'A' && c <= 'F')
		return (unsigned int)(c - 'A' + 10);
	return 16;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7) {
		a->err = a->err ? a->err : -EINVAL;
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			a->err = a->err ? a->err : -EINVAL;
			return;
		}
		v |= (uint32_t)(id[i] - 0x40) << (26 - 5 * i);
	}
	for (int i = 3; i < 7; i++) {
		if (hexval(id[i]) > 15) {
			a->err = a->err ? a->err : -EINVAL;
			return;
		}
		v |= hexval(id[i]) << (4 * (6 - i));
	}
	/* The id is stored big-endian inside a DWord constant. */
	aml_byte(a, 0x0c);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, name);
}

size_t aml_open_scope(struct aml *a, const char *name)
{
	size_t h;

	aml_byte(a, AML_SCOPE_OP);
	h = a->len;
	aml_namestring(a, name);
	return h;
}

size_t aml_open_device(struct aml *a, const char *name)
{
	size_t h;

	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	h = a->len;
	aml_namestring(a, name);
	return h;
}

size_t aml_open_method(struct aml *a, const char *name, unsigned int nargs)
{
	size_t h;

	aml_byte(a, AML_METHOD_OP);
	h = a->len;
	aml_namestring(a, name);
	aml_byte(a, (uint8_t)(nargs & 7)); /* not serialized, sync level 0 */
	return h;
}

size_t aml_open_package(struct aml *a, unsigned int nelems)
{
	size_t h;

	if (nelems > 255)
		a->err = a->err ? a->err : -EINVAL;
	aml_byte(a, AML_PACKAGE_OP);
	h = a->len;
	aml_byte(a, (uint8_t)nelems);
	return h;
}

size_t aml_open_buffer(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return a->len | AML_HANDLE_BUFFER;
}

/* Insert n bytes at position pos, shifting what follows. */
static void aml_insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, p, n);
	a->len += n;
}

/* PkgLength counts its own bytes: 1 byte up to 63, else 2-4 bytes of 4+8k bits. */
static size_t pkglength_encode(size_t body, uint8_t out[4])
{
	size_t n, total;

	if (body + 1 <= 0x3f) {
		out[0] = (uint8_t)(body + 1);
		return 1;
	}
	for (n = 2; n <= 4; n++) {
		total = body + n;
		if (total < (1UL << (4 + 8 * (n - 1))))
			break;
	}
	if (n > 4)
		return 0;
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
	for (size_t i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

void aml_close(struct aml *a, size_t handle)
{
	size_t pos = handle & ~AML_HANDLE_BUFFER, n;
	uint8_t pl[4];

	if (a->err)
		return;
	if (pos > a->len) {
		a->err = -EINVAL;
		return;
	}
	if (handle & AML_HANDLE_BUFFER) {
		/* BufferSize is a TermArg in front of the data; encode it into a scratch aml. */
		uint8_t tmp[9];
		struct aml t = { .buf = tmp, .cap = sizeof(tmp) };

		aml_int(&t, a->len - pos);
		aml_insert(a, pos, tmp, t.len);
	}
	n = pkglength_encode(a->len - pos, pl);
	if (!n) {
		a->err = -E2BIG;
		return;
	}
	aml_insert(a, pos, pl, n);
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* I/O port descriptor: 16-bit decode, min = max = base, alignment 1. */
	uint8_t d[8] = { 0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8),
			 (uint8_t)base, (uint8_t)(base >> 8), 0x01, len };

	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq(struct aml *a, unsigned int irq)
{
	uint16_t mask = irq < 16 ? (uint16_t)(1u << irq) : 0;

	if (irq >= 16)
		a->err = a->err ? a->err : -EINVAL;
	aml_byte(a, 0x22); /* IRQNoFlags: edge, active high */
	aml_le(a, mask, 2);
}

void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
	aml_byte(a, 0x86);  /* 32-bit fixed memory range descriptor */
	aml_le(a, 9, 2);    /* length of the rest */
	aml_byte(a, 0x01);  /* read-write */
	aml_le(a, base, 4);
	aml_le(a, len, 4);
}

/* Address space descriptors (Word 0x88, DWord 0x87, QWord 0x8A), as a resource producer
 * with fixed minimum and maximum and positive decode. */
static void aml_res_addr(struct aml *a, uint8_t tag, unsigned int width, uint8_t type,
			 uint8_t tflags, uint64_t min, uint64_t max)
{
	uint16_t len = (uint16_t)(3 + 5 * width);

	aml_byte(a, tag);
	aml_le(a, len, 2);
	aml_byte(a, type);
	aml_byte(a, 0x0c); /* _MAF | _MIF, producer, positive decode */
	aml_byte(a, tflags);
	aml_le(a, 0, width);		    /* granularity */
	aml_le(a, min, width);
	aml_le(a, max, width);
	aml_le(a, 0, width);		    /* translation */
	aml_le(a, max - min + 1, width);    /* length */
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	aml_res_addr(a, 0x88, 2, 2, 0, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	aml_res_addr(a, 0x88, 2, 1, 0x03, min, max); /* entire range */
}

void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max)
{
	aml_res_addr(a, 0x87, 4, 0, 0x01, min, max); /* read-write, non-cacheable */
}

void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max)
{
	aml_res_addr(a, 0x8a, 8, 0, 0x01, min, max);
}

void aml_end_tag(struct aml *a)
{
	aml_byte(a, 0x79);
	aml_byte(a, 0x00); /* checksum 0: "treat as correct" */
}
