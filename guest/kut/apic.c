/* kut apic: the interrupt controllers and ACPI tables as a guest finds them (S2, S5):
 *   - the in-kernel IOAPIC answers at 0xfec00000 with its version and 24 redirection entries;
 *   - a one-shot LAPIC timer interrupt is delivered (xAPIC, or x2APIC with "x2apic");
 *   - the RSDP is found in 0xe0000-0xfffff, RSDP/XSDT/MADT checksums are right, the MADT
 *     lists as many enabled CPUs (xAPIC and x2APIC entries) as fw_cfg reports, and an IOAPIC
 *     at 0xfec00000. */
#include "kut.h"

#define IOAPIC_BASE  0xfec00000u
#define TIMER_VECTOR 0x40

static uint32_t ioapic_read(unsigned reg)
{
	*(volatile uint32_t *)(uintptr_t)IOAPIC_BASE = reg;
	return *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10);
}

static void check_ioapic(void)
{
	uint32_t ver = ioapic_read(1);
	unsigned entries = ((ver >> 16) & 0xff) + 1;

	report((ver & 0xff) >= 0x11 && entries >= 24, "IOAPIC version 0x%x with %u redirection entries",
	       ver & 0xff, entries);
}

static void check_lapic_timer(void)
{
	uint64_t t0;

	outb(0x21, 0xff); /* mask both 8259s: only the LAPIC timer may interrupt us */
	outb(0xa1, 0xff);
	set_irq_vector(TIMER_VECTOR);
	kut_irq_count = 0;
	apic_write(0x3e0, 0xb);            /* divide by 1 */
	apic_write(0x320, TIMER_VECTOR);   /* one-shot, not masked */
	apic_write(0x380, 100000);         /* initial count */
	irq_enable();
	t0 = rdtsc();
	while (!kut_irq_count && rdtsc() - t0 < 10000000000ull)
		cpu_relax();
	irq_disable();
	report(kut_irq_count >= 1, "LAPIC timer interrupt delivered (%s)",
	       apic_is_x2apic() ? "x2APIC" : "xAPIC");
}

/* The table with signature sig from the XSDT (ACPI 2.0+) or the RSDT. */
static const struct sdt *find_table(const struct rsdp *r, const char *sig)
{
	bool x = r->rev >= 2 && r->xsdt && r->xsdt < (1ull << 32);
	const struct sdt *root = (const struct sdt *)(uintptr_t)(x ? r->xsdt : r->rsdt);
	unsigned esize = x ? 8 : 4, n;

	if (!root || acpi_checksum(root, root->len))
		return NULL;
	n = (root->len - (uint32_t)sizeof(*root)) / esize;
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = 0;
		memcpy(&a, (const uint8_t *)(root + 1) + i * esize, esize);
		const struct sdt *t = (const struct sdt *)(uintptr_t)a;
		if (a && a < (1ull << 32) && !memcmp(t->sig, sig, 4))
			return t;
	}
	return NULL;
}

static void check_madt(unsigned ncpus)
{
	const struct rsdp *r = acpi_find_rsdp();
	const struct sdt *madt;
	const uint8_t *p, *end;
	unsigned cpus = 0, ioapics = 0;

	report(r != NULL, "RSDP found in 0xe0000-0xfffff");
	if (!r)
		return;
	report(r->rev < 2 || !acpi_checksum(r, r->len < 36 ? 36 : r->len), "RSDP revision %u checksums",
	       r->rev);
	madt = find_table(r, "APIC");
	report(madt && !acpi_checksum(madt, madt->len), "MADT found through the %s, checksum right",
	       r->rev >= 2 ? "XSDT" : "RSDT");
	if (!madt || acpi_checksum(madt, madt->len))
		return;
	p = (const uint8_t *)madt + 44;
	end = (const uint8_t *)madt + madt->len;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		uint32_t v;
		if (p[0] == 0 && p[1] >= 8 && (p[4] & 1))       /* processor local APIC */
			cpus++;
		if (p[0] == 9 && p[1] >= 16) {                  /* processor local x2APIC */
			memcpy(&v, p + 8, 4);
			cpus += v & 1;
		}
		if (p[0] == 1 && p[1] >= 12) {                  /* IOAPIC */
			memcpy(&v, p + 4, 4);
			ioapics += v == IOAPIC_BASE;
		}
		p += p[1];
	}
	report(cpus == ncpus, "MADT lists %u enabled CPUs, fw_cfg %u", cpus, ncpus);
	report(ioapics == 1, "MADT lists the IOAPIC at 0x%x", IOAPIC_BASE);
}

int main(void)
{
	unsigned ncpus = (unsigned)fwcfg_read_le(FW_CFG_NB_CPUS, 2);
	bool x2 = cmdline_has("x2apic");

	printf("kut apic: IOAPIC, LAPIC timer, ACPI MADT\n");
	if (x2 && !apic_x2apic_supported()) {
		report(false, "x2APIC requested, CPUID.1:ECX.x2APIC clear");
		return 1;
	}
	apic_enable(x2);
	check_ioapic();
	check_lapic_timer();
	check_madt(ncpus);
	printf("kut apic: %u failures\n", kut_failures());
	return kut_failures() ? 1 : 0;
}
