/* A tiny AML (ACPI Machine Language) byte writer, enough for vireo's DSDT: names, integers,
 * strings, packages, buffers, scopes, devices, methods returning constants and resource
 * templates. Nested objects are opened with aml_open_*() and closed with aml_close(),
 * which inserts the minimal PkgLength in front of the body.
 *
 * Usage:
 *	struct aml a = { .buf = p, .cap = n };
 *	size_t dev = aml_open_device(&a, "COM1");
 *	aml_name(&a, "_HID"); aml_eisaid(&a, "PNP0501");
 *	aml_close(&a, dev);
 *	if (a.err) ... (-ENOSPC or -EINVAL; later calls do nothing once err is set)
 */
#ifndef VIREO_ARCH_X86_AML_H
#define VIREO_ARCH_X86_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;
};

void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
/* A name path such as "_S5", "COM1", "_SB.PCI0" or "\\_SB": segments padded with '_'. */
void aml_namestring(struct aml *a, const char *path);
/* Smallest encoding: ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix or QWordPrefix. */
void aml_int(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISA id "PNP0501" as a DWord (compressed letters, then the product number). */
void aml_eisaid(struct aml *a, const char *id);
/* NameOp + name: the caller follows with the value. */
void aml_name(struct aml *a, const char *name);

/* Nested objects: each returns a handle for aml_close(). */
size_t aml_open_scope(struct aml *a, const char *name);
size_t aml_open_device(struct aml *a, const char *name);
size_t aml_open_method(struct aml *a, const char *name, unsigned int nargs);
size_t aml_open_package(struct aml *a, unsigned int nelems);
/* A Buffer whose byte count is filled in at aml_close(). */
size_t aml_open_buffer(struct aml *a);
void aml_close(struct aml *a, size_t handle);
void aml_return(struct aml *a);

/* Resource-template items (inside a buffer). aml_end_tag() closes a template. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
void aml_res_irq(struct aml *a, unsigned int irq);
/* Memory32Fixed (ReadWrite, base, len): a device's MMIO window below 4 GiB. */
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len);
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max);
void aml_end_tag(struct aml *a);

#endif
