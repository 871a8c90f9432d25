/* kut smp: brings up every application processor with INIT/SIPI/SIPI through the local APIC
 * (xAPIC, or x2APIC with "x2apic" on the command line), counts the APs that check in and
 * compares with the CPU count fw_cfg reports. Each AP records its APIC ID: all must differ. */
#include "kut.h"

static volatile uint32_t ap_ids[KUT_MAX_CPUS];
static volatile uint32_t ap_cpuid_ids[KUT_MAX_CPUS];
static volatile unsigned ap_count;
static bool use_x2apic;

void ap_main(unsigned index)
{
	apic_enable(use_x2apic);
	ap_ids[index] = apic_id();
	ap_cpuid_ids[index] = cpu_initial_apic_id();
	__atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
}

/* Waits until want APs checked in or about limit TSC cycles passed; returns the count. */
static unsigned wait_for_aps(unsigned want, uint64_t limit)
{
	uint64_t t0 = rdtsc();

	while (__atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) < want && rdtsc() - t0 < limit)
		cpu_relax();
	return __atomic_load_n(&ap_count, __ATOMIC_SEQ_CST);
}

static bool ids_distinct(unsigned n, uint32_t bsp)
{
	for (unsigned i = 0; i < n; i++) {
		if (ap_ids[i] == bsp || ap_ids[i] != ap_cpuid_ids[i])
			return false;
		for (unsigned j = 0; j < i; j++)
			if (ap_ids[i] == ap_ids[j])
				return false;
	}
	return true;
}

int main(void)
{
	unsigned ncpus = (unsigned)fwcfg_read_le(FW_CFG_NB_CPUS, 2), got;
	uint32_t bsp;

	use_x2apic = cmdline_has("x2apic");
	report(ncpus >= 1 && ncpus <= KUT_MAX_CPUS, "fw_cfg reports %u CPUs", ncpus);
	if (ncpus < 1 || ncpus > KUT_MAX_CPUS)
		return 1;
	if (use_x2apic && !apic_x2apic_supported()) {
		report(false, "x2APIC requested, CPUID.1:ECX.x2APIC clear");
		return 1;
	}
	apic_enable(use_x2apic);
	bsp = apic_id();
	report(bsp == cpu_initial_apic_id(), "BSP APIC ID %u (%s) matches CPUID", bsp,
	       use_x2apic ? "x2APIC" : "xAPIC");
	smp_start_aps();
	/* ~10 s at 2 GHz for all to arrive, then a grace period that catches extra ones. */
	got = wait_for_aps(ncpus - 1, 20000000000ull);
	got = wait_for_aps(KUT_MAX_CPUS, 200000000ull);
	printf("kut smp: %u of %u CPUs online (%s)\n", got + 1, ncpus, use_x2apic ? "x2APIC" : "xAPIC");
	report(got == ncpus - 1, "%u APs checked in, fw_cfg expects %u", got, ncpus - 1);
	report(ids_distinct(got < KUT_MAX_CPUS ? got : KUT_MAX_CPUS, bsp),
	       "AP APIC IDs distinct, not the BSP's, equal to CPUID's");
	return kut_failures() ? 1 : 0;
}
