/* Per-vCPU CPUID tables built from what KVM supports (KVM_GET_SUPPORTED_CPUID).
 *
 * Each vCPU gets the supported table with: its initial APIC ID in leaf 1 EBX[31:24] and its
 * x2APIC ID in the topology leaves 0xB (and 0x1F when KVM lists it) and AMD 0x8000001E;
 * the package size in leaf 1 EBX[23:16], leaf 4 / 0x8000001D sharing fields and
 * 0x80000008 ECX; the hypervisor bit; x2APIC; TSC-deadline only when KVM supports it; the
 * KVM paravirtual leaves 0x40000000 ("KVMKVMKVM\0\0\0") and 0x40000001 with KVM's features
 * plus KVM_FEATURE_MSI_EXT_DEST_ID (S5: APIC IDs above 255 without interrupt remapping);
 * the PMU leaf 0xA zeroed when there is no PMU.
 *
 * Topology: APIC ID = socket << (core_bits + smt_bits) | core << smt_bits | thread, the
 * widths rounded up to powers of two (as on real CPUs). The default, one thread per core and
 * all vCPUs in one socket, makes APIC ID == vCPU index (what acpi_build() assumes when
 * acpi_config.apic_ids is NULL; otherwise pass cpuid_apic_id() for each vCPU).
 *
 * Usage (VM set-up, once per vCPU, before KVM_SET_SREGS; see sregs.h for the order):
 *	struct kvm_cpuid2 *sup = cpuid_get_supported(kvm_fd);        (once per VM)
 *	struct cpuid_config cc = { .ncpus = n,
 *		.tsc_deadline = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0 };
 *	struct x86_caps caps;  char err[160];
 *	if (cpuid_set_vcpu(vcpu_fd, sup, &cc, i, &caps, err, sizeof(err))) pr_err("%s", err);
 *	   (= cpuid_alloc + cpuid_build + KVM_SET_CPUID2 + x86_caps_from_cpuid)
 *	... sregs_set(vcpu_fd, &sregs, &caps, err, sizeof(err)) for the boot registers
 *	free(sup);				(after the last vCPU)
 */
#ifndef VIREO_ARCH_X86_CPUID_H
#define VIREO_ARCH_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entries cpuid_build() may add beyond the supported table. */
#define CPUID_EXTRA_ENTRIES 16

#define KVM_CPUID_SIGNATURE_LEAF 0x40000000
#define KVM_CPUID_FEATURES_LEAF  0x40000001
#define CPUID_KVM_FEATURE_MSI_EXT_DEST_ID 15

struct cpuid_config {
	unsigned int ncpus;		/* vCPUs in the VM, >= 1 */
	unsigned int threads_per_core;	/* 0: 1 */
	unsigned int cores_per_socket;	/* 0: ncpus (one socket) */
	bool tsc_deadline;		/* KVM_CAP_TSC_DEADLINE_TIMER (or the bit in sup) */
	bool pmu;			/* keep leaf 0xA as KVM reports it; false: zeroed */
	bool no_msi_ext_dest_id;	/* leave KVM_FEATURE_MSI_EXT_DEST_ID out */
};

/* The APIC ID (x2APIC ID) of vCPU index cpu. */
uint32_t cpuid_apic_id(const struct cpuid_config *cc, unsigned int cpu);

/* A zeroed struct kvm_cpuid2 with room for nent entries (nent set to it); free() it. */
struct kvm_cpuid2 *cpuid_alloc(unsigned int nent);

/* KVM_GET_SUPPORTED_CPUID on the /dev/kvm fd, growing the buffer on E2BIG. NULL and errno
 * on failure. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

/* Fill out with the table of vCPU cpu. On entry out->nent is out's capacity (at least
 * sup->nent + CPUID_EXTRA_ENTRIES); on return the number of entries (reset it before
 * reusing out for another vCPU). Returns 0, -EINVAL (bad config, cpu >= ncpus, sup without
 * leaves 0 and 1) or -ENOSPC. */
int cpuid_build(const struct kvm_cpuid2 *sup, const struct cpuid_config *cc, unsigned int cpu,
		struct kvm_cpuid2 *out);

struct x86_caps;
/* The per-vCPU step in one call: build vCPU cpu's table from sup, KVM_SET_CPUID2 it on
 * vcpu_fd and, when caps is not NULL, fill caps from that very table (for sregs_set()).
 * Returns 0 or -errno with a message in err ("vcpu3: KVM_SET_CPUID2: ..."). */
int cpuid_set_vcpu(int vcpu_fd, const struct kvm_cpuid2 *sup, const struct cpuid_config *cc,
		   unsigned int cpu, struct x86_caps *caps, char *err, size_t errlen);

/* The entry for (function, index) in t, or NULL. index is ignored for entries without
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX. */
struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *t, uint32_t function,
				    uint32_t index);

#endif
