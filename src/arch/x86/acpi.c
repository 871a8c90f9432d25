/* ACPI table builder (see acpi.h). Tables are written byte by byte in little-endian order
 * at offsets from the ACPI 6.4 specification, so that the layout does not depend on the
 * compiler's struct packing. The DSDT body comes from the AML writer in aml.c. */
#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

#define ACPI_OEM_ID		"VIREO "
#define ACPI_OEM_TABLE_ID	"VIREOVM "
#define ACPI_CREATOR_ID		"VIRO"
#define ACPI_HDR_LEN		36
#define ACPI_RSDP_LEN		36
#define ACPI_FADT_LEN		276	/* revision 6 */
#define ACPI_FACS_LEN		64
#define ACPI_MAX_CPUS		32768
#define ACPI_DSDT_MAX		4096

/* MADT subtable types */
#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define MADT_ISO		2
#define MADT_LAPIC_NMI		4
#define MADT_X2APIC		9
#define MADT_X2APIC_NMI		10

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

uint8_t acpi_sum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *b++);
	return s;
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	t[9] = 0;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put32(t + 24, 1);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t + 32, 1);
}

static void acpi_checksum(uint8_t *t, size_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0x100 - acpi_sum(t, len));
}

/* Generic Address Structure in system I/O space. */
static void put_gas_io(uint8_t *p, uint16_t port, uint8_t bits, uint8_t access)
{
	p[0] = 1;	/* SystemIO */
	p[1] = bits;
	p[2] = 0;
	p[3] = access;	/* 1 byte, 2 word, 3 dword */
	put64(p + 4, port);
}

static uint32_t cpu_apic_id(const struct acpi_config *cfg, unsigned int i)
{
	return cfg->apic_ids ? cfg->apic_ids[i] : i;
}

static unsigned int madt_x2apic_count(const struct acpi_config *cfg)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < cfg->ncpus; i++)
		n += cpu_apic_id(cfg, i) > ACPI_MAX_XAPIC_ID || i > ACPI_MAX_XAPIC_ID;
	return n;
}

static size_t madt_len(const struct acpi_config *cfg)
{
	unsigned int nx2 = madt_x2apic_count(cfg);

	return 44 + 8 * (size_t)(cfg->ncpus - nx2) + 16 * (size_t)nx2 + 12 /* IOAPIC */ +
	       2 * 10 /* ISOs */ + 6 /* LAPIC NMI */ + (nx2 ? 12 : 0) /* x2APIC NMI */;
}

size_t acpi_size_needed(const struct acpi_config *cfg)
{
	return 64 /* RSDP */ + ACPI_FACS_LEN + 64 /* XSDT */ + 64 /* RSDT */ + ACPI_FADT_LEN +
	       madt_len(cfg) + ACPI_DSDT_MAX + 6 * 16 /* alignment */;
}

static void build_fadt(uint8_t *t, const struct acpi_config *cfg, uint64_t facs,
		       uint64_t dsdt)
{
	uint16_t pm = cfg->pm_base;

	memset(t, 0, ACPI_FADT_LEN);
	acpi_header(t, "FACP", ACPI_FADT_LEN, 6);
	put32(t + 40, (uint32_t)dsdt);
	t[45] = 0;			/* preferred PM profile: unspecified */
	put16(t + 46, cfg->sci_irq);
	put32(t + 48, 0);		/* no SMI_CMD: always in ACPI mode */
	put32(t + 56, pm + ACPI_PM_EVT_OFF);
	put32(t + 64, pm + ACPI_PM_CNT_OFF);
	t[88] = 4;			/* PM1_EVT_LEN */
	t[89] = 2;			/* PM1_CNT_LEN */
	put16(t + 96, 101);		/* P_LVL2_LAT > 100: no C2 */
	put16(t + 98, 1001);		/* P_LVL3_LAT > 1000: no C3 */
	t[108] = 0x32;			/* CMOS century register */
	/* IAPC_BOOT_ARCH: 8042 present (i8042 reset); no VGA, no MSI refusal, no ASPM. */
	put16(t + 109, (1u << 1) | (1u << 2) /* VGA not present */);
	/* Flags: WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON as control methods (absent),
	 * RESET_REG_SUP, TMR_VAL_EXT unused. */
	put32(t + 112, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 10));
	put_gas_io(t + 116, pm + ACPI_PM_RESET_OFF, 8, 1);
	t[128] = ACPI_RESET_VALUE;
	t[131] = 4;			/* FADT minor version: 6.4 */
	put64(t + 132, facs);		/* X_FIRMWARE_CTRL; FIRMWARE_CTRL stays 0 */
	put64(t + 140, dsdt);
	put_gas_io(t + 148, pm + ACPI_PM_EVT_OFF, 32, 2);
	put_gas_io(t + 172, pm + ACPI_PM_CNT_OFF, 16, 2);
	memcpy(t + 268, "VIREOKVM", 8);	/* hypervisor vendor identity */
	acpi_checksum(t, ACPI_FADT_LEN);
}

