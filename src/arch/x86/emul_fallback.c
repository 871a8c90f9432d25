/* Userspace fallback for instructions KVM's emulator gives up on (KVM_EXIT_INTERNAL_ERROR,
 * KVM_INTERNAL_ERROR_EMULATION). On PVM (see vm_kvm_is_pvm) guest kernel code runs through
 * KVM's emulator after every privileged instruction, and that emulator lacks instructions a
 * stock Linux kernel executes at boot. vireo finishes the few whose effect it can reproduce
 * exactly from the vCPU state (registers, FPU state, guest memory through KVM_TRANSLATE):
 *   int3 -> #BP after it, ud2 -> #UD at it, fwait -> #MF or nothing, l/m/sfence -> nothing,
 *   ldmxcsr/stmxcsr m32 -> MXCSR from/to guest memory.
 * Anything else stays an error (vcpu.c reports it with the instruction bytes). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "arch/x86/vcpu_setup.h"
#include "core/vcpu.h"
#include "core/vm.h"
#include "util/log.h"

static int x86_skip(struct vcpu *v, unsigned n)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return -errno;
	regs.rip += n;
	return ioctl(v->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

/* fwait: #MF when the x87 status word has an unmasked exception pending (ES), else it does
 * nothing: step over it. */
static int x86_fwait(struct vcpu *v)
{
	struct kvm_vcpu_events ev;
	struct kvm_fpu fpu;

	if (ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
		return -errno;
	if (fpu.fsw & 0x80) {
		if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
			return -errno;
		ev.exception.injected = 1;
		ev.exception.nr = 16;
		ev.exception.has_error_code = 0;
		ev.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
		return ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? -errno : 0;
	}
	return x86_skip(v, 1);
}

/* The memory operand of a 0f-opcode ModRM instruction in 64-bit mode: p holds the bytes
 * from the first prefix. Sets *ea (linear address, segment base included), *op (the byte
 * after 0f), *reg (ModRM.reg)
 * and *len (whole instruction). -ENOTSUP for forms not handled (register operand, 32-bit
 * addressing, lock/rep prefixes). */
int x86_decode_m(const uint8_t *p, unsigned n, const struct kvm_regs *r,
			const struct kvm_sregs *sr, uint64_t *ea, uint8_t *op, unsigned *reg,
			unsigned *len)
{
	const uint64_t gpr[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi,
				   r->rdi, r->r8, r->r9, r->r10, r->r11, r->r12, r->r13,
				   r->r14, r->r15 };
	uint64_t segbase = 0, addr = 0;
	unsigned i = 0, rex = 0, mod, rm;
	bool rip_rel = false;

	for (; i < n; i++) {
		if (p[i] == 0x64)
			segbase = sr->fs.base;
		else if (p[i] == 0x65)
			segbase = sr->gs.base;
		else if (p[i] != 0x2e && p[i] != 0x3e && p[i] != 0x26 && p[i] != 0x36)
			break;
	}
	if (i < n && (p[i] & 0xf0) == 0x40)
		rex = p[i++];
	if (i + 3 > n || p[i] != 0x0f)
		return -ENOTSUP;
	*op = p[i + 1];
	i += 2;                          /* 0f, opcode */
	mod = p[i] >> 6;
	*reg = (p[i] >> 3) & 7;
	rm = p[i++] & 7;
	if (mod == 3)
		return -ENOTSUP;
	if (rm == 4) {                   /* SIB */
		uint8_t sib;
		unsigned idx, base;

		if (i >= n)
			return -ENOTSUP;
		sib = p[i++];
		idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
		base = (sib & 7) | ((rex & 1) << 3);
		if (idx != 4)
			addr += gpr[idx] << (sib >> 6);
		if ((sib & 7) == 5 && mod == 0)
			mod = 2;         /* disp32, no base */
		else
			addr += gpr[base];
	} else if (rm == 5 && mod == 0) {
		rip_rel = true;
		mod = 2;
	} else {
		addr += gpr[rm | ((rex & 1) << 3)];
	}
	if (mod == 1) {
		if (i >= n)
			return -ENOTSUP;
		addr += (uint64_t)(int64_t)(int8_t)p[i++];
	} else if (mod == 2) {
		int32_t d;

		if (i + 4 > n)
			return -ENOTSUP;
		memcpy(&d, p + i, 4);
		i += 4;
		addr += (uint64_t)(int64_t)d;
	}
	if (rip_rel)
		addr += r->rip + i;
	*ea = addr + segbase;
	*len = i;
	return 0;
}

/* Guest memory at linear address la (4 bytes, one page) through the vCPU's page tables. */
static void *x86_linear(struct vcpu *v, uint64_t la, bool write, uint64_t *gpa)
{
	struct kvm_translation t = { .linear_address = la };

	if ((la & 0xfff) > 0xffc || ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid ||
	    (write && !t.writeable))
		return NULL;
	*gpa = t.physical_address;
	return gm_translate(&v->vm->mem, t.physical_address, 4);
}

/* ldmxcsr m32 (0f ae /2) and stmxcsr m32 (0f ae /3). */
static int x86_mxcsr(struct vcpu *v, const uint8_t *p, unsigned n)
{
	struct kvm_regs regs;
	struct kvm_sregs sr;
	struct kvm_fpu fpu;
	unsigned reg, len;
	uint64_t ea, gpa;
	uint8_t op;
	uint32_t val;
	void *hva;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sr) < 0 ||
	    ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
		return -errno;
	if (x86_decode_m(p, n, &regs, &sr, &ea, &op, &reg, &len) || op != 0xae ||
	    (reg != 2 && reg != 3))
		return -ENOTSUP;
	hva = x86_linear(v, ea, reg == 3, &gpa);
	if (!hva)
		return -ENOTSUP;     /* not mapped: let the error stand rather than guess */
	if (reg == 2) {
		memcpy(&val, hva, 4);
		if (val & ~0xffffu)
			return -ENOTSUP;   /* reserved bits: #GP, which vireo does not model */
		fpu.mxcsr = val;
		if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
			return -errno;
	} else {
		val = fpu.mxcsr;
		memcpy(hva, &val, 4);
		gm_mark_dirty(&v->vm->mem, gpa, 4);
	}
	regs.rip += len;
	return ioctl(v->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

/* Returns 0 when the instruction was completed here, -ENOTSUP (or -errno) otherwise. */
int x86_emulation_fallback(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct kvm_vcpu_events ev;
	struct kvm_regs regs;
	uint8_t insn[16] = { 0 };
	unsigned len, nr, skip;

	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION || run->internal.ndata < 3 ||
	    !(run->internal.data[0] & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES))
		return -ENOTSUP;
	memcpy(insn, &run->internal.data[1], sizeof(insn));  /* insn_size, then the bytes */
	len = insn[0];
	if (len >= 1 && insn[1] == 0xcc) {
		nr = 3;    /* #BP, a trap: the return address follows the int3 */
		skip = 1;
	} else if (len >= 2 && insn[1] == 0x0f && insn[2] == 0x0b) {
		nr = 6;    /* #UD, a fault: at the ud2 */
		skip = 0;
	} else if (len >= 1 && insn[1] == 0x9b) {
		return x86_fwait(v);
	} else if (len >= 3 && insn[1] == 0x0f && insn[2] == 0xae && insn[3] >= 0xe8) {
		return x86_skip(v, 3);   /* lfence, mfence, sfence: nothing to do in an emulator */
	} else if (len >= 3) {
		return x86_mxcsr(v, insn + 1, len);   /* ldmxcsr / stmxcsr, else -ENOTSUP */
	} else {
		return -ENOTSUP;
	}
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	regs.rip += skip;
	ev.exception.injected = 1;
	ev.exception.nr = nr;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0 || ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	pr_debug("vcpu%u: emulation failure on %s at %#llx: exception %u delivered by vireo",
		 v->id, nr == 3 ? "int3" : "ud2", (unsigned long long)regs.rip - skip, nr);
	return 0;
}
