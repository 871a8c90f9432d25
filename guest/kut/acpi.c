/* kut acpi: ACPI poweroff and reset the way an OS does them, against vireo's tables:
 *   - RSDP in 0xe0000-0xfffff, XSDT, FADT (checksums, not hardware-reduced, SCI interrupt,
 *     PM1a event/control blocks in I/O space, reset register), FACS, DSDT;
 *   - \_S5 found in the DSDT's AML (NameOp "_S5_" PackageOp ...) and its SLP_TYPa decoded;
 *   - PM1a_CNT reads SCI_EN (ACPI mode without SMI_CMD), PM1a_EN keeps only defined bits;
 *   - then SLP_TYPa | SLP_EN to PM1a_CNT: vireo must exit with status 0 (poweroff) right
 *     there; with "reset" on the command line, the reset value to the FADT's reset register:
 *     vireo must exit with status 4 (reboot).
 * A check that fails ends the kernel with exit(failures) (vireo status odd, not 0 or 4). */
#include "kut.h"

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static const struct sdt *xsdt_find(const struct sdt *x, const char *sig)
{
	unsigned n = (x->len - (uint32_t)sizeof(*x)) / 8;

	for (unsigned i = 0; i < n; i++) {
		uint64_t a = le64((const uint8_t *)(x + 1) + 8 * i);
		const struct sdt *t = (const struct sdt *)(uintptr_t)a;

		if (a && a < (1ull << 32) && !memcmp(t->sig, sig, 4))
			return t;
	}
	return NULL;
}

/* \_S5: NameOp '_S5_' PackageOp PkgLength NumElements, then SLP_TYPa as ZeroOp, OneOp or
 * BytePrefix n. Returns the value or -1. */
static int s5_slp_typ(const struct sdt *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt + sizeof(*dsdt);
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->len;

	for (; p + 8 < end; p++) {
		if (p[0] != 0x08 || memcmp(p + 1, "_S5_", 4) || p[5] != 0x12)
			continue;
		p += 6;
		p += 1 + (p[0] >> 6);	/* PkgLength: 1 + extra bytes */
		p += 1;			/* NumElements */
		if (p >= end)
			return -1;
		if (p[0] == 0x00 || p[0] == 0x01)
			return p[0];
		if (p[0] == 0x0a && p + 1 < end)
			return p[1];
		return -1;
	}
	return -1;
}

int main(void)
{
	const struct rsdp *r = acpi_find_rsdp();
	const struct sdt *x, *fadt, *dsdt;
	const uint8_t *f;
	uint16_t evt, cnt, reset_port;
	uint8_t reset_val;
	int typ;

	puts("kut acpi: poweroff and reset through the FADT");
	report(r && r->rev >= 2 && !acpi_checksum(r, 36), "RSDP v2 found, both checksums right");
	if (!r)
		exit(1);
	x = (const struct sdt *)(uintptr_t)r->xsdt;
	report(!memcmp(x->sig, "XSDT", 4) && !acpi_checksum(x, x->len), "XSDT checksum");
	fadt = xsdt_find(x, "FACP");
	report(fadt && !acpi_checksum(fadt, fadt->len) && fadt->len >= 244, "FADT found, checksum right, %u bytes",
	       fadt ? fadt->len : 0);
	if (!fadt)
		exit(1);
	f = (const uint8_t *)fadt;
	report(!(le32(f + 112) & (1u << 20)), "FADT: not hardware-reduced (PM1 blocks used)");
	report(f[46] == 9 && f[88] == 4 && f[89] == 2, "FADT: SCI IRQ %u, PM1 event block %u bytes, "
	       "control block %u bytes", f[46], f[88], f[89]);
	/* X_PM1a blocks (GAS, system I/O) agree with the 32-bit fields. */
	evt = (uint16_t)le64(f + 152);
	cnt = (uint16_t)le64(f + 176);
	report(f[148] == 1 && f[172] == 1 && evt == le32(f + 56) && cnt == le32(f + 64),
	       "FADT: PM1a_EVT at 0x%x, PM1a_CNT at 0x%x (I/O space, X_ fields agree)", evt, cnt);
	report(le64(f + 132) && !memcmp((const void *)(uintptr_t)le64(f + 132), "FACS", 4),
	       "FACS found through X_FIRMWARE_CTRL");
	dsdt = (const struct sdt *)(uintptr_t)le64(f + 140);
	report(!memcmp(dsdt->sig, "DSDT", 4) && !acpi_checksum(dsdt, dsdt->len), "DSDT checksum");
	typ = s5_slp_typ(dsdt);
	report(typ >= 0 && typ < 8, "\\_S5 found in the DSDT, SLP_TYPa %d", typ);
	report(inw(cnt) & 1, "PM1a_CNT.SCI_EN reads 1 (ACPI mode)");
	outw((uint16_t)(evt + 2), 0xffff);
	report((inw((uint16_t)(evt + 2)) & ~0x0721u) == 0, "PM1a_EN keeps only defined bits (0x%x)",
	       inw((uint16_t)(evt + 2)));
	outw((uint16_t)(evt + 2), 0);
	reset_port = (uint16_t)le64(f + 120);
	reset_val = f[128];
	report((le32(f + 112) & (1u << 10)) && f[116] == 1 && reset_port,
	       "FADT: reset register at port 0x%x, value 0x%x", reset_port, reset_val);
	if (kut_failures() || typ < 0)
		exit((int)kut_failures() + 1);
	if (cmdline_has("reset")) {
		puts("kut acpi: writing the reset value (vireo should exit 4)");
		outb(reset_port, reset_val);
		puts("FAIL: kut acpi: still running after the reset register write");
		exit(2);
	}
	/* What ACPICA does: SLP_TYP first, then SLP_TYP | SLP_EN. */
	outw(cnt, (uint16_t)((inw(cnt) & ~0x1c00u) | (unsigned)typ << 10));
	puts("kut acpi: entering S5 (vireo should exit 0)");
	outw(cnt, (uint16_t)((inw(cnt) & ~0x1c00u) | (unsigned)typ << 10 | 1u << 13));
	puts("FAIL: kut acpi: still running after SLP_EN");
	exit(2);
}
