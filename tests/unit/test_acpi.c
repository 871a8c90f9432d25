/* Unit tests for the ACPI tables (checksums, lengths, pointers, MADT entries for 1..1024
 * CPUs with x2APIC entries above 254) and the PM1a register block (S5 poweroff, reset). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "core/bus.h"

#define BASE ACPI_DEFAULT_BASE

static uint8_t *buf;

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static const uint8_t *at(uint64_t gpa)
{
	assert_true(gpa >= BASE && gpa < BASE + ACPI_DEFAULT_SIZE);
	return buf + (gpa - BASE);
}

/* A table at gpa: signature, length as reported, checksum zero. */
static const uint8_t *table(uint64_t gpa, const char *sig, uint32_t len)
{
	const uint8_t *t = at(gpa);

	assert_memory_equal(t, sig, 4);
	assert_int_equal(rd32(t + 4), len);
	assert_int_equal(acpi_sum(t, len), 0);
	return t;
}

static int setup(void **state)
{
	(void)state;
	buf = malloc(ACPI_DEFAULT_SIZE);
	return buf ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(buf);
	return 0;
}

static void build(const struct acpi_config *cfg, struct acpi_tables *t)
{
	memset(buf, 0xcc, ACPI_DEFAULT_SIZE);
	assert_int_equal(acpi_build(cfg, buf, ACPI_DEFAULT_SIZE, BASE, t), 0);
	assert_true(t->used <= ACPI_DEFAULT_SIZE);
	assert_true(t->used <= acpi_size_needed(cfg));
}

static void test_pointers_and_checksums(void **state)
{
	struct acpi_config cfg = { .ncpus = 4, .dsdt_flags = ACPI_DSDT_COM1 };
	struct acpi_tables t;
	const uint8_t *r, *x, *rs, *f;

	(void)state;
	build(&cfg, &t);
	assert_int_equal(t.rsdp, BASE);
	r = at(t.rsdp);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(acpi_sum(r, 20), 0);
	assert_int_equal(acpi_sum(r, 36), 0);
	assert_int_equal(r[15], 2);
	assert_int_equal(rd64(r + 24), t.xsdt);
	assert_int_equal(rd32(r + 16), t.rsdt);

	x = table(t.xsdt, "XSDT", 36 + 16);
	assert_int_equal(rd64(x + 36), t.fadt);
	assert_int_equal(rd64(x + 44), t.madt);
	rs = table(t.rsdt, "RSDT", 36 + 8);
	assert_int_equal(rd32(rs + 36), t.fadt);
	assert_int_equal(rd32(rs + 40), t.madt);

	f = table(t.fadt, "FACP", 276);
	assert_int_equal(rd64(f + 140), t.dsdt);
	assert_int_equal(rd32(f + 40), t.dsdt);
	assert_int_equal(rd64(f + 132), t.facs);
	assert_int_equal(t.facs % 64, 0);
	assert_memory_equal(at(t.facs), "FACS", 4);
	assert_int_equal(rd32(f + 56), ACPI_DEFAULT_PM_BASE);
	assert_int_equal(rd32(f + 64), ACPI_DEFAULT_PM_BASE + 4);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[46], 9);
	assert_int_equal(rd32(f + 112) & (1u << 20), 0); /* not HW_REDUCED_ACPI */
	assert_int_equal(rd64(f + 120), ACPI_DEFAULT_PM_BASE + ACPI_PM_RESET_OFF);
	table(t.dsdt, "DSDT", t.dsdt_len);
	table(t.madt, "APIC", t.madt_len);
}

/* \_S5 as NameOp "_S5_" PackageOp: the object Linux looks for before offering poweroff. */
static void test_dsdt_s5(void **state)
{
	struct acpi_config cfg = { .ncpus = 1 };
	struct acpi_tables t;
	const uint8_t *d;
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12 };

	(void)state;
	build(&cfg, &t);
	d = table(t.dsdt, "DSDT", t.dsdt_len);
	assert_non_null(memmem(d + 36, t.dsdt_len - 36, s5, sizeof(s5)));
	assert_null(memmem(d + 36, t.dsdt_len - 36, "COM1", 4));
	cfg.dsdt_flags = ACPI_DSDT_COM1 | ACPI_DSDT_PCI;
	build(&cfg, &t);
	d = table(t.dsdt, "DSDT", t.dsdt_len);
	assert_non_null(memmem(d + 36, t.dsdt_len - 36, "COM1", 4));
	assert_non_null(memmem(d + 36, t.dsdt_len - 36, "PCI0", 4));
}

struct madt_count {
	unsigned int lapic, x2apic, ioapic, iso;
	uint32_t max_x2apic_id, min_x2apic_id;
	uint32_t bad;
};

/* Walk the MADT's subtables; every length must stay inside the table. */
static struct madt_count walk_madt(const uint8_t *m, uint32_t len)
{
	struct madt_count c = { .min_x2apic_id = UINT32_MAX };
	uint32_t off = 44;