static void build_facs(uint8_t *t)
{
	memset(t, 0, ACPI_FACS_LEN);
	memcpy(t, "FACS", 4);
	put32(t + 4, ACPI_FACS_LEN);
	t[32] = 2;			/* version */
}

static uint8_t *madt_iso(uint8_t *p, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	p[0] = MADT_ISO;
	p[1] = 10;
	p[2] = 0;			/* ISA bus */
	p[3] = irq;
	put32(p + 4, gsi);
	put16(p + 8, flags);
	return p + 10;
}

/* Processors in cfg order: xAPIC entries for IDs <= 254, x2APIC entries above (Linux
 * parses both kinds; ACPI 6.4 5.2.12.12 wants x2APIC entries for IDs >= 255). */
static uint8_t *madt_cpus(uint8_t *p, const struct acpi_config *cfg)
{
	for (unsigned int i = 0; i < cfg->ncpus; i++) {
		uint32_t id = cpu_apic_id(cfg, i);

		/* The xAPIC entry's UID is 8 bits: CPUs past 254 get x2APIC entries. */
		if (id <= ACPI_MAX_XAPIC_ID && i <= ACPI_MAX_XAPIC_ID) {
			p[0] = MADT_LAPIC;
			p[1] = 8;
			p[2] = (uint8_t)i;	/* processor UID */
			p[3] = (uint8_t)id;
			put32(p + 4, 1);	/* enabled */
			p += 8;
		} else {
			p[0] = MADT_X2APIC;
			p[1] = 16;
			put16(p + 2, 0);
			put32(p + 4, id);
			put32(p + 8, 1);	/* enabled */
			put32(p + 12, i);	/* processor UID */
			p += 16;
		}
	}
	return p;
}

static void build_madt(uint8_t *t, const struct acpi_config *cfg, size_t len)
{
	uint8_t *p = t + 44;

	memset(t, 0, len);
	acpi_header(t, "APIC", (uint32_t)len, 5);
	put32(t + 36, ACPI_LAPIC_ADDR);
	put32(t + 40, 1);		/* PCAT_COMPAT: there are 8259 PICs */
	p = madt_cpus(p, cfg);

	p[0] = MADT_IOAPIC;
	p[1] = 12;
	p[2] = cfg->ioapic_id;
	put32(p + 4, ACPI_IOAPIC_ADDR);
	put32(p + 8, 0);		/* GSI base */
	p += 12;

	p = madt_iso(p, 0, 2, 0);	/* PIT IRQ0 -> GSI2, bus-default polarity/trigger */
	/* SCI: level-triggered, active high (what the VMM's irqchip line does). */
	p = madt_iso(p, cfg->sci_irq, cfg->sci_irq, 0x0d);

	p[0] = MADT_LAPIC_NMI;		/* LINT1 is NMI on all processors */
	p[1] = 6;
	p[2] = 0xff;
	put16(p + 3, 0);
	p[5] = 1;
	p += 6;
	if (madt_x2apic_count(cfg)) {
		p[0] = MADT_X2APIC_NMI;
		p[1] = 12;
		put16(p + 2, 0);
		put32(p + 4, 0xffffffff);
		p[8] = 1;
		p += 12;
	}
	acpi_checksum(t, len);
}

static void dsdt_com1(struct aml *a)
{
	size_t dev = aml_open_device(a, "COM1"), buf;

	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_int(a, 1);
	aml_name(a, "_CRS");
	buf = aml_open_buffer(a);
	aml_res_io(a, 0x3f8, 8);
	aml_res_irq(a, 4);
	aml_end_tag(a);
	aml_close(a, buf);
	aml_close(a, dev);
}

