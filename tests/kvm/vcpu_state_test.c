/* vcpu_state_test: x86_state_save()/x86_state_restore() on the real KVM (S4: restore in an
 * order valid whatever came first). A real-mode guest counts in BX and exits on port 0x10;
 * after 3 exits its vCPU is saved and restored into fresh vCPUs of new VMs: one never
 * given a CPUID, one set up by cpuid_set_vcpu() first, one holding a different CPUID.
 * Each must resume the count (BX 3 -> 4) with MSRs and special registers intact. Then a
 * long-mode state with every supported CR4 bit round-trips, and a state with an
 * unsupported CR4 bit is refused naming the bit. PASS:/FAIL: lines; 77 without /dev/kvm. */
#include "arch/x86/cpuid.h"
#include "arch/x86/sregs.h"
#include "arch/x86/vcpu_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (2u << 20)
#define CODE_ADDR 0x1000
#define EXIT_PORT 0x10

static int kvm, failures;
static struct kvm_cpuid2 *sup;

struct tvm {
	int vm, vcpu;
	struct kvm_run *run;
	uint8_t *mem;
};

static void check(bool ok, const char *what, const char *detail)
{
	printf("%s: %s%s%s\n", ok ? "PASS" : "FAIL", what, detail && *detail ? ": " : "",
	       detail ? detail : "");
	failures += !ok;
}

static int tvm_create(struct tvm *t, const uint8_t *mem_from)
{
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = MEM_SIZE };
	int sz;

	t->vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (t->vm < 0)
		return -1;
	ioctl(t->vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	if (ioctl(t->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return -1;
	t->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->mem == MAP_FAILED)
		return -1;
	if (mem_from)
		memcpy(t->mem, mem_from, MEM_SIZE);
	r.userspace_addr = (uintptr_t)t->mem;
	if (ioctl(t->vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -1;
	t->vcpu = ioctl(t->vm, KVM_CREATE_VCPU, 0);
	sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (t->vcpu < 0 || sz <= 0)
		return -1;
	t->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu, 0);
	return t->run == MAP_FAILED ? -1 : 0;
}

static void tvm_destroy(struct tvm *t)
{
	close(t->vcpu);
	close(t->vm);
	munmap(t->mem, MEM_SIZE);
}

/* One KVM_RUN; true when the guest stopped at its OUT to EXIT_PORT. */
static bool run_to_exit(struct tvm *t)
{
	if (ioctl(t->vcpu, KVM_RUN, 0) < 0)
		return false;
	return t->run->exit_reason == KVM_EXIT_IO && t->run->io.port == EXIT_PORT;
}

static const struct { uint32_t index; uint64_t value; } test_msrs[] = {
	{ 0x174, 0x10 },			/* SYSENTER_CS */
	{ 0xc0000081, 0x0023001000000000ULL },	/* STAR */
	{ 0xc0000082, 0xffffffff81000000ULL },	/* LSTAR */
	{ 0xc0000102, 0x12345000 },		/* KERNEL_GS_BASE */
};
#define N_TEST_MSRS (sizeof(test_msrs) / sizeof(test_msrs[0]))

/* The test MSRs as a struct kvm_msrs (values filled in), or NULL. */
static struct kvm_msrs *test_msr_set(void)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + N_TEST_MSRS * sizeof(m->entries[0]));

	if (!m)
		return NULL;
	m->nmsrs = N_TEST_MSRS;
	for (unsigned int i = 0; i < N_TEST_MSRS; i++)
		m->entries[i] = (struct kvm_msr_entry){ .index = test_msrs[i].index,
							.data = test_msrs[i].value };
	return m;
}

static bool msrs_match(int vcpu, char *why, size_t len)
{
	struct kvm_msrs *m = test_msr_set();
	bool ok = m != NULL;

	for (unsigned int i = 0; ok && i < N_TEST_MSRS; i++)
		m->entries[i].data = ~test_msrs[i].value;
	if (ok && ioctl(vcpu, KVM_GET_MSRS, m) != (int)N_TEST_MSRS) {
		snprintf(why, len, "KVM_GET_MSRS failed");
		ok = false;
	}
	for (unsigned int i = 0; ok && i < N_TEST_MSRS; i++) {
		if (m->entries[i].data != test_msrs[i].value) {
			snprintf(why, len, "MSR 0x%x is 0x%llx", m->entries[i].index,
				 (unsigned long long)m->entries[i].data);
			ok = false;
		}
	}
	free(m);
	return ok;
}

/* The source: real mode at CODE_ADDR, "inc bx; out 0x10, al; jmp $-5", run to BX = 3. */
static struct x86_state *make_source(uint8_t **mem_copy)
{
	static const uint8_t code[] = { 0x43, 0xe6, EXIT_PORT, 0xeb, 0xfb };
	struct cpuid_config cc = { .ncpus = 1 };
	struct kvm_msrs *m = test_msr_set();
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = CODE_ADDR, .rflags = 2 };
	struct x86_state *st = NULL;
	char err[200];
	struct tvm t;
	bool ok = true;

	if (tvm_create(&t, NULL)) {
		check(false, "source VM", strerror(errno));
		return NULL;
	}
	memcpy(t.mem + CODE_ADDR, code, sizeof(code));
	if (!m || cpuid_set_vcpu(t.vcpu, sup, &cc, 0, NULL, err, sizeof(err)) ||
	    ioctl(t.vcpu, KVM_GET_SREGS, &s) < 0) {
		check(false, "source vCPU set-up", err);
		free(m);
		return NULL;
	}
	s.cs.base = 0;
	s.cs.selector = 0;
	ok = ioctl(t.vcpu, KVM_SET_SREGS, &s) == 0 && ioctl(t.vcpu, KVM_SET_REGS, &r) == 0 &&
	     ioctl(t.vcpu, KVM_SET_MSRS, m) == (int)N_TEST_MSRS;
	free(m);
	for (int i = 0; ok && i < 3; i++)
		ok = run_to_exit(&t);
	ok = ok && ioctl(t.vcpu, KVM_GET_REGS, &r) == 0 && r.rbx == 3;
	check(ok, "source guest ran to BX = 3", NULL);
	if (ok) {
		int e = x86_state_save(kvm, t.vcpu, &st);

		check(e == 0, "x86_state_save", e ? strerror(-e) : "");
	}
	*mem_copy = malloc(MEM_SIZE);
	if (*mem_copy)
		memcpy(*mem_copy, t.mem, MEM_SIZE);
	tvm_destroy(&t);
	return st;
}

