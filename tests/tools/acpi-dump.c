/* acpi-dump: build vireo's ACPI tables for N CPUs and write each one to DIR/<sig>.dat, so
 * that tests/integration/acpi_iasl.sh can disassemble them with iasl.
 * Usage: acpi-dump NCPUS DIR [com1] [pci] [virtio] */
#include "arch/x86/acpi.h"
#include "core/vm_virtio.h"
#include "virtio/mmio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_table(const char *dir, const char *name, const uint8_t *base, uint64_t gpa,
		       uint64_t addr, uint32_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(base + (addr - gpa), 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return 1;
	}
	return fclose(f) != 0;
}

int main(int argc, char **argv)
{
	struct acpi_config cfg = { 0 };
	struct acpi_tables t;
	uint8_t *buf;
	int r = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: acpi-dump NCPUS DIR [com1] [pci] [virtio]\n");
		return 2;
	}
	cfg.ncpus = (unsigned int)strtoul(argv[1], NULL, 0);
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "com1"))
			cfg.dsdt_flags |= ACPI_DSDT_COM1;
		else if (!strcmp(argv[i], "pci"))
			cfg.dsdt_flags |= ACPI_DSDT_PCI;
		else if (!strcmp(argv[i], "virtio")) /* vireo run's 8 virtio-mmio slots */
			for (; cfg.n_virtio_mmio < VM_VIRTIO_MAX; cfg.n_virtio_mmio++) {
				unsigned int k = cfg.n_virtio_mmio;

				cfg.virtio_mmio[k].base = (uint32_t)(VM_VIRTIO_MMIO_BASE + k * VIRTIO_MMIO_SIZE);
				cfg.virtio_mmio[k].size = VIRTIO_MMIO_SIZE;
				cfg.virtio_mmio[k].irq = (uint8_t)vm_virtio_irq(k);
			}
	}
	cfg.pci_mmio32_base = 0xc0000000;
	cfg.pci_mmio32_size = 0x3ec00000;
	cfg.pci_mmio64_base = 0x8000000000ULL;
	cfg.pci_mmio64_size = 0x8000000000ULL;
	buf = calloc(1, ACPI_DEFAULT_SIZE);
	if (!buf)
		return 1;
	r = acpi_build(&cfg, buf, ACPI_DEFAULT_SIZE, ACPI_DEFAULT_BASE, &t);
	if (r) {
		fprintf(stderr, "acpi_build: %s\n", strerror(-r));
		free(buf);
		return 1;
	}
	r |= write_table(argv[2], "rsdp", buf, ACPI_DEFAULT_BASE, t.rsdp, t.rsdp_len);
	r |= write_table(argv[2], "xsdt", buf, ACPI_DEFAULT_BASE, t.xsdt, t.xsdt_len);
	r |= write_table(argv[2], "rsdt", buf, ACPI_DEFAULT_BASE, t.rsdt, t.rsdt_len);
	r |= write_table(argv[2], "facp", buf, ACPI_DEFAULT_BASE, t.fadt, t.fadt_len);
	r |= write_table(argv[2], "facs", buf, ACPI_DEFAULT_BASE, t.facs, t.facs_len);
	r |= write_table(argv[2], "apic", buf, ACPI_DEFAULT_BASE, t.madt, t.madt_len);
	r |= write_table(argv[2], "dsdt", buf, ACPI_DEFAULT_BASE, t.dsdt, t.dsdt_len);
	printf("used %zu bytes\n", t.used);
	free(buf);
	return r;
}
