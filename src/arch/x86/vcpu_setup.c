/* x86 vCPU set-up (see vcpu_setup.h), in the order sregs.h explains: KVM_SET_CPUID2 (per-vCPU
 * table from cpuid.c), then the special registers checked against that very table
 * (sregs_set), then general registers, MSRs, FPU, LAPIC. Boot MSRs follow what a firmware leaves: MTRRs enabled write-back, fast strings. */
#include "arch/x86/vcpu_setup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "arch/x86/boot.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/sregs.h"
#include "core/vcpu.h"
#include "core/vm.h"
#include "util/log.h"


#define MSR_IA32_TSC            0x10
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_MTRR_DEF_TYPE       0x2ff
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_MASK  0x700
#define APIC_MODE_NMI   0x400
#define APIC_MODE_EXTINT 0x700
#define APIC_LVT_MASKED (1u << 16)

static pthread_mutex_t cpuid_lock = PTHREAD_MUTEX_INITIALIZER;

/* Features whose instructions PVM's emulator cannot execute (see vm_kvm_is_pvm), yet KVM
 * reports. Seen stopping Linux with an emulation failure: CMPXCHG16B (SLUB), XRSTOR (FPU
 * set-up), POPCNT (hweight); the others are the same kind of instruction a kernel patches
 * in when the CPU has them (RDRAND/RDSEED, MOVBE, BMI, ADX, FSGSBASE, STAC/CLAC, INVPCID,
 * CLFLUSHOPT/CLWB, RDPID). Hidden, the guest kernel takes its plain paths. */
#define PVM_HIDE_1_ECX  ((1u << 13) | (1u << 22) | (1u << 23) | (1u << 25) | (1u << 26) | \
			 (1u << 30))  /* CX16 MOVBE POPCNT AES XSAVE RDRAND */
#define PVM_HIDE_7_EBX  ((1u << 0) | (1u << 3) | (1u << 8) | (1u << 10) | (1u << 18) | \
			 (1u << 19) | (1u << 20) | (1u << 23) | (1u << 24))
			 /* FSGSBASE BMI1 BMI2 INVPCID RDSEED ADX SMAP CLFLUSHOPT CLWB */
#define PVM_HIDE_7_ECX  (1u << 22)    /* RDPID */

/* Hide them there. This covers CPUID as KVM emulates it; guest code that PVM runs natively
 * sees the host's CPUID, so the Linux loader also passes clearcpuid= (see boot.c). */
static void pvm_cpuid_quirks(struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1) {
			e->ecx &= ~PVM_HIDE_1_ECX;
		} else if (e->function == 7 && e->index == 0) {
			e->ebx &= ~PVM_HIDE_7_EBX;
			e->ecx &= ~PVM_HIDE_7_ECX;
		}
	}
	pr_info("PVM KVM: instructions its emulator lacks hidden from the guest's CPUID");
}

/* KVM_GET_SUPPORTED_CPUID once per VM (vCPU threads race here, hence the lock). */
static struct kvm_cpuid2 *supported_cpuid(struct vm *vm)
{
	struct kvm_cpuid2 *c;

	pthread_mutex_lock(&cpuid_lock);
	c = vm->cpuid;
	if (!c) {
		c = cpuid_get_supported(vm->kvm_fd);
		if (!c)
			pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		else if (vm_kvm_is_pvm())
			pvm_cpuid_quirks(c);
		vm->cpuid = c;
	}
	pthread_mutex_unlock(&cpuid_lock);
	return c;
}

/* The vCPU's CPUID (cpuid.c: APIC ID, topology, KVM leaves with MSI_EXT_DEST_ID,
 * TSC-deadline, no PMU) and the capabilities its special registers are checked against. */
static int setup_cpuid(struct vcpu *v, struct x86_caps *caps)
{
	struct kvm_cpuid2 *sup = supported_cpuid(v->vm);
	struct cpuid_config cc = { .ncpus = v->vm->ncpus };
	char err[160];
	int ret;

	if (!sup)
		return -ENOTSUP;
	cc.tsc_deadline = ioctl(v->vm->kvm_fd, KVM_CHECK_EXTENSION,
				KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	ret = cpuid_set_vcpu(v->fd, sup, &cc, v->id, caps, err, sizeof(err));
	if (ret)
		pr_err("%s", err);
	return ret;
}

static int setup_msrs(struct vcpu *v)
{
	static const struct { uint32_t index; uint64_t data; } boot[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_LSTAR, 0 },
		{ MSR_IA32_MISC_ENABLE, 1 },                 /* fast strings */
		{ MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },       /* MTRRs on, default write-back */
	};
	enum { N = sizeof(boot) / sizeof(boot[0]) };
	/* struct kvm_msrs ends in a flexible array: a byte buffer of the right size. */
	union {
		struct kvm_msrs hdr;
		uint8_t buf[sizeof(struct kvm_msrs) + N * sizeof(struct kvm_msr_entry)];
	} m;
	int r;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = N;
	for (unsigned i = 0; i < N; i++) {
		m.hdr.entries[i].index = boot[i].index;
		m.hdr.entries[i].data = boot[i].data;
	}
	r = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (r != N) {
		pr_err("vcpu%u: KVM_SET_MSRS: MSR %#x refused", v->id,
		       r >= 0 && r < N ? boot[r].index : 0);
		return -EINVAL;
	}
	return 0;
}