/* Restore st into a fresh VM whose vCPU went through prep first (0 nothing, 1 vireo's
 * CPUID for vCPU 0, 2 a different CPUID), run once more, check BX = 4 and the MSRs. */
static void restore_and_resume(const struct x86_state *st, const uint8_t *mem, int prep,
			       const char *name)
{
	struct cpuid_config cc = { .ncpus = 2 };
	char err[200] = "", what[160];
	struct kvm_regs r;
	struct tvm t;
	int e;

	snprintf(what, sizeof(what), "restore into a vCPU %s, resume: BX 3 -> 4, MSRs kept", name);
	if (tvm_create(&t, mem)) {
		check(false, what, strerror(errno));
		return;
	}
	if (prep && cpuid_set_vcpu(t.vcpu, sup, &cc, prep == 1 ? 0 : 1, NULL, err, sizeof(err))) {
		check(false, what, err);
		goto out;
	}
	e = x86_state_restore(t.vcpu, st, err, sizeof(err));
	if (e) {
		check(false, what, err);
		goto out;
	}
	if (!run_to_exit(&t) || ioctl(t.vcpu, KVM_GET_REGS, &r) < 0 || r.rbx != 4) {
		check(false, what, "the guest did not continue its count");
		goto out;
	}
	check(msrs_match(t.vcpu, err, sizeof(err)), what, err);
out:
	tvm_destroy(&t);
}

/* Long mode with every supported CR4 bit: save from a vCPU with vireo's CPUID, restore
 * into a vCPU without any: CR0/CR3/CR4/EFER identical. Then an unsupported bit. */
static void long_mode_roundtrip(void)
{
	struct cpuid_config cc = { .ncpus = 1 };
	struct x86_caps caps;
	struct x86_state *st = NULL;
	struct kvm_sregs s, got;
	char err[200] = "";
	struct tvm a, b;
	int e;

	if (tvm_create(&a, NULL) || tvm_create(&b, NULL) ||
	    cpuid_set_vcpu(a.vcpu, sup, &cc, 0, &caps, err, sizeof(err)) ||
	    ioctl(a.vcpu, KVM_GET_SREGS, &s) < 0) {
		check(false, "long-mode round trip set-up", err);
		return;
	}
	s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s.cr3 = 0x9000;
	s.cr4 = X86_CR4_PAE | caps.cr4_allowed;
	s.efer = X86_EFER_LME | X86_EFER_LMA | (caps.efer_allowed & (X86_EFER_SCE | X86_EFER_NXE));
	s.cs.l = 1;
	s.cs.db = 0;
	e = sregs_set(a.vcpu, &s, &caps, err, sizeof(err));
	if (!e)
		e = x86_state_save(kvm, a.vcpu, &st);
	if (!e)
		e = x86_state_restore(b.vcpu, st, err, sizeof(err));
	e = e ? e : ioctl(b.vcpu, KVM_GET_SREGS, &got);
	snprintf(err + strlen(err), sizeof(err) - strlen(err), " CR4 0x%llx", (unsigned long long)s.cr4);
	check(!e && got.cr0 == s.cr0 && got.cr3 == s.cr3 && got.cr4 == s.cr4 && got.efer == s.efer,
	      "long mode with all supported CR4 bits restored into a vCPU without CPUID", err);

	if (st) {
		st->sregs.cr4 |= X86_CR4_LA57;
		if (caps.cr4_allowed & X86_CR4_LA57)
			st->sregs.cr4 |= X86_CR4_SMXE;
		e = x86_state_restore(b.vcpu, st, err, sizeof(err));
		check(e == -EINVAL && strstr(err, "CR4.") != NULL,
		      "a saved state with an unsupported CR4 bit is refused", err);
	}
	x86_state_free(st);
	tvm_destroy(&a);
	tvm_destroy(&b);
}

int main(void)
{
	struct x86_state *st;
	uint8_t *mem = NULL;
	uint64_t v;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("no /dev/kvm\n");
		return 77;
	}
	sup = cpuid_get_supported(kvm);
	if (!sup) {
		printf("FAIL: KVM_GET_SUPPORTED_CPUID\n");
		return 1;
	}
	st = make_source(&mem);
	if (st && mem) {
		printf("saved: %u MSRs, CPUID %u entries, LAPIC %s, XSAVE %s\n", st->msrs->nmsrs,
		       st->cpuid ? st->cpuid->nent : 0, st->has_lapic ? "yes" : "no",
		       st->xsave ? "yes" : "no");
		check(x86_state_msr(st, 0xc0000082, &v) && v == test_msrs[2].value,
		      "saved state holds LSTAR", NULL);
		restore_and_resume(st, mem, 0, "without CPUID");
		restore_and_resume(st, mem, 1, "set up with vireo's CPUID first");
		restore_and_resume(st, mem, 2, "holding another vCPU's CPUID");
	}
	long_mode_roundtrip();
	x86_state_free(st);
	free(mem);
	free(sup);
	close(kvm);
	return failures ? 1 : 0;
}
