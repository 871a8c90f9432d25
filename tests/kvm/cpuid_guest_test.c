/* cpuid_guest_test: does the guest see the CPUID table vireo gives KVM_SET_CPUID2? A 4-vCPU
 * VM; on vCPUs 0 and 3 a real-mode stub runs CPUID for each checked leaf and exits on port
 * 0x10; the registers must equal cpuid_build()'s table: leaf 1 (APIC ID, features), 0xB
 * (x2APIC ID, topology), 0x40000000 (KVM signature), 0x40000001 (KVM features with
 * MSI_EXT_DEST_ID, S5). A mismatch FAILs, except on a KVM known to substitute the host's
 * feature bits (kvm_pvm: leaf 1 ECX and leaf 7 come from the host there), where the leaf
 * is reported as SKIP with both values. 77 without /dev/kvm. */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (1u << 20)
#define NCPUS 4

static int failures;

struct leaf {
	uint32_t fn, idx;
	unsigned int regs;	/* which of EAX, EBX, ECX, EDX (bits 0-3) are compared */
	const char *what;
};

static const struct leaf leaves[] = {
	{ 1, 0, 0xb, "leaf 1 EAX/EBX/EDX (signature, initial APIC ID, HTT)" },
	{ 1, 0, 0x4, "leaf 1 ECX (features: hypervisor, x2APIC, TSC-deadline)" },
	{ 7, 0, 0xf, "leaf 7 (structured features)" },
	{ 0xb, 0, 0xf, "leaf 0xB.0 (x2APIC ID, SMT level)" },
	{ 0xb, 1, 0xf, "leaf 0xB.1 (core level)" },
	{ 0x40000000, 0, 0xf, "leaf 0x40000000 (KVM signature)" },
	{ 0x40000001, 0, 0xf, "leaf 0x40000001 (KVM features incl. MSI_EXT_DEST_ID)" },
};

/* CPUID in the guest: rax/rcx in, registers out after the exit on port 0x10. */
static int guest_cpuid(int vcpu, struct kvm_run *run, uint32_t fn, uint32_t idx,
		       struct kvm_regs *out)
{
	struct kvm_regs r = { .rip = 0x1000, .rflags = 2, .rax = fn, .rcx = idx };

	if (ioctl(vcpu, KVM_SET_REGS, &r) < 0 || ioctl(vcpu, KVM_RUN, 0) < 0 ||
	    run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10)
		return -1;
	return ioctl(vcpu, KVM_GET_REGS, out);
}

static void check_vcpu(int kvm, int vm, const struct kvm_cpuid2 *sup, unsigned int id,
		       bool pvm)
{
	struct cpuid_config cc = { .ncpus = NCPUS };
	struct kvm_cpuid2 *t = cpuid_alloc(sup->nent + CPUID_EXTRA_ENTRIES);
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, id);
	struct kvm_run *run;
	struct kvm_sregs s;
	char err[160];

	if (vcpu < 0 || !t || cpuid_set_vcpu(vcpu, sup, &cc, id, NULL, err, sizeof(err)) ||
	    cpuid_build(sup, &cc, id, t)) {
		printf("FAIL: vCPU %u set-up: %s\n", id, vcpu < 0 ? strerror(errno) : err);
		failures++;
		free(t);
		return;
	}
	run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
		   MAP_SHARED, vcpu, 0);
	ioctl(vcpu, KVM_GET_SREGS, &s);
	s.cs.base = 0;
	s.cs.selector = 0;
	ioctl(vcpu, KVM_SET_SREGS, &s);
	/* An application processor waits for INIT/SIPI: make it runnable directly. */
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

	ioctl(vcpu, KVM_SET_MP_STATE, &mp);
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		const struct kvm_cpuid_entry2 *e = cpuid_find(t, leaves[i].fn, leaves[i].idx);
		struct kvm_regs g;
		bool same;

		if (!e || run == MAP_FAILED || guest_cpuid(vcpu, run, leaves[i].fn, leaves[i].idx, &g)) {
			printf("FAIL: vCPU %u %s: no entry or the guest did not run\n", id, leaves[i].what);
			failures++;
			continue;
		}
		unsigned int m = leaves[i].regs;

		same = (!(m & 1) || (uint32_t)g.rax == e->eax) &&
		       (!(m & 2) || (uint32_t)g.rbx == e->ebx) &&
		       (!(m & 4) || (uint32_t)g.rcx == e->ecx) &&
		       (!(m & 8) || (uint32_t)g.rdx == e->edx);
		printf("%s: vCPU %u %s as in vireo's table", same ? "PASS" : pvm ? "SKIP" : "FAIL",
		       id, leaves[i].what);
		if (!same)
			printf(" (guest %08x %08x %08x %08x, table %08x %08x %08x %08x%s)",
			       (uint32_t)g.rax, (uint32_t)g.rbx, (uint32_t)g.rcx, (uint32_t)g.rdx,
			       e->eax, e->ebx, e->ecx, e->edx,
			       pvm ? "; this KVM (kvm_pvm) shows the host's feature bits instead" : "");
		printf("\n");
		failures += !same && !pvm;
	}
	free(t);
}

int main(void)
{
	static const uint8_t code[] = { 0x0f, 0xa2, 0xe6, 0x10, 0xf4 }; /* cpuid; out 0x10; hlt */
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = MEM_SIZE };
	struct kvm_cpuid2 *sup;
	bool pvm = access("/sys/module/kvm_pvm", F_OK) == 0;
	uint8_t *mem;
	int kvm, vm;

	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120); /* a guest that never exits must not hang the test suite */
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("no /dev/kvm\n");
		return 77;
	}
	sup = cpuid_get_supported(kvm);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!sup || vm < 0 || mem == MAP_FAILED) {
		printf("FAIL: VM set-up\n");
		return 1;
	}
	memcpy(mem + 0x1000, code, sizeof(code));
	r.userspace_addr = (uintptr_t)mem;
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		printf("FAIL: VM memory / irqchip\n");
		return 1;
	}
	check_vcpu(kvm, vm, sup, 0, pvm);
	check_vcpu(kvm, vm, sup, 3, pvm);
	free(sup);
	return failures ? 1 : 0;
}