	while (off < len) {
		const uint8_t *s = m + off;

		assert_true(s[1] >= 2 && off + s[1] <= len);
		switch (s[0]) {
		case 0:
			c.lapic++;
			c.bad += s[3] == 0xff;
			break;
		case 1:
			c.ioapic++;
			assert_int_equal(rd32(s + 4), 0xfec00000);
			break;
		case 2:
			c.iso++;
			break;
		case 9:
			c.x2apic++;
			if (rd32(s + 4) > c.max_x2apic_id)
				c.max_x2apic_id = rd32(s + 4);
			if (rd32(s + 4) < c.min_x2apic_id)
				c.min_x2apic_id = rd32(s + 4);
			break;
		}
		off += s[1];
	}
	assert_int_equal(off, len);
	return c;
}

static void test_madt_counts(void **state)
{
	static const unsigned int ns[] = { 1, 8, 254, 255, 256, 300, 1024 };
	struct acpi_tables t;

	(void)state;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct acpi_config cfg = { .ncpus = ns[i] };
		struct madt_count c;
		unsigned int nx = ns[i] > 255 ? ns[i] - 255 : 0;

		build(&cfg, &t);
		c = walk_madt(table(t.madt, "APIC", t.madt_len), t.madt_len);
		assert_int_equal(c.lapic, ns[i] - nx);
		assert_int_equal(c.x2apic, nx);
		assert_int_equal(c.ioapic, 1);
		assert_int_equal(c.iso, 2);
		assert_int_equal(c.bad, 0);
		if (nx) {
			assert_int_equal(c.min_x2apic_id, 255);
			assert_int_equal(c.max_x2apic_id, ns[i] - 1);
		}
	}
}

/* Sparse APIC IDs (e.g. a topology with gaps): IDs above 254 get x2APIC entries. */
static void test_madt_sparse_ids(void **state)
{
	uint32_t ids[4] = { 0, 2, 254, 0x1000 };
	struct acpi_config cfg = { .ncpus = 4, .apic_ids = ids };
	struct acpi_tables t;
	struct madt_count c;

	(void)state;
	build(&cfg, &t);
	c = walk_madt(table(t.madt, "APIC", t.madt_len), t.madt_len);
	assert_int_equal(c.lapic, 3);
	assert_int_equal(c.x2apic, 1);
	assert_int_equal(c.max_x2apic_id, 0x1000);
}

static void test_bad_config(void **state)
{
	struct acpi_config cfg = { .ncpus = 0 };
	struct acpi_tables t;
	uint8_t small[256];

	(void)state;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
	cfg.ncpus = 32769;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
	cfg.ncpus = 2;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE + 8, &t), -EINVAL);
	cfg.sci_irq = 16;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
	cfg.sci_irq = 0;
	assert_int_equal(acpi_build(&cfg, small, sizeof(small), BASE, &t), -ENOSPC);
	cfg.ncpus = 1024; /* 14 KiB of MADT does not fit in 4 KiB */
	assert_int_equal(acpi_build(&cfg, buf, 4096, BASE, &t), -ENOSPC);
}

/* virtio-mmio DSDT entries: only windows below 4 GiB, ISA IRQs, at most 8; a good one is
 * there as a LNRO0005 device with its Memory32Fixed window. */
static void test_virtio_mmio_entries(void **state)
{
	struct acpi_config cfg = { .ncpus = 1, .n_virtio_mmio = 1,
				   .virtio_mmio = { { 0xd0000000u, 0x1000, 5 } } };
	static const uint8_t mem32[] = { 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0,
					 0x00, 0x10, 0x00, 0x00 };
	struct acpi_tables t;

	(void)state;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), 0);
	assert_non_null(memmem(buf + (t.dsdt - BASE), t.dsdt_len, "LNRO0005", 8));
	assert_non_null(memmem(buf + (t.dsdt - BASE), t.dsdt_len, mem32, sizeof(mem32)));
	cfg.virtio_mmio[0].irq = 16;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
	cfg.virtio_mmio[0] = (typeof(cfg.virtio_mmio[0])){ 0xfffff000u, 0x2000, 5 }; /* wraps */
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
	cfg.virtio_mmio[0] = (typeof(cfg.virtio_mmio[0])){ 0xd0000000u, 0, 5 };
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
	cfg.virtio_mmio[0].size = 0x1000;
	cfg.n_virtio_mmio = ACPI_MAX_VIRTIO_MMIO + 1;
	assert_int_equal(acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, BASE, &t), -EINVAL);
}

struct events {
	int poweroff, reset;
};

static void on_event(void *ctx, enum acpi_pm_event ev)
{
	struct events *e = ctx;

	if (ev == ACPI_PM_POWEROFF)
		e->poweroff++;
	else if (ev == ACPI_PM_RESET)
		e->reset++;
}

static uint16_t pm_read16(struct acpi_pm *pm, unsigned int off)
{
	uint8_t d[2];

	assert_int_equal(acpi_pm_io(pm, off, d, 2, false), 0);
	return (uint16_t)(d[0] | d[1] << 8);
}