static int setup_fpu(struct vcpu *v)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0) {
		pr_err("vcpu%u: KVM_SET_FPU: %s", v->id, strerror(errno));
		return -errno;
	}
	return 0;
}

static uint32_t lapic_get(const struct kvm_lapic_state *s, unsigned reg)
{
	uint32_t v;

	memcpy(&v, &s->regs[reg], sizeof(v));
	return v;
}

static void lapic_set(struct kvm_lapic_state *s, unsigned reg, uint32_t v)
{
	memcpy(&s->regs[reg], &v, sizeof(v));
}

/* Boot vCPU: LINT0 delivers the PIC's interrupts (ExtINT), LINT1 is the NMI pin. */
static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state s;
	uint32_t l0, l1;

	if (ioctl(v->fd, KVM_GET_LAPIC, &s) < 0)
		goto fail;
	l0 = lapic_get(&s, APIC_LVT0) & ~(APIC_MODE_MASK | APIC_LVT_MASKED);
	l1 = lapic_get(&s, APIC_LVT1) & ~(APIC_MODE_MASK | APIC_LVT_MASKED);
	lapic_set(&s, APIC_LVT0, l0 | APIC_MODE_EXTINT);
	lapic_set(&s, APIC_LVT1, l1 | APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &s) < 0)
		goto fail;
	return 0;
fail:
	pr_err("vcpu%u: LAPIC set-up: %s", v->id, strerror(errno));
	return -errno;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool l)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.dpl = 0, .db = !l, .s = 1, .l = l, .g = 1,
	};
}

/* Registers of the boot vCPU: long mode with the loader's page tables, or 32-bit flat. */
static int setup_boot_regs(struct vcpu *v, const struct boot_entry *e,
			   const struct x86_caps *caps)
{
	struct kvm_sregs sr;
	char err[160];
	struct kvm_regs regs = {
		.rflags = 2, .rip = e->rip, .rsp = e->rsp, .rsi = e->rsi,
		.rax = e->rax, .rbx = e->rbx,
	};
	bool lm = e->mode == BOOT_MODE_LONG64;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		goto fail;
	seg_flat(&sr.cs, lm ? 0x10 : 0x08, 0xb, lm);
	seg_flat(&sr.ds, 0x18, 0x3, false);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.gdt.base = BOOT_GDT_ADDR;
	sr.gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
	if (lm) {
		sr.cr0 = X86_CR0_PG | X86_CR0_NE | X86_CR0_ET | X86_CR0_MP | X86_CR0_PE;
		sr.cr3 = BOOT_PML4_ADDR;
		sr.cr4 = X86_CR4_PAE;
		sr.efer = X86_EFER_LMA | X86_EFER_LME;
	} else {
		sr.cr0 = X86_CR0_NE | X86_CR0_ET | X86_CR0_MP | X86_CR0_PE;
		sr.cr3 = 0;
		sr.cr4 = 0;
		sr.efer = 0;
	}
	if (sregs_set(v->fd, &sr, caps, err, sizeof(err)) < 0) {
		pr_err("vcpu%u: boot special registers: %s", v->id, err);
		return -EINVAL;
	}
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		goto fail;
	return 0;
fail:
	pr_err("vcpu%u: boot registers: %s", v->id, strerror(errno));
	return -errno;
}

int x86_vcpu_setup(struct vcpu *v, const struct boot_entry *entry)
{
	struct x86_caps caps;
	int ret = setup_cpuid(v, &caps);

	if (!ret && entry)
		ret = setup_boot_regs(v, entry, &caps);
	if (!ret)
		ret = setup_msrs(v);
	if (!ret)
		ret = setup_fpu(v);
	if (!ret && entry)
		ret = setup_lapic(v);
	return ret;
}