static void dsdt_pci(struct aml *a, const struct acpi_config *cfg)
{
	size_t dev = aml_open_device(a, "PCI0"), buf;

	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_int(a, 0);
	aml_name(a, "_UID");
	aml_int(a, 0);
	aml_name(a, "_BBN");
	aml_int(a, 0);
	aml_name(a, "_CRS");
	buf = aml_open_buffer(a);
	aml_res_word_bus(a, 0, 0xff);
	aml_res_io(a, 0xcf8, 8);
	aml_res_word_io(a, 0x0000, 0x0cf7);
	aml_res_word_io(a, 0x0d00, 0xffff);
	if (cfg->pci_mmio32_size)
		aml_res_dword_mem(a, cfg->pci_mmio32_base,
				  cfg->pci_mmio32_base + cfg->pci_mmio32_size - 1);
	if (cfg->pci_mmio64_size)
		aml_res_qword_mem(a, cfg->pci_mmio64_base,
				  cfg->pci_mmio64_base + cfg->pci_mmio64_size - 1);
	aml_end_tag(a);
	aml_close(a, buf);
	aml_close(a, dev);
}

/* Device (VRnn) { _HID "LNRO0005", _UID n, _CRS { Memory32Fixed, IRQNoFlags } } */
static void dsdt_virtio_mmio(struct aml *a, const struct acpi_config *cfg, unsigned int i)
{
	char name[5] = { 'V', 'R', (char)('0' + i / 10), (char)('0' + i % 10), 0 };
	size_t dev = aml_open_device(a, name), buf;

	aml_name(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name(a, "_UID");
	aml_int(a, i);
	aml_name(a, "_CRS");
	buf = aml_open_buffer(a);
	aml_res_mem32_fixed(a, cfg->virtio_mmio[i].base, cfg->virtio_mmio[i].size);
	aml_res_irq(a, cfg->virtio_mmio[i].irq);
	aml_end_tag(a);
	aml_close(a, buf);
	aml_close(a, dev);
}

/* DSDT: \_S5 (so that Linux offers ACPI poweroff), then devices under \_SB. Returns the
 * table length or -errno. */
static int build_dsdt(uint8_t *t, size_t cap, const struct acpi_config *cfg)
{
	struct aml a = { .buf = t + ACPI_HDR_LEN, .cap = cap - ACPI_HDR_LEN };
	size_t pkg, sb;

	if (cap < ACPI_HDR_LEN)
		return -ENOSPC;
	/* Name (_S5, Package (4) { SLP_TYP_a, SLP_TYP_b, 0, 0 }) */
	aml_name(&a, "_S5");
	pkg = aml_open_package(&a, 4);
	aml_int(&a, ACPI_SLP_TYP_S5);
	aml_int(&a, ACPI_SLP_TYP_S5);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_close(&a, pkg);
	if ((cfg->dsdt_flags & (ACPI_DSDT_COM1 | ACPI_DSDT_PCI)) || cfg->n_virtio_mmio) {
		sb = aml_open_scope(&a, "_SB");
		if (cfg->dsdt_flags & ACPI_DSDT_COM1)
			dsdt_com1(&a);
		if (cfg->dsdt_flags & ACPI_DSDT_PCI)
			dsdt_pci(&a, cfg);
		for (unsigned int i = 0; i < cfg->n_virtio_mmio; i++)
			dsdt_virtio_mmio(&a, cfg, i);
		aml_close(&a, sb);
	}
	if (a.err)
		return a.err;
	acpi_header(t, "DSDT", (uint32_t)(ACPI_HDR_LEN + a.len), 2);
	acpi_checksum(t, ACPI_HDR_LEN + a.len);
	return (int)(ACPI_HDR_LEN + a.len);
}

static void build_sdt(uint8_t *t, const char *sig, const uint64_t *addrs, unsigned int n,
		      unsigned int width)
{
	uint32_t len = (uint32_t)(ACPI_HDR_LEN + n * width);

	acpi_header(t, sig, len, 1);
	for (unsigned int i = 0; i < n; i++) {
		if (width == 8)
			put64(t + ACPI_HDR_LEN + 8 * i, addrs[i]);
		else
			put32(t + ACPI_HDR_LEN + 4 * i, (uint32_t)addrs[i]);
	}
	acpi_checksum(t, len);
}

static void build_rsdp(uint8_t *t, uint64_t rsdt, uint64_t xsdt)
{
	memset(t, 0, ACPI_RSDP_LEN);
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, ACPI_OEM_ID, 6);
	t[15] = 2;			/* revision: ACPI 2.0+ */
	put32(t + 16, (uint32_t)rsdt);
	put32(t + 20, ACPI_RSDP_LEN);
	put64(t + 24, xsdt);
	t[8] = (uint8_t)(0x100 - acpi_sum(t, 20));
	t[32] = (uint8_t)(0x100 - acpi_sum(t, ACPI_RSDP_LEN));
}

