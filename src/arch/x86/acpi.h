/* ACPI tables for an x86 guest: RSDP (v2), XSDT, RSDT, FADT (full, not hardware-reduced,
 * so that Linux powers off through the PM1a control block), FACS, MADT (xAPIC entries for
 * APIC IDs up to 254, x2APIC entries above, S5) and a DSDT with \_S5 and optional COM1 and
 * PCI root bridge. Plus the PM1a register block the FADT points at (acpi_pm_*).
 *
 * Usage (VM set-up, before the first KVM_RUN):
 *	struct acpi_config cfg = { .ncpus = n, .dsdt_flags = ACPI_DSDT_COM1 };
 *	struct acpi_tables t;
 *	void *p = host address of guest-physical ACPI_DEFAULT_BASE;
 *	int r = acpi_build(&cfg, p, ACPI_DEFAULT_SIZE, ACPI_DEFAULT_BASE, &t);
 *	boot_params.acpi_rsdp_addr = t.rsdp;  (Linux also finds it by scanning 0xE0000-0xFFFFF)
 *	mark ACPI_DEFAULT_BASE..+t.used as E820_RESERVED (or ACPI) in the e820 map.
 * The PM block: struct acpi_pm pm; acpi_pm_init(&pm, &cfg, on_event, ctx); then route port
 * I/O for [cfg.pm_base, cfg.pm_base + ACPI_PM_IO_LEN) to acpi_pm_io(&pm, port - pm_base, ...).
 * The guest's S5 request calls on_event(ctx, ACPI_PM_POWEROFF): vireo exits 0; a write of
 * ACPI_RESET_VALUE to the FADT reset register calls on_event(ctx, ACPI_PM_RESET). */
#ifndef VIREO_ARCH_X86_ACPI_H
#define VIREO_ARCH_X86_ACPI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where vireo puts the tables by default: the BIOS area Linux scans for the RSDP. */
#define ACPI_DEFAULT_BASE	0xe0000ULL
#define ACPI_DEFAULT_SIZE	0x20000ULL

#define ACPI_DEFAULT_PM_BASE	0x600	/* PM1a_EVT at +0 (4 bytes), PM1a_CNT at +4 (2 bytes) */
#define ACPI_PM_EVT_OFF		0
#define ACPI_PM_CNT_OFF		4
#define ACPI_PM_RESET_OFF	8	/* FADT RESET_REG: 1 byte */
#define ACPI_PM_IO_LEN		16
#define ACPI_RESET_VALUE	0x01
#define ACPI_DEFAULT_SCI_IRQ	9
#define ACPI_SLP_TYP_S5		5	/* the value in \_S5 and PM1_CNT.SLP_TYP */
#define ACPI_LAPIC_ADDR		0xfee00000U
#define ACPI_IOAPIC_ADDR	0xfec00000U
#define ACPI_MAX_XAPIC_ID	254	/* 255 is broadcast: higher IDs need x2APIC entries */

#define ACPI_MAX_VIRTIO_MMIO	8

/* dsdt_flags */
#define ACPI_DSDT_COM1		(1u << 0)	/* PNP0501 at 0x3f8, IRQ 4 */
#define ACPI_DSDT_PCI		(1u << 1)	/* PCI0 root bridge (PNP0A03), config via 0xcf8 */

struct acpi_config {
	unsigned int ncpus;		/* 1 .. 32768 */
	const uint32_t *apic_ids;	/* ncpus APIC IDs; NULL: CPU i has APIC ID i */
	uint16_t pm_base;		/* 0: ACPI_DEFAULT_PM_BASE */
	uint8_t sci_irq;		/* 0: ACPI_DEFAULT_SCI_IRQ (ISA IRQ, < 16) */
	uint8_t ioapic_id;		/* must match the in-kernel IOAPIC (KVM: 0) */
	unsigned int dsdt_flags;	/* ACPI_DSDT_* */
	/* PCI windows for ACPI_DSDT_PCI (size 0: left out). */
	uint32_t pci_mmio32_base, pci_mmio32_size;
	uint64_t pci_mmio64_base, pci_mmio64_size;
	/* virtio-mmio devices, each a LNRO0005 device under \_SB (what Linux's virtio_mmio
	 * matches on ACPI systems) with its window (below 4 GiB) and ISA IRQ (< 16, edge). */
	unsigned int n_virtio_mmio;	/* 0 .. ACPI_MAX_VIRTIO_MMIO */
	struct { uint32_t base, size; uint8_t irq; } virtio_mmio[ACPI_MAX_VIRTIO_MMIO];
};

/* Guest-physical address and length of each table written by acpi_build(). */
struct acpi_tables {
	uint64_t rsdp, xsdt, rsdt, fadt, facs, madt, dsdt;
	uint32_t rsdp_len, xsdt_len, rsdt_len, fadt_len, facs_len, madt_len, dsdt_len;
	size_t used;	/* bytes of buf used, from its start */
};

/* Write all tables into buf, which the guest sees at guest-physical gpa (16-byte aligned;
 * for RSDP discovery by scanning, inside 0xE0000-0xFFFFF). The RSDP goes first, at gpa.
 * Returns 0, -EINVAL for a bad config, or -ENOSPC when size is too small
 * (acpi_size_needed() says how much). */
int acpi_build(const struct acpi_config *cfg, void *buf, size_t size, uint64_t gpa,
	       struct acpi_tables *out);
/* An upper bound of the bytes acpi_build() needs for cfg. */
size_t acpi_size_needed(const struct acpi_config *cfg);
/* 8-bit sum of n bytes: 0 for a table with a correct checksum. */
uint8_t acpi_sum(const void *p, size_t n);

/* PM1a register block. */
enum acpi_pm_event { ACPI_PM_POWEROFF, ACPI_PM_RESET };
struct acpi_pm {
	pthread_mutex_t lock;	/* vCPU threads may access the block at once */
	uint16_t sts, en, cnt;
	void (*on_event)(void *ctx, enum acpi_pm_event ev);
	void *ctx;
};
void acpi_pm_init(struct acpi_pm *pm, void (*on_event)(void *ctx, enum acpi_pm_event ev),
		  void *ctx);
void acpi_pm_destroy(struct acpi_pm *pm);
/* Port I/O on the PM block: offset from pm_base (0 .. ACPI_PM_IO_LEN-1), size 1, 2 or 4.
 * Reads of unknown registers return 0, writes to them are ignored. opaque is the
 * struct acpi_pm. Returns 0, or -EINVAL for an access outside the block. */
int acpi_pm_io(void *opaque, uint64_t offset, void *data, unsigned int size, bool is_write);

#endif