static void pm_write16(struct acpi_pm *pm, unsigned int off, uint16_t v)
{
	uint8_t d[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	assert_int_equal(acpi_pm_io(pm, off, d, 2, true), 0);
}

static void test_pm_poweroff(void **state)
{
	struct events e = { 0 };
	struct acpi_pm pm;

	(void)state;
	acpi_pm_init(&pm, on_event, &e);
	assert_int_equal(pm_read16(&pm, ACPI_PM_CNT_OFF) & 1, 1);	/* SCI_EN */
	/* ACPICA's sequence: SLP_TYP first, then SLP_TYP | SLP_EN. */
	pm_write16(&pm, ACPI_PM_CNT_OFF, 1 | ACPI_SLP_TYP_S5 << 10);
	assert_int_equal(e.poweroff, 0);
	assert_int_equal(pm_read16(&pm, ACPI_PM_CNT_OFF), 1 | ACPI_SLP_TYP_S5 << 10);
	pm_write16(&pm, ACPI_PM_CNT_OFF, 1 | ACPI_SLP_TYP_S5 << 10 | 1 << 13);
	assert_int_equal(e.poweroff, 1);
	/* SLP_EN reads back as 0. */
	assert_int_equal(pm_read16(&pm, ACPI_PM_CNT_OFF) & (1 << 13), 0);
	/* Other sleep types (S1 = 1) are not poweroff. */
	pm_write16(&pm, ACPI_PM_CNT_OFF, 1 | 1 << 10 | 1 << 13);
	assert_int_equal(e.poweroff, 1);
	assert_int_equal(e.reset, 0);
	acpi_pm_destroy(&pm);
}

static void test_pm_registers(void **state)
{
	struct events e = { 0 };
	struct acpi_pm pm;
	uint8_t d[4];
	uint8_t b;

	(void)state;
	acpi_pm_init(&pm, on_event, &e);
	pm_write16(&pm, 2, 0xffff);
	assert_int_equal(pm_read16(&pm, 2), 0x0721);	/* only defined enable bits */
	pm.sts = 0x8100;				/* WAK_STS | PWRBTN_STS */
	pm_write16(&pm, 0, 0x0100);			/* write 1 clears */
	assert_int_equal(pm_read16(&pm, 0), 0x8000);
	pm_write16(&pm, 0, 0x0000);
	assert_int_equal(pm_read16(&pm, 0), 0x8000);
	/* A dword read of the event block gives status | enable << 16. */
	assert_int_equal(acpi_pm_io(&pm, 0, d, 4, false), 0);
	assert_int_equal(rd32(d), 0x8000 | 0x0721u << 16);
	/* Byte access to the high half of PM1_CNT with SLP_TYP=5 | SLP_EN. */
	b = (uint8_t)((ACPI_SLP_TYP_S5 << 2) | 0x20);
	assert_int_equal(acpi_pm_io(&pm, ACPI_PM_CNT_OFF + 1, &b, 1, true), 0);
	assert_int_equal(e.poweroff, 1);
	/* Reset register. */
	b = 0;
	assert_int_equal(acpi_pm_io(&pm, ACPI_PM_RESET_OFF, &b, 1, true), 0);
	assert_int_equal(e.reset, 0);
	b = ACPI_RESET_VALUE;
	assert_int_equal(acpi_pm_io(&pm, ACPI_PM_RESET_OFF, &b, 1, true), 0);
	assert_int_equal(e.reset, 1);
	/* Out of the block or odd sizes: refused, reads give all ones. */
	assert_int_equal(acpi_pm_io(&pm, ACPI_PM_IO_LEN - 1, d, 2, false), -EINVAL);
	assert_int_equal(d[0], 0xff);
	assert_int_equal(acpi_pm_io(&pm, 0, d, 3, false), -EINVAL);
	assert_int_equal(acpi_pm_io(&pm, UINT64_MAX, d, 1, true), -EINVAL);
	acpi_pm_destroy(&pm);
}

/* The PM block works as a handler on vireo's port I/O bus. */
static void test_pm_on_bus(void **state)
{
	struct events e = { 0 };
	struct acpi_pm pm;
	struct io_bus bus;
	uint16_t v = 1 | ACPI_SLP_TYP_S5 << 10 | 1 << 13;

	(void)state;
	acpi_pm_init(&pm, on_event, &e);
	assert_int_equal(bus_init(&bus, "pio"), 0);
	assert_int_equal(bus_register(&bus, ACPI_DEFAULT_PM_BASE, ACPI_PM_IO_LEN, acpi_pm_io,
				      &pm, "acpi-pm"), 0);
	assert_int_equal(bus_access(&bus, ACPI_DEFAULT_PM_BASE + 4, &v, 2, true), 0);
	assert_int_equal(e.poweroff, 1);
	bus_destroy(&bus);
	acpi_pm_destroy(&pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pointers_and_checksums),
		cmocka_unit_test(test_dsdt_s5),
		cmocka_unit_test(test_madt_counts),
		cmocka_unit_test(test_madt_sparse_ids),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_virtio_mmio_entries),
		cmocka_unit_test(test_pm_poweroff),
		cmocka_unit_test(test_pm_registers),
		cmocka_unit_test(test_pm_on_bus),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
