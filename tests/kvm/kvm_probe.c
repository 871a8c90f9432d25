/* kvm_probe: does this KVM deliver INT3 in 64-bit guest code by itself? Some nested set-ups
 * (kvm_pvm, which runs guests without hardware virtualization) cannot: KVM tries to emulate
 * the INT3 and stops with KVM_EXIT_INTERNAL_ERROR (emulation), which is where a Debian
 * kernel stops at boot (int3_selftest()) unless the VMM delivers the #BP itself (vireo does,
 * x86_emulation_fallback in vcpu_setup.c). Tells boot tests what kind of KVM they face.
 * Guest: long mode, identity-mapped 2 MiB page, an IDT whose vector 3 handler writes port
 * 0x11; code: out 0x12 (proves the long-mode set-up runs), int3, out 0x10. Prints one line; exit 0 when the handler ran, 3 when KVM
 * could not deliver the INT3, 1 on other errors, 77 without /dev/kvm. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#define MEM_SIZE (4u << 20)
#define GDT 0x500
#define IDT 0x600
#define PML4 0x2000
#define CODE 0x10000
#define HANDLER 0x10100
#define STACK 0x80000

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void build_guest(uint8_t *m)
{
	/* out 0x12 (long mode works); int3; out 0x10; hlt */
	static const uint8_t code[] = { 0xe6, 0x12, 0xcc, 0xe6, 0x10, 0xf4 };
	static const uint8_t handler[] = { 0xe6, 0x11, 0xf4 };		/* out 0x11; hlt */
	uint8_t *idt3 = m + IDT + 3 * 16;

	put64(m + GDT + 0x10, 0x00af9a000000ffffULL);	/* 64-bit code */
	put64(m + GDT + 0x18, 0x00cf92000000ffffULL);	/* data */
	put64(m + PML4, 0x3000 | 3);
	put64(m + 0x3000, 0x4000 | 3);
	put64(m + 0x4000, 0x0 | 0x83);			/* 2 MiB page at 0 */
	memcpy(m + CODE, code, sizeof(code));
	memcpy(m + HANDLER, handler, sizeof(handler));
	idt3[0] = HANDLER & 0xff;
	idt3[1] = (HANDLER >> 8) & 0xff;
	idt3[2] = 0x10;					/* code selector */
	idt3[5] = 0x8e;					/* present, interrupt gate */
	idt3[6] = (HANDLER >> 16) & 0xff;
	idt3[7] = (HANDLER >> 24) & 0xff;
}

static void long_mode(struct kvm_sregs *s)
{
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
				  .present = 1, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = cs;

	ds.selector = 0x18;
	ds.type = 3;
	ds.l = 0;
	ds.db = 1;
	s->cs = cs;
	s->ds = s->es = s->fs = s->gs = s->ss = ds;
	s->gdt.base = GDT;
	s->gdt.limit = 0x1f;
	s->idt.base = IDT;
	s->idt.limit = 16 * 32 - 1;
	s->cr0 = 0x80000033;
	s->cr3 = PML4;
	s->cr4 = 0x20;
	s->efer = 0x500;
}

int main(void)
{
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = MEM_SIZE };
	struct kvm_regs regs = { .rip = CODE, .rsp = STACK, .rflags = 2 };
	struct kvm_sregs s;
	struct kvm_run *run;
	uint8_t *mem;
	int kvm, vm, vcpu;

	alarm(60);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("no /dev/kvm\n");
		return 77;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm < 0 || mem == MAP_FAILED)
		goto err;
	build_guest(mem);
	r.userspace_addr = (uintptr_t)mem;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0 || vcpu < 0 ||
	    ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
		goto err;
	long_mode(&s);
	run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
		   MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_SET_SREGS, &s) < 0 ||
	    ioctl(vcpu, KVM_SET_REGS, &regs) < 0 || ioctl(vcpu, KVM_RUN, 0) < 0)
		goto err;
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x12) {
		printf("kvm_probe: the long-mode probe guest did not start (exit %u)\n",
		       run->exit_reason);
		return 1;
	}
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		goto err;
	if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x11) {
		printf("kvm_probe: INT3 in 64-bit guest code delivered: stock kernels can run\n");
		return 0;
	}
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
		printf("kvm_probe: this KVM cannot deliver INT3 in 64-bit guest code itself (KVM "
		       "internal error %u%s): the VMM must deliver the #BP\n",
		       run->internal.suberror,
		       access("/sys/module/kvm_pvm", F_OK) == 0 ? ", kvm_pvm" : "");
		return 3;
	}
	printf("kvm_probe: unexpected exit %u (port %#x)\n", run->exit_reason,
	       run->exit_reason == KVM_EXIT_IO ? run->io.port : 0);
	return 1;
err:
	printf("kvm_probe: set-up failed: %s\n", strerror(errno));
	return 1;
}
