/* x86 vCPU set-up before the first KVM_RUN: CPUID, boot MSRs, FPU, LAPIC LINT pins and, for
 * the boot vCPU, the registers of the loader's boot_entry (long mode or 32-bit flat). */
#ifndef VIREO_ARCH_X86_VCPU_SETUP_H
#define VIREO_ARCH_X86_VCPU_SETUP_H

#include <stdint.h>

struct vcpu;
struct boot_entry;

/* entry is NULL for application processors (they wait for INIT/SIPI). 0 or -errno, with
 * one line printed. */
int x86_vcpu_setup(struct vcpu *v, const struct boot_entry *entry);

/* After KVM_EXIT_INTERNAL_ERROR: deliver the exception of an instruction KVM could not
 * emulate (int3, ud2) and return 0 so that the vCPU runs on; -ENOTSUP otherwise. */
int x86_emulation_fallback(struct vcpu *v);

/* Decode the memory operand of a 0f-opcode ModRM instruction in 64-bit mode (emul_fallback.c;
 * exposed for tests): linear address, opcode byte, ModRM.reg, instruction length.
 * 0, or -ENOTSUP for a register operand or bytes that run out. */
struct kvm_regs;
struct kvm_sregs;
int x86_decode_m(const uint8_t *p, unsigned n, const struct kvm_regs *r,
		 const struct kvm_sregs *sr, uint64_t *ea, uint8_t *op, unsigned *reg,
		 unsigned *len);

#endif