static int acpi_check_config(const struct acpi_config *cfg, uint64_t gpa)
{
	if (!cfg->ncpus || cfg->ncpus > ACPI_MAX_CPUS || cfg->sci_irq >= 16 || (gpa & 15))
		return -EINVAL;
	/* All tables must be reachable through 32-bit RSDT/FADT pointers too. */
	if (gpa > 0xffffffffULL - acpi_size_needed(cfg))
		return -EINVAL;
	for (unsigned int i = 0; cfg->apic_ids && i < cfg->ncpus; i++)
		if (cfg->apic_ids[i] == 0xffffffff)
			return -EINVAL;
	if (cfg->n_virtio_mmio > ACPI_MAX_VIRTIO_MMIO)
		return -EINVAL;
	for (unsigned int i = 0; i < cfg->n_virtio_mmio; i++)
		if (!cfg->virtio_mmio[i].size || cfg->virtio_mmio[i].irq >= 16 ||
		    cfg->virtio_mmio[i].base > 0xffffffffu - (cfg->virtio_mmio[i].size - 1))
			return -EINVAL;
	return 0;
}

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int acpi_build(const struct acpi_config *in, void *buf, size_t size, uint64_t gpa,
	       struct acpi_tables *out)
{
	struct acpi_config cfg = *in;
	uint8_t *b = buf;
	size_t off, mlen;
	uint64_t sdt[2];
	int r;

	if (!cfg.pm_base)
		cfg.pm_base = ACPI_DEFAULT_PM_BASE;
	if (!cfg.sci_irq)
		cfg.sci_irq = ACPI_DEFAULT_SCI_IRQ;
	r = acpi_check_config(&cfg, gpa);
	if (r)
		return r;
	mlen = madt_len(&cfg);
	if (size < acpi_size_needed(&cfg) - ACPI_DSDT_MAX)
		return -ENOSPC;
	memset(out, 0, sizeof(*out));
	memset(b, 0, size);

	out->rsdp = gpa;
	out->rsdp_len = ACPI_RSDP_LEN;
	off = align_up((size_t)(gpa + ACPI_RSDP_LEN), 64) - (size_t)gpa; /* FACS: 64-aligned */
	out->facs = gpa + off;
	out->facs_len = ACPI_FACS_LEN;
	build_facs(b + off);
	off += ACPI_FACS_LEN;

	out->fadt = gpa + off;
	out->fadt_len = ACPI_FADT_LEN;
	off = align_up(off + ACPI_FADT_LEN, 16);
	out->madt = gpa + off;
	out->madt_len = (uint32_t)mlen;
	build_madt(b + off, &cfg, mlen);
	off = align_up(off + mlen, 16);

	out->dsdt = gpa + off;
	r = build_dsdt(b + off, size - off, &cfg);
	if (r < 0)
		return r;
	out->dsdt_len = (uint32_t)r;
	build_fadt(b + (out->fadt - gpa), &cfg, out->facs, out->dsdt);
	off = align_up(off + (size_t)r, 16);

	sdt[0] = out->fadt;
	sdt[1] = out->madt;
	if (size - off < 2 * (ACPI_HDR_LEN + 16) + 16)
		return -ENOSPC;
	out->xsdt = gpa + off;
	build_sdt(b + off, "XSDT", sdt, 2, 8);
	out->xsdt_len = ACPI_HDR_LEN + 16;
	off = align_up(off + out->xsdt_len, 16);
	out->rsdt = gpa + off;
	build_sdt(b + off, "RSDT", sdt, 2, 4);
	out->rsdt_len = ACPI_HDR_LEN + 8;
	off += out->rsdt_len;

	build_rsdp(b, out->rsdt, out->xsdt);
	out->used = off;
	return 0;
}
